package statuspage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

// inlineHandler finds an inline event handler attribute, such as onclick.
var inlineHandler = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)

// checkSafeHTML checks the headers and the body of an HTML answer: a
// strict policy that allows the page's own style sheet by its hash and
// nothing else, and no script or inline handler in the page.
func checkSafeHTML(t *testing.T, res *http.Response, body string) {
	t.Helper()
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	csp := res.Header.Get("Content-Security-Policy")
	sum := sha256.Sum256([]byte(css))
	for _, want := range []string{"default-src 'none'", "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'",
		"form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		assert.Contains(t, csp, want)
	}
	assert.NotContains(t, csp, "unsafe")
	assert.NotContains(t, csp, "script-src")
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.NotContains(t, strings.ToLower(body), "<script")
	assert.NotContains(t, strings.ToLower(body), "javascript:")
	assert.False(t, inlineHandler.MatchString(body), "inline event handler in the page")
	assert.NotContains(t, body, ` style="`)
	// The page's style sheet is exactly the hashed one.
	i, j := strings.Index(body, "<style>"), strings.Index(body, "</style>")
	require.True(t, i >= 0 && j > i, "no style sheet")
	assert.Equal(t, css, body[i+len("<style>"):j])
}

// html gets the page at target, checks that it is a safe page and
// returns it.
func (p *page) html(t *testing.T, target string) string {
	t.Helper()
	res, body := p.do(t, http.MethodGet, target, "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	checkSafeHTML(t, res, body)
	return body
}

// containsAll checks that body holds each of wants.
func containsAll(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		assert.Contains(t, body, want)
	}
}

func TestIndex(t *testing.T) {
	p := newPage(t)
	body := p.html(t, "/")
	containsAll(t, body,
		`<a href="m/orders/">orders</a>`,
		`<a href="m/users%2Femail/">users/email</a>`,
		`<progress max="81000" value="27000" aria-label="backfill progress">33.3%</progress>`,
		`<span class="state running">running</span>`,
		`<span class="dirty">3 differences, 10m 00s ago</span>`,
		`5 pending, 1 stuck, oldest 42m 00s ago`,
		`<span class="state not started">not started</span>`,
		`<a class="json" href="status.json">JSON</a>`,
	)
	assert.NotContains(t, body, "<form")
}

