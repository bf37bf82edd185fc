package statuspage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/statuspage"
	"github.com/cutover-go/cutover/internal/testdb"
)

var quiet = slog.New(slog.DiscardHandler)

var errSignIn = errors.New("sign in first")

// fixture is a store with two migrations, "orders" in the backfill phase,
// with an instance and a repair-log entry, and "users/email" just created,
// and the page over it, with actions by "carol", mounted below
// /debug/cutover.
type fixture struct {
	store  *expandcontract.Store
	orders *expandcontract.Migration
	mux    *http.ServeMux
	log    *syncBuffer
}

func newFixture(t *testing.T, db *sqlx.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{log: &syncBuffer{}}
	f.store = ectest.Open(t, db, ectest.NewClock())
	f.orders = ectest.ToBackfill(t, f.store, "orders")
	ectest.Ensure(t, f.store, "users/email")
	require.NoError(t, f.orders.ReportStage(ctx, "host-1", cutover.Shadow))
	repairs, err := repair.NewLog(f.orders)
	require.NoError(t, err)
	require.NoError(t, repairs.Record(ctx, cutover.Repair{Op: "orders.save", Key: "17", Target: cutover.New,
		Stage: cutover.DualWrite, Reason: cutover.SecondaryFailed, Err: errors.New("timeout")}))

	page, err := statuspage.New(f.store,
		statuspage.WithLogger(slog.New(slog.NewTextHandler(f.log, nil))),
		statuspage.WithActions(func(*http.Request) (string, error) { return "carol", nil }))
	require.NoError(t, err)
	f.mux = http.NewServeMux()
	f.mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", page))
	return f
}

// do sends a request to the page and returns its answer and body; a POST
// is a same-origin form.
func (f *fixture) do(t *testing.T, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://example.com")
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	b, err := io.ReadAll(w.Result().Body)
	require.NoError(t, err)
	return w.Result(), string(b)
}

// state returns what the metadata holds of "orders": its state and its
// history.
func (f *fixture) state(t *testing.T) (expandcontract.State, []expandcontract.Event) {
	t.Helper()
	st, err := f.orders.State(context.Background())
	require.NoError(t, err)
	evs, err := f.orders.Events(context.Background())
	require.NoError(t, err)
	return st, evs
}

