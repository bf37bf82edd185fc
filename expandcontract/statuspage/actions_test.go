package statuspage

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
)

func TestActionsApplied(t *testing.T) {
	for _, tc := range []struct {
		path string
		form url.Values
		want action
	}{
		{"pause", url.Values{"reason": {"  lunch  "}}, action{kind: actPause, reason: "lunch"}},
		{"pause", nil, action{kind: actPause}},
		{"resume", url.Values{"reason": {"back"}}, action{kind: actResume, reason: "back"}},
		{"rate", url.Values{"rate": {"250.5"}, "reason": {"night"}}, action{kind: actRate, rate: 250.5, reason: "night"}},
		{"rate", url.Values{"rate": {"0"}}, action{kind: actRate}},
		{"batch-size", url.Values{"size": {"5000"}}, action{kind: actBatchSize, size: 5000}},
		{"batch-size", url.Values{"size": {" 0 "}}, action{kind: actBatchSize}},
		{"move", url.Values{"to": {"switchreads"}, "version": {"3"}, "reason": {"verified"}},
			action{kind: actMove, to: expandcontract.SwitchReads, version: 3, reason: "verified"}},
		{"move", url.Values{"to": {"dualwrite"}}, action{kind: actMove, to: expandcontract.DualWrite}},
	} {
		t.Run(tc.path+" "+tc.form.Encode(), func(t *testing.T) {
			p := newPage(t, WithActions(allowAll))
			res, body := p.post(t, "/m/orders/"+tc.path, tc.form)
			require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
			assert.Equal(t, "./", res.Header.Get("Location"))
			tc.want.actor = "carol"
			assert.Equal(t, []fakeAct{{"orders", tc.want}}, p.src.actions())
			assert.Contains(t, p.log.String(), "cutover: status page action")
			assert.Contains(t, p.log.String(), "actor=carol")
		})
	}
}

// TestActionsReadOnly: without WithActions, every action is refused and
// nothing is done.
func TestActionsReadOnly(t *testing.T) {
	p := newPage(t)
	for path := range actionKinds {
		res, body := p.post(t, "/m/orders/"+path, url.Values{"rate": {"1"}, "size": {"1"}, "to": {"switchreads"}})
		assert.Equal(t, http.StatusForbidden, res.StatusCode, path)
		assert.Contains(t, body, "actions are not enabled on this page", path)
	}
	assert.Empty(t, p.src.actions())
}

func TestActionsCrossOrigin(t *testing.T) {
	p := newPage(t, WithActions(allowAll))
	for _, header := range [][]string{
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
		{"Origin", "http://example.com:8080"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://example.com"},
	} {
		res, body := p.do(t, http.MethodPost, "/m/orders/pause", "reason=x", header...)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, header)
		assert.Contains(t, body, "refused a request from another site", header)
	}
	assert.Empty(t, p.src.actions())

	// Same origin by either header, or a client that is no browser and
	// sends neither.
	for _, header := range [][]string{
		{"Origin", "http://example.com"},
		{"Sec-Fetch-Site", "same-origin"},
		{},
	} {
		res, body := p.do(t, http.MethodPost, "/m/orders/pause", "reason=x", header...)
		assert.Equal(t, http.StatusSeeOther, res.StatusCode, "%v: %s", header, body)
	}
	assert.Len(t, p.src.actions(), 3)
}