func TestIndexEmpty(t *testing.T) {
	p := newPage(t)
	p.src.sts = nil
	res, body := p.do(t, http.MethodGet, "/", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "No migration yet.")
	res, body = p.do(t, http.MethodGet, "/status.json", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.JSONEq(t, `{"migrations": []}`, body)
}

func TestMigrationPage(t *testing.T) {
	p := newPage(t)
	body := p.html(t, "/m/orders/")
	containsAll(t, body,
		`<h1 id="name">orders <span class="phase" id="phase">backfill</span></h1>`,
		`version 3 · stages allowed: dualwrite to shadow`,
		`<a class="home" href="../../">`,
		// The backfill: bar, rate, ETA, state and lease.
		`<progress max="81000" value="27000" aria-label="backfill progress">33.3%</progress>`,
		`<dd id="backfill-rows">27,000 rows copied of about 81,000</dd>`,
		`<dd id="backfill-rate">100 rows/s</dd>`,
		`<dd id="backfill-eta">9m 00s (at 2026-03-14T15:18:26Z)</dd>`,
		`<dd id="backfill-state" class="state running">running</dd>`,
		`<dd id="backfill-lease">host-1/4242, until 2026-03-14T15:09:46Z (in 20s)</dd>`,
		`<dd id="backfill-rate-limit">500 rows/s, set by an operator</dd>`,
		`<dd id="backfill-batch-size">the runner&#39;s own</dd>`,
		`<dd>2026-03-14T15:04:26Z (5m 00s ago)</dd>`,
		// The verification, its age and its differences.
		`<span class="dirty">3 differences, 10m 00s ago</span>`,
		`<dd id="verification-differences">3</dd>`,
		`<dd>3 keys differ: 17, 204, 9001</dd>`,
		// The repair backlog.
		`<dd id="repairs-pending">5</dd>`,
		`<dd id="repairs-stuck" class="stuck">1</dd>`,
		`<dd id="repairs-oldest">2026-03-14T14:27:26Z (42m 00s ago)</dd>`,
		// The instances per stage, in stage order.
		`<tr><td>dualwrite</td><td>1</td></tr><tr><td>shadow</td><td>1</td></tr>`,
		`<tr><td>host-1</td><td>shadow</td><td>3s ago</td></tr>`,
		// The history, newest first, escaped.
		`<td>alice</td><td>move</td><td>dualwrite → backfill</td><td>3</td><td>dual writes everywhere</td>`,
		`&lt;b&gt;expand&lt;/b&gt; &amp; go`,
		// The charts.
		`<svg id="rate-chart" class="chart"`,
		`<svg id="backlog-chart" class="chart"`,
		`<figcaption>Backfill rate: 100 rows/s now, over the last 4m 30s</figcaption>`,
		`<figcaption>Repair backlog: 1 pending now, over the last 1h 00m</figcaption>`,
	)
	assert.Equal(t, 2, strings.Count(body, `<polyline class="line" points="`))
	assert.NotContains(t, body, "<b>")
	// Read-only: no action control at all.
	assert.NotContains(t, body, "<form")
	assert.NotContains(t, body, "<button")
	assert.NotContains(t, body, `id="actions"`)
}

func TestMigrationPageNew(t *testing.T) {
	p := newPage(t)
	res, body := p.do(t, http.MethodGet, "/m/users%2Femail/", "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	containsAll(t, body,
		`<span class="phase" id="phase">expand</span>`,
		`stages allowed: off`,
		`<progress aria-label="backfill progress">not started</progress>`,
		`<dd id="backfill-rate">—</dd>`,
		`<dd id="backfill-eta">—</dd>`,
		`<dd id="backfill-lease">no runner holds the lease</dd>`,
		`<p><span>never verified</span></p>`,
		`No instance reported a stage lately.`,
		`<figcaption>Backfill rate: no samples yet</figcaption>`,
		`<figcaption>Repair backlog: no samples yet</figcaption>`,
	)
}

func TestMigrationPageStates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*expandcontract.Status)
		wants []string
	}{
		{"paused", func(st *expandcontract.Status) { st.State.Backfill.Paused = true },
			[]string{`<dd id="backfill-state" class="state paused">paused</dd>`}},
		{"throttled", func(st *expandcontract.Status) {
			st.State.Backfill.Throttled = "replica lag 12s > 5s on walreceiver (127.0.0.1:5433)"
		}, []string{`<dd id="backfill-state" class="state throttled">throttled</dd>`,
			`<dd id="backfill-throttled">replica lag 12s &gt; 5s on walreceiver (127.0.0.1:5433)</dd>`}},
		{"canceled", func(st *expandcontract.Status) { st.State.Backfill.Canceled = true },
			[]string{`<dd id="backfill-state" class="state canceled">canceled</dd>`}},
		{"lease ran out", func(st *expandcontract.Status) { st.State.Backfill.LeaseUntil = at.Add(-time.Minute) },
			[]string{`<dd id="backfill-state" class="state idle">idle</dd>`,
				`<dd id="backfill-lease">last held by host-1/4242, ran out 1m 00s ago</dd>`}},
		{"done", func(st *expandcontract.Status) {
			st.State.Backfill.Rows, st.State.Backfill.DoneAt = 81500, at.Add(-time.Minute)
			st.State.Verification = expandcontract.Verification{At: at.Add(-30 * time.Second), Clean: true, Rows: 81500}
			st.VerificationAge = 30 * time.Second
		}, []string{
			`<progress max="81500" value="81500" aria-label="backfill progress">100%</progress>`,
			`<dd id="backfill-state" class="state done">done</dd>`,
			`<dd id="backfill-eta">done</dd>`,
			`<span class="clean">clean, 30s ago</span>`,
		}},
		{"total unknown", func(st *expandcontract.Status) { st.State.Backfill.Total = 0 },
			[]string{`<progress aria-label="backfill progress">running</progress>`, `<dd id="backfill-rows">27,000 rows copied</dd>`}},
		{"verifying", func(st *expandcontract.Status) { st.Verifying = verifyingAt(at) }, []string{
			`<progress max="81000" value="27000" aria-label="verification progress">33.3%</progress>`,
			`<dd id="verifying-rows">27,000 rows compared of about 81,000</dd>`,
			`<dd id="verifying-rate">450 rows/s</dd>`,
			`<dd id="verifying-eta">2m 00s (at `,
			`<dd id="verifying-owner">host-2/77</dd>`,
			`<h3>Last result</h3>`,
			`<span class="dirty">3 differences, 10m 00s ago</span>`,
		}},
		{"verifying without a total", func(st *expandcontract.Status) {
			st.Verifying = verifyingAt(at)
			st.Verifying.Total, st.Verifying.ETA = 0, 0
		}, []string{
			`<progress aria-label="verification progress">running</progress>`,
			`<dd id="verifying-rows">27,000 rows compared</dd>`,
			`<dd id="verifying-eta"></dd>`,
		}},
		{"not clean without differences", func(st *expandcontract.Status) {
			st.State.Verification.Differences = 0
			st.State.Verification.Detail = "verify: key not unique"
		}, []string{`<span class="dirty">not clean, 10m 00s ago</span>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPage(t)
			tc.edit(&p.src.sts[0])
			res, body := p.do(t, http.MethodGet, "/m/orders/", "")
			require.Equal(t, http.StatusOK, res.StatusCode)
			containsAll(t, body, tc.wants...)
		})
	}
}

// verifyingAt is a verification running at the time now, a minute after
// it started, a third done.
func verifyingAt(now time.Time) *expandcontract.VerificationProgress {
	return &expandcontract.VerificationProgress{Started: now.Add(-time.Minute), Owner: "host-2/77", Rows: 27000,
		Total: 81000, UpdatedAt: now, Rate: 450, ETA: 2 * time.Minute}
}

// TestMigrationPageNotVerifying checks that the page shows no running
// verification while none runs.
func TestMigrationPageNotVerifying(t *testing.T) {
	p := newPage(t)
	body := p.html(t, "/m/orders/")
	assert.NotContains(t, body, `id="verifying"`)
	assert.NotContains(t, body, `Last result`)
	var doc map[string]any
	_, js := p.do(t, http.MethodGet, "/m/orders/status.json", "")
	require.NoError(t, json.Unmarshal([]byte(js), &doc))
	v, ok := doc["verifying"]
	assert.True(t, ok)
	assert.Nil(t, v)
}

func TestMigrationPageActions(t *testing.T) {
	p := newPage(t, WithActions(allowAll))
	body := p.html(t, "/m/orders/")
	containsAll(t, body,
		`<form method="post" action="pause">`,
		`<button type="submit" id="pause">Pause backfill</button>`,
		`<form method="post" action="rate">`,
		`<form method="post" action="batch-size">`,
		`<input type="hidden" name="to" value="dualwrite">`,
		`<input type="hidden" name="version" value="3">`,
		`<button type="submit" id="move-dualwrite">Move back to dualwrite</button>`,
		`<button type="submit" id="move-switchreads">Move forward to switchreads</button>`,
	)
	assert.NotContains(t, body, `action="resume"`)

	p.src.sts[0].State.Backfill.Paused = true
	_, body = p.do(t, http.MethodGet, "/m/orders/", "")
	assert.Contains(t, body, `<button type="submit" id="resume">Resume backfill</button>`)
	assert.NotContains(t, body, `action="pause"`)

	// Expand has no phase before it; contract is final.
	_, body = p.do(t, http.MethodGet, "/m/users%2Femail/", "")
	assert.Equal(t, 1, strings.Count(body, `action="move"`))
	assert.Contains(t, body, `id="move-dualwrite">Move forward to dualwrite</button>`)
	p.src.sts[1].State.Phase = expandcontract.Contract
	_, body = p.do(t, http.MethodGet, "/m/users%2Femail/", "")
	assert.NotContains(t, body, `action="move"`)
}

func TestMigrationJSON(t *testing.T) {
	p := newPage(t)
	res, body := p.do(t, http.MethodGet, "/m/orders/status.json", "")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	assert.Equal(t, "orders", doc["name"])
	assert.Equal(t, "backfill", doc["phase"])
	assert.Equal(t, []any{"dualwrite", "shadow"}, doc["stages"])
	assert.Equal(t, "2026-03-14T15:09:26Z", doc["at"])
	b := doc["backfill"].(map[string]any)
	assert.Equal(t, 27000.0, b["rows"])
	assert.Equal(t, 540.0, b["eta_seconds"])
	assert.Equal(t, 100.0, b["rate"])
	assert.Equal(t, false, b["paused"])
	assert.Equal(t, "host-1/4242", b["lease_owner"])
	assert.Nil(t, b["done_at"])
	assert.Len(t, b["samples"], 10)
	v := doc["verification"].(map[string]any)
	assert.Equal(t, 600.0, v["age_seconds"])
	assert.Equal(t, "2026-03-14T14:59:26Z", v["at"])
	r := doc["repairs"].(map[string]any)
	assert.Equal(t, 5.0, r["pending"])
	assert.Equal(t, "2026-03-14T14:27:26Z", r["oldest"])
	assert.Len(t, r["history"], 30)
	assert.Equal(t, map[string]any{"dualwrite": 1.0, "shadow": 1.0}, doc["by_stage"])
	assert.Len(t, doc["events"], 3)

	// Every time parses as RFC 3339.
	var walk func(k string, v any)
	walk = func(k string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(k, e)
			}
		case []any:
			for _, e := range v {
				walk(k, e)
			}
		case string:
			if k == "at" || strings.HasSuffix(k, "_at") || k == "oldest" || k == "lease_until" {
				_, err := time.Parse(time.RFC3339Nano, v)
				assert.NoError(t, err, k)
			}
		}
	}
	walk("", doc)

	// Unknown: an ETA while no rate is known, the age of no verification.
	res, body = p.do(t, http.MethodGet, "/m/users%2Femail/status.json", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	assert.Nil(t, doc["backfill"].(map[string]any)["eta_seconds"])
	assert.Nil(t, doc["verification"].(map[string]any)["age_seconds"])
	assert.Nil(t, doc["verification"].(map[string]any)["at"])
	assert.Equal(t, []any{}, doc["instances"])
}

// TestJSONSchema pins the documents to the schema of docs/status.md:
// every field, with its name and type.
func TestJSONSchema(t *testing.T) {
	st := runningStatus("orders")
	st.Events = st.Events[:1]
	st.Backfill.Samples = st.Backfill.Samples[:1]
	st.Repairs.History = st.Repairs.History[:1]
	st.Instances = st.Instances[:1]
	st.ByStage = map[cutover.Stage]int{cutover.Shadow: 1}
	st.Verifying = verifyingAt(at)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	assert.JSONEq(t, `{
  "name": "orders",
  "phase": "backfill",
  "version": 3,
  "created_at": "2026-03-14T13:09:26Z",
  "updated_at": "2026-03-14T14:09:26Z",
  "at": "2026-03-14T15:09:26Z",
  "stages": ["dualwrite", "shadow"],
  "ceiling": null,
  "backfill": {
    "rows": 27000, "total": 81000, "done": false, "paused": false, "canceled": false,
    "checkpoint": "27000", "started_at": "2026-03-14T15:04:26Z", "done_at": null,
    "lease_owner": "host-1/4242", "lease_until": "2026-03-14T15:09:46Z",
    "rate_limit": 500, "batch_size": 0, "throttled": "", "rate": 100, "eta_seconds": 540,
    "samples": [{"at": "2026-03-14T15:04:26Z", "rows": 0}]
  },
  "verification": {
    "at": "2026-03-14T14:59:26Z", "age_seconds": 600, "clean": false, "rows": 20000, "differences": 3,
    "detail": "3 keys differ: 17, 204, 9001"
  },
  "verifying": {
    "started_at": "2026-03-14T15:08:26Z", "owner": "host-2/77", "rows": 27000, "total": 81000,
    "rate": 450, "eta_seconds": 120, "updated_at": "2026-03-14T15:09:26Z"
  },
  "repairs": {
    "pending": 5, "stuck": 1, "oldest": "2026-03-14T14:27:26Z",
    "history": [{"at": "2026-03-14T14:09:26Z", "pending": 0}]
  },
  "instances": [{"id": "host-1", "stage": "shadow", "seen_at": "2026-03-14T15:09:23Z"}],
  "by_stage": {"shadow": 1},
  "events": [{"id": 3, "migration": "orders", "at": "2026-03-14T14:09:26Z", "actor": "alice", "kind": "move",
    "from": "dualwrite", "to": "backfill", "version": 3, "reason": "dual writes everywhere", "detail": ""}]
}`, string(b))
}

func TestIndexJSON(t *testing.T) {
	p := newPage(t)
	res, body := p.do(t, http.MethodGet, "/status.json", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var doc struct {
		Migrations []struct {
			Name  string `json:"name"`
			Phase string `json:"phase"`
		} `json:"migrations"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Len(t, doc.Migrations, 2)
	assert.Equal(t, "orders", doc.Migrations[0].Name)
	assert.Equal(t, "users/email", doc.Migrations[1].Name)
	assert.Equal(t, "expand", doc.Migrations[1].Phase)
}

func TestHead(t *testing.T) {
	p := newPage(t)
	for _, target := range []string{"/", "/status.json", "/m/orders/", "/m/orders/status.json"} {
		res, body := p.do(t, http.MethodHead, target, "")
		assert.Equal(t, http.StatusOK, res.StatusCode, target)
		assert.Empty(t, body, target)
		assert.NotEmpty(t, res.Header.Get("Content-Length"), target)
	}
}

func TestNotFound(t *testing.T) {
	p := newPage(t)
	for _, tc := range []struct{ target, want string }{
		{"/m/nope/", `statuspage: no migration named &#34;nope&#34;`},
		{"/m/nope/status.json", `"error": "statuspage: no migration named \"nope\""`},
		{"/nope", "statuspage: no such page"},
		{"/m/", "statuspage: no such page"},
		{"/m/orders/nope", "statuspage: no such page"},
		{"/m/orders/x/y", "statuspage: no such page"},
		{"/nope.json", `"error": "statuspage: no such page"`},
	} {
		res, body := p.do(t, http.MethodGet, tc.target, "")
		assert.Equal(t, http.StatusNotFound, res.StatusCode, tc.target)
		assert.Contains(t, body, tc.want, tc.target)
	}
	// A migration unknown to an action is not found either, and nothing
	// is done.
	p = newPage(t, WithActions(allowAll))
	res, body := p.post(t, "/m/nope/pause", nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Contains(t, body, `no migration named &#34;nope&#34;`)
	assert.Empty(t, p.src.actions())
}

func TestDatabaseError(t *testing.T) {
	for _, target := range []string{"/", "/status.json", "/m/orders/", "/m/orders/status.json"} {
		p := newPage(t)
		p.src.readErr = errBroken
		res, body := p.do(t, http.MethodGet, target, "")
		assert.Equal(t, http.StatusInternalServerError, res.StatusCode, target)
		if strings.HasSuffix(target, ".json") {
			assert.Contains(t, body, msgDatabase, target)
		} else {
			assert.Contains(t, body, htmlEscape(msgDatabase), target)
		}
		assert.NotContains(t, body, errBroken.Error(), "the page does not show the database's error")
		assert.Contains(t, p.log.String(), "cutover: status page: read the metadata", target)
		assert.Contains(t, p.log.String(), errBroken.Error(), target)
	}
}

func TestSlashRedirect(t *testing.T) {
	p := newPage(t)
	res, _ := p.do(t, http.MethodGet, "/m/users%2Femail", "")
	require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
	loc := res.Header.Get("Location")
	assert.Equal(t, "./users%2Femail/", loc)
	// The location resolves to the migration's page wherever the page is
	// mounted.
	base, err := url.Parse("http://example.com/debug/cutover/m/users%2Femail")
	require.NoError(t, err)
	rel, err := url.Parse(loc)
	require.NoError(t, err)
	assert.Equal(t, "/debug/cutover/m/users%2Femail/", base.ResolveReference(rel).EscapedPath())
}

func TestMethodNotAllowed(t *testing.T) {
	p := newPage(t, WithActions(allowAll))
	for _, tc := range []struct{ method, target, allow string }{
		{http.MethodPost, "/", "GET, HEAD"},
		{http.MethodPut, "/status.json", "GET, HEAD"},
		{http.MethodDelete, "/m/orders/", "GET, HEAD"},
		{http.MethodPost, "/m/orders", "GET, HEAD"},
		{http.MethodGet, "/m/orders/pause", "POST"},
		{http.MethodHead, "/m/orders/move", "POST"},
		{http.MethodPut, "/m/orders/rate", "POST"},
	} {
		res, _ := p.do(t, tc.method, tc.target, "")
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, tc.method+" "+tc.target)
		assert.Equal(t, tc.allow, res.Header.Get("Allow"), tc.method+" "+tc.target)
	}
	assert.Empty(t, p.src.actions())
}

// TestMounted serves the page below a prefix, as the package documentation
// says to mount it, and follows its links and redirects.
func TestMounted(t *testing.T) {
	p := newPage(t, WithActions(allowAll))
	mux := http.NewServeMux()
	mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", p.h))
	get := func(target string) (*http.Response, string) {
		t.Helper()
		return serve(t, mux, http.MethodGet, target, "")
	}
	res, body := get("/debug/cutover/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	link := regexp.MustCompile(`<a href="(m/[^"]+)">users/email</a>`).FindStringSubmatch(body)
	require.NotNil(t, link)
	page := resolve(t, "/debug/cutover/", link[1])
	assert.Equal(t, "/debug/cutover/m/users%2Femail/", page)
	res, body = get(page)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Equal(t, "/debug/cutover/", resolve(t, page, "../../"))
	assert.Equal(t, "/debug/cutover/m/users%2Femail/status.json", resolve(t, page, "status.json"))
	res, _ = get(resolve(t, page, "status.json"))
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// A form posts to its action, relative to the page, and the answer
	// sends the browser back to the page.
	action := resolve(t, page, "pause")
	res, body = serve(t, mux, http.MethodPost, action, "reason=lunch", "Origin", "http://example.com")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	assert.Equal(t, page, resolve(t, action, res.Header.Get("Location")))
	require.Len(t, p.src.actions(), 1)
	assert.Equal(t, "users/email", p.src.actions()[0].name)

	// Mounted with the prefix's slash stripped too, the paths are the same.
	mux = http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops/", p.h))
	res, _ = serve(t, mux, http.MethodGet, "/ops/", "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = serve(t, mux, http.MethodGet, "/ops/m/orders/", "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

// resolve returns the path of ref relative to the page at base.
func resolve(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	require.NoError(t, err)
	r, err := url.Parse(ref)
	require.NoError(t, err)
	return b.ResolveReference(r).EscapedPath()
}