func TestStoreRead(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newFixture(t, db.DB)
		res, body := f.do(t, http.MethodGet, "/debug/cutover/status.json", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var all struct {
			Migrations []struct {
				Name    string `json:"name"`
				Phase   string `json:"phase"`
				Repairs struct {
					Pending int64 `json:"pending"`
				} `json:"repairs"`
			} `json:"migrations"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &all))
		require.Len(t, all.Migrations, 2)
		assert.Equal(t, "orders", all.Migrations[0].Name)
		assert.Equal(t, "backfill", all.Migrations[0].Phase)
		assert.Equal(t, int64(1), all.Migrations[0].Repairs.Pending)
		assert.Equal(t, "users/email", all.Migrations[1].Name)
		assert.Equal(t, "expand", all.Migrations[1].Phase)

		res, body = f.do(t, http.MethodGet, "/debug/cutover/", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		assert.Contains(t, body, `<a href="m/users%2Femail/">users/email</a>`)

		res, body = f.do(t, http.MethodGet, "/debug/cutover/m/orders/", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		for _, want := range []string{
			`<span class="phase" id="phase">backfill</span>`,
			`stages allowed: dualwrite to shadow`,
			`<dd id="repairs-pending">1</dd>`,
			`<tr><td>host-1</td><td>shadow</td>`,
			`<td>test</td><td>move</td><td>dualwrite → backfill</td>`,
			`<svg id="rate-chart"`, `<svg id="backlog-chart"`,
			`<form method="post" action="pause">`,
		} {
			assert.Contains(t, body, want)
		}

		res, body = f.do(t, http.MethodGet, "/debug/cutover/m/users%2Femail/status.json", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		var one map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &one))
		assert.Equal(t, "users/email", one["name"])
		assert.Equal(t, []any{"off"}, one["stages"])

		for _, target := range []string{"/debug/cutover/m/nope/", "/debug/cutover/m/nope/status.json",
			"/debug/cutover/m/" + url.PathEscape(strings.Repeat("x", 300)) + "/"} {
			res, _ = f.do(t, http.MethodGet, target, nil)
			assert.Equal(t, http.StatusNotFound, res.StatusCode, target)
		}
	})
}

func TestStoreActions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newFixture(t, db.DB)
		post := func(action string, form url.Values) (*http.Response, string) {
			t.Helper()
			return f.do(t, http.MethodPost, "/debug/cutover/m/orders/"+action, form)
		}
		lastEvent := func() expandcontract.Event {
			_, evs := f.state(t)
			return evs[len(evs)-1]
		}

		res, body := post("pause", url.Values{"reason": {"lunch"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
		assert.Equal(t, "./", res.Header.Get("Location"))
		st, _ := f.state(t)
		assert.True(t, st.Backfill.Paused)
		ev := lastEvent()
		assert.Equal(t, "carol", ev.Actor)
		assert.Equal(t, "lunch", ev.Reason)

		res, _ = post("resume", url.Values{"reason": {"back"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		st, _ = f.state(t)
		assert.False(t, st.Backfill.Paused)

		res, _ = post("rate", url.Values{"rate": {"250"}, "reason": {"night"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		res, _ = post("batch-size", url.Values{"size": {"500"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		st, _ = f.state(t)
		assert.Equal(t, 250.0, st.Backfill.RateLimit)
		assert.Equal(t, 500, st.Backfill.BatchSize)
		assert.Equal(t, "carol", lastEvent().Actor)

		// A move that a guard refuses: 409 with the refusal, recorded, and
		// the phase stays.
		res, body = post("move", url.Values{"to": {"switchreads"}, "version": {"3"}, "reason": {"go"}})
		require.Equal(t, http.StatusConflict, res.StatusCode, body)
		assert.Contains(t, body, `id="notice">Refused: expandcontract: phase move refused by a guard: `)
		assert.Contains(t, body, "backfill not complete")
		st, _ = f.state(t)
		assert.Equal(t, expandcontract.Backfill, st.Phase)
		ev = lastEvent()
		assert.Equal(t, "refuse", ev.Kind)
		assert.Equal(t, "carol", ev.Actor)

		// A move from a page that showed an older version: a conflict.
		res, body = post("move", url.Values{"to": {"dualwrite"}, "version": {"2"}})
		require.Equal(t, http.StatusConflict, res.StatusCode, body)
		assert.Contains(t, body, "migration changed concurrently")
		st, _ = f.state(t)
		assert.Equal(t, expandcontract.Backfill, st.Phase)

		res, body = post("move", url.Values{"to": {"dualwrite"}, "version": {"3"}, "reason": {"roll back"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
		st, _ = f.state(t)
		assert.Equal(t, expandcontract.DualWrite, st.Phase)
		ev = lastEvent()
		assert.Equal(t, "move", ev.Kind)
		assert.Equal(t, "carol", ev.Actor)
		assert.Equal(t, "roll back", ev.Reason)

		res, _ = f.do(t, http.MethodPost, "/debug/cutover/m/nope/pause", url.Values{})
		assert.Equal(t, http.StatusNotFound, res.StatusCode)
	})
}

// TestStoreRefusals: every refused action leaves the metadata as it was.
func TestStoreRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		refuse := true
		f := newFixture(t, db.DB)
		page, err := statuspage.New(f.store, statuspage.WithLogger(quiet),
			statuspage.WithActions(func(*http.Request) (string, error) {
				if refuse {
					return "", errSignIn
				}
				return "carol", nil
			}))
		require.NoError(t, err)
		ro, err := statuspage.New(f.store, statuspage.WithLogger(quiet))
		require.NoError(t, err)
		before, beforeEvents := f.state(t)

		send := func(h http.Handler, method, target, body string, header ...string) int {
			t.Helper()
			r := httptest.NewRequest(method, target, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(header); i += 2 {
				r.Header.Set(header[i], header[i+1])
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w.Code
		}
		assert.Equal(t, http.StatusForbidden, send(ro, http.MethodPost, "/m/orders/pause", ""), "read-only")
		assert.Equal(t, http.StatusForbidden, send(page, http.MethodPost, "/m/orders/pause", ""), "not authorised")
		refuse = false
		assert.Equal(t, http.StatusMethodNotAllowed, send(page, http.MethodGet, "/m/orders/pause", ""), "GET")
		assert.Equal(t, http.StatusForbidden, send(page, http.MethodPost, "/m/orders/pause", "",
			"Origin", "http://evil.example"), "cross-origin")
		assert.Equal(t, http.StatusForbidden, send(page, http.MethodPost, "/m/orders/rate", "rate=5",
			"Sec-Fetch-Site", "cross-site"), "cross-site")
		for _, body := range []string{"rate=-1", "rate=NaN", "rate=2e9", "rate=x", "rate=5&rate=6", "rate=5&who=me"} {
			assert.Equal(t, http.StatusBadRequest, send(page, http.MethodPost, "/m/orders/rate", body), body)
		}
		for _, body := range []string{"size=-1", "size=1.5", "size=2000000", ""} {
			assert.Equal(t, http.StatusBadRequest, send(page, http.MethodPost, "/m/orders/batch-size", body), body)
		}
		for _, body := range []string{"to=nowhere", "to=contract&version=0", "to=dualwrite&reason=a%0Ab"} {
			assert.Equal(t, http.StatusBadRequest, send(page, http.MethodPost, "/m/orders/move", body), body)
		}
		after, afterEvents := f.state(t)
		assert.Equal(t, before, after)
		assert.Equal(t, beforeEvents, afterEvents)
	})
}

func TestStoreDatabaseError(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newFixture(t, db.DB)
		// A second pool on the same database, closed under the page.
		other, err := sqlx.Open(db.DriverName(), db.DSN)
		require.NoError(t, err)
		store := ectest.Open(t, other, nil)
		log := &syncBuffer{}
		page, err := statuspage.New(store, statuspage.WithLogger(slog.New(slog.NewTextHandler(log, nil))),
			statuspage.WithActions(func(*http.Request) (string, error) { return "carol", nil }))
		require.NoError(t, err)
		require.NoError(t, other.Close())
		for _, target := range []string{"/", "/status.json", "/m/orders/", "/m/orders/status.json"} {
			w := httptest.NewRecorder()
			page.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
			assert.Equal(t, http.StatusInternalServerError, w.Code, target)
			assert.Contains(t, w.Body.String(), "could not read the migrations", target)
			assert.NotContains(t, w.Body.String(), "database is closed", target)
		}
		assert.Contains(t, log.String(), "database is closed")
		r := httptest.NewRequest(http.MethodPost, "/m/orders/pause", nil)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		page.ServeHTTP(w, r)
		assert.Equal(t, http.StatusInternalServerError, w.Code)
		st, _ := f.state(t)
		assert.False(t, st.Backfill.Paused)
	})
}

// syncBuffer is a buffer that handlers of several goroutines can write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