func TestActionsAuthorization(t *testing.T) {
	var seen *http.Request
	p := newPage(t, WithActions(func(r *http.Request) (string, error) {
		seen = r
		if r.Header.Get("X-Operator") == "" {
			return "", errors.New("sign in as an operator first")
		}
		return r.Header.Get("X-Operator"), nil
	}))
	res, body := p.post(t, "/m/orders/pause", url.Values{"reason": {"x"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, body, "statuspage: not authorised: sign in as an operator first")
	require.NotNil(t, seen)
	assert.Empty(t, p.src.actions())

	// An authorisation that names no actor refuses too.
	res, body = p.do(t, http.MethodPost, "/m/orders/pause", "", "X-Operator", "   ")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, body, "named no actor")
	assert.Empty(t, p.src.actions())

	res, _ = p.do(t, http.MethodPost, "/m/orders/pause", "", "X-Operator", "dave")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Len(t, p.src.actions(), 1)
	assert.Equal(t, "dave", p.src.actions()[0].a.actor)

	// The origin is checked before the authorisation is asked.
	seen = nil
	res, _ = p.do(t, http.MethodPost, "/m/orders/pause", "", "X-Operator", "dave", "Origin", "http://evil.example")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Nil(t, seen)
}

func TestActionsBadInput(t *testing.T) {
	long := strings.Repeat("x", maxReason+1)
	for _, tc := range []struct {
		path, body, want string
	}{
		{"rate", "", `field "rate" is required`},
		{"rate", "rate=", `field "rate" is required`},
		{"rate", "rate=fast", `rate "fast": not a number`},
		{"rate", "rate=NaN", `rate "NaN": not a number`},
		{"rate", "rate=Inf", `rate "Inf": not a number`},
		{"rate", "rate=-1", `rate -1: negative`},
		{"rate", "rate=1e10", `rate 1e+10: more than 1e+09`},
		{"rate", "rate=1&rate=2", `field "rate" given 2 times`},
		{"rate", "rate=1&size=2", `unknown field "size" (this action takes rate, reason)`},
		{"batch-size", "size=1.5", `size 1.5: not a whole number of keys`},
		{"batch-size", "size=-3", `size -3: negative`},
		{"batch-size", "size=1000001", `size 1.000001e+06: more than 1e+06`},
		{"batch-size", "", `field "size" is required`},
		{"move", "to=sideways", `field "to": expandcontract: unknown phase`},
		{"move", "", `field "to": expandcontract: unknown phase`},
		{"move", "to=contract&version=x", `version "x": not a migration version`},
		{"move", "to=contract&version=0", `version "0": not a migration version`},
		{"move", "to=contract&force=1", `unknown field "force"`},
		{"pause", "reason=" + long, `reason of 1001 bytes: longer than 1000`},
		{"pause", "reason=a%00b", `reason: holds a control character`},
		{"pause", "reason=line%0Abreak", `reason: holds a control character`},
		{"pause", "reason=%FF", `reason: not valid UTF-8`},
		{"pause", "reason=%zz", `read the form`},
		{"pause", "reason=" + strings.Repeat("x", maxForm), `read the form`},
	} {
		t.Run(tc.path+" "+tc.want, func(t *testing.T) {
			p := newPage(t, WithActions(allowAll))
			res, body := p.do(t, http.MethodPost, "/m/orders/"+tc.path, tc.body, "Origin", "http://example.com")
			assert.Equal(t, http.StatusBadRequest, res.StatusCode, body)
			assert.Contains(t, body, htmlEscape(tc.want))
			assert.Empty(t, p.src.actions())
		})
	}
	t.Run("not a form", func(t *testing.T) {
		p := newPage(t, WithActions(allowAll))
		res, body := p.do(t, http.MethodPost, "/m/orders/rate", `{"rate": 5}`, "Content-Type", "application/json")
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
		assert.Contains(t, body, "must be a form")
		assert.Empty(t, p.src.actions())
	})
	t.Run("refused by the library", func(t *testing.T) {
		p := newPage(t, WithActions(allowAll))
		p.src.actErr = fmt.Errorf("%w: rate 5e8 rows/s is too high", errInvalidFake)
		res, body := p.post(t, "/m/orders/rate", url.Values{"rate": {"5e8"}})
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
		assert.Contains(t, body, "rate 5e8 rows/s is too high")
	})
}

// errInvalidFake stands for the library's own refusal of bad input.
var errInvalidFake = expandcontract.ErrInvalidInput

func TestActionsRefusedMove(t *testing.T) {
	for _, refusal := range []error{
		fmt.Errorf(`%w: "orders" from backfill to switchreads: backfill not complete (27000 rows copied of about 81000)`,
			expandcontract.ErrGuard),
		&expandcontract.ConflictError{Migration: "orders", Expected: 2, Actual: 3, Phase: expandcontract.Backfill},
		fmt.Errorf(`%w: "orders" from backfill to expand: phases move one step at a time`, expandcontract.ErrIllegalMove),
	} {
		p := newPage(t, WithActions(allowAll))
		p.src.actErr = refusal
		res, body := p.post(t, "/m/orders/move", url.Values{"to": {"switchreads"}, "version": {"3"}})
		require.Equal(t, http.StatusConflict, res.StatusCode, body)
		checkSafeHTML(t, res, body)
		assert.Contains(t, body, `<p class="notice" role="alert" id="notice">Refused: `+htmlEscape(refusal.Error())+`</p>`)
		// The page itself is there, its forms posting where they did.
		assert.Contains(t, body, `<span class="phase" id="phase">backfill</span>`)
		assert.Contains(t, body, `<form method="post" action="pause">`)
	}
}

func TestActionsFailed(t *testing.T) {
	p := newPage(t, WithActions(allowAll))
	p.src.actErr = errBroken
	res, body := p.post(t, "/m/orders/pause", nil)
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Contains(t, body, "the action failed; the service&#39;s log has the error")
	assert.NotContains(t, body, errBroken.Error())
	assert.Contains(t, p.log.String(), "cutover: status page action failed")
	assert.Contains(t, p.log.String(), errBroken.Error())
}

func TestNewBadInput(t *testing.T) {
	_, err := New(nil)
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.EqualError(t, err, "statuspage: invalid input: nil store")

	_, err = newHandler(&fakeSource{}, nil, WithActions(nil), WithLogger(nil))
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.EqualError(t, err, "statuspage: invalid input: option 0 is nil\n"+
		"WithActions: nil authorize function\nWithLogger: nil logger")
}

// htmlEscape escapes s as the page's template does in text.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}
