package statuspage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/statuspage"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The migration of the test copies items.v to items.v2, rows rows, in
// batches of batch, and holds the runner before batch number held+1 so
// that the page shows a backfill in the middle of its run.
const (
	rows  = 2000
	batch = 100
	held  = 8
)

// waitLimit bounds every wait of the test outside the browser.
const waitLimit = 30 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// clock is the store's clock: it moves only when the test or a batch
// moves it, so that the backfill's samples, 10 s apart in the store's
// time, come as fast as the batches do.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestStatusPageInBrowser serves the status page over a real store, whose
// backfill is running, to a headless Chromium: the read-only page shows
// the progress bar, the verification, the repair backlog and the charts,
// and no action control; the page with actions pauses the backfill and
// sets its rate limit.
func TestStatusPageInBrowser(t *testing.T) {
	ctx := context.Background()
	db := testdb.SQLite(t)
	clk := &clock{now: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)}
	store, mig := setUp(t, ctx, db.DB, clk)
	runDone, stopRunner := startBackfill(t, mig, clk)

	roPage, err := statuspage.New(store, statuspage.WithLogger(quiet))
	require.NoError(t, err)
	rwPage, err := statuspage.New(store, statuspage.WithLogger(quiet),
		statuspage.WithActions(func(*http.Request) (string, error) { return "browser-test", nil }))
	require.NoError(t, err)
	ro, rw := serve(t, roPage), serve(t, rwPage)

	b := startBrowser(t)

	// The read-only index lists the migration; its link leads to its page.
	b.do(t, "open the index", chromedp.Navigate(ro+"/debug/cutover/"))
	assert.Equal(t, "items-copy", get(t, b, "read the index", chromedp.Text(chromedp.CSS("#migrations td a"))))
	loaded(t, b, "follow the link", chromedp.Click(chromedp.CSS("#migrations td a")))
	assert.Equal(t, ro+"/debug/cutover/m/items-copy/", get(t, b, "read the location", chromedp.Location()))

	// The progress bar, at the rows the held runner copied.
	bar := get(t, b, "read the progress bar", chromedp.Attributes(chromedp.CSS("#backfill progress")))
	assert.Equal(t, strconv.Itoa(rows), bar["max"])
	assert.Equal(t, strconv.Itoa(held*batch), bar["value"])
	assert.Equal(t, "running", text(t, b, "#backfill-state"))
	assert.Contains(t, text(t, b, "#backfill-rate"), "rows/s")
	assert.NotEqual(t, "—", text(t, b, "#backfill-eta"))
	assert.Contains(t, text(t, b, "#backfill-lease"), "statuspage-e2e")
	// The verification, run before the backfill: every row differed.
	assert.Contains(t, text(t, b, "#verification"), "2,000 differences")
	assert.Equal(t, "2,000", text(t, b, "#verification-differences"))
	// The repair backlog: the recorded failures and the reported keys.
	pending, err := strconv.Atoi(strings.ReplaceAll(text(t, b, "#repairs-pending"), ",", ""))
	require.NoError(t, err)
	assert.Greater(t, pending, 0)
	// The charts, each a line of several points.
	for _, chart := range []string{"#rate-chart", "#backlog-chart"} {
		points := get(t, b, "read the chart "+chart,
			chromedp.AttributeValue(chromedp.CSS(chart+" polyline.line"), "points"))
		assert.GreaterOrEqual(t, len(strings.Fields(points.Value)), 3, chart)
	}
	assert.Equal(t, 2, count(t, b, "#instances tbody tr:has(td + td + td)"), "instances")
	// Read-only: no form, button or input.
	assert.Equal(t, 0, count(t, b, "form, button, input"))
	// The style sheet applied, under the page's Content-Security-Policy.
	assert.Equal(t, "rgb(246, 248, 250)",
		get(t, b, "read the header's style", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).backgroundColor`)))

	// The page with actions, of a running backfill, as the screenshot
	// shows it; Pause pauses the backfill, in the metadata.
	b.do(t, "open the page with actions", chromedp.Navigate(rw+"/debug/cutover/m/items-copy/"))
	require.Equal(t, 1, count(t, b, "#pause"))
	shot := get(t, b, "take a screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(artifacts(t), "statuspage.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot of the status page: %s", path)
	b.do(t, "give a reason", chromedp.SendKeys(chromedp.CSS(`form[action="pause"] input[name="reason"]`), "seen in a browser"))
	loaded(t, b, "click Pause", chromedp.Click(chromedp.CSS("#pause")))
	assert.Equal(t, rw+"/debug/cutover/m/items-copy/", get(t, b, "read the location", chromedp.Location()))
	assert.Equal(t, "paused", text(t, b, "#backfill-state"))
	assert.Equal(t, 1, count(t, b, "#resume"))
	st, err := mig.State(ctx)
	require.NoError(t, err)
	assert.True(t, st.Backfill.Paused, "the metadata says paused")
	evs, err := mig.Events(ctx)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	assert.Equal(t, "browser-test", last.Actor)
	assert.Equal(t, "seen in a browser", last.Reason)

	// The rate form sets the rate limit the runner obeys from its next wait.
	b.do(t, "give a rate", chromedp.SendKeys(chromedp.CSS("#rate"), "250"))
	loaded(t, b, "click Set rate", chromedp.Click(chromedp.CSS(`form[action="rate"] button`)))
	assert.Equal(t, "250 rows/s, set by an operator", text(t, b, "#backfill-rate-limit"))
	st, err = mig.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, 250.0, st.Backfill.RateLimit)

	for _, line := range b.logged() {
		t.Logf("page log: %s", line)
		assert.NotContains(t, line, "Content Security Policy")
		assert.False(t, strings.HasPrefix(line, "exception"), line)
	}

	stopRunner()
	select {
	case err := <-runDone:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(waitLimit):
		t.Fatalf("the backfill runner did not stop within %v of its context's end", waitLimit)
	}
}

// setUp makes the table and the migration "items-copy" in its backfill
// phase, with repair-log entries recorded over the last quarter of an
// hour, a verification that found every row to differ, and two instances.
func setUp(t *testing.T, ctx context.Context, db *sqlx.DB, clk *clock) (*expandcontract.Store, *expandcontract.Migration) {
	t.Helper()
	_, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL, v2 TEXT)`)
	require.NoError(t, err)
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	for id := 1; id <= rows; id++ {
		_, err := tx.ExecContext(ctx, `INSERT INTO items (id, v) VALUES (?, ?)`, id, fmt.Sprintf("item %d", id))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())

	store, err := expandcontract.Open(ctx, db, expandcontract.WithClock(clk.Now), expandcontract.WithLogger(quiet))
	require.NoError(t, err)
	mig := suite.Migration(store, "items-copy")
	_, err = mig.Ensure(ctx, "deploy-1")
	require.NoError(t, err)
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		clk.add(time.Minute)
		_, err := mig.Move(ctx, expandcontract.Move{To: p, Actor: "alice", Reason: "on to " + p.String()})
		require.NoError(t, err)
	}
	log, err := repair.NewLog(mig)
	require.NoError(t, err)
	for i := range 5 {
		clk.add(3 * time.Minute)
		require.NoError(t, log.Record(ctx, cutover.Repair{Op: "items.save", Key: strconv.Itoa(i + 1), Target: cutover.New,
			Stage: cutover.DualWrite, Reason: cutover.SecondaryFailed, Err: errors.New("new store timed out")}))
	}
	res, err := suite.Verify(ctx, mig,
		&verify.SQLRows{DB: db, Table: "items", Key: "id", Value: "v"},
		&verify.SQLRows{DB: db, Table: "items", Key: "id", Value: "v2"},
		verify.WithRepairLog(log), verify.WithMaxReportedKeys(10))
	require.NoError(t, err)
	require.Equal(t, int64(rows), res.Differences)
	require.NoError(t, mig.ReportStage(ctx, "host-a", cutover.DualWrite))
	require.NoError(t, mig.ReportStage(ctx, "host-b", cutover.Shadow))
	return store, mig
}

// startBackfill runs the backfill of mig until stop is called: a BatchFunc
// copies each range and moves the clock on by 10 s, and the throttle hook
// holds the runner before batch held+1. It returns once the runner is
// held, with the channel that gets Run's error.
func startBackfill(t *testing.T, mig *expandcontract.Migration, clk *clock) (done <-chan error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	holding := make(chan struct{})
	var calls int
	copyRange := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		q, args := `UPDATE items SET v2 = v WHERE 1 = 1`, []any(nil)
		if r.From != nil {
			q, args = q+` AND id > ?`, append(args, r.From)
		}
		if r.To != nil {
			q, args = q+` AND id <= ?`, append(args, r.To)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		clk.add(10 * time.Second)
		return res.RowsAffected()
	})
	runner, err := backfill.New(mig,
		backfill.Keyset{Table: "items", Column: "id", Kind: expandcontract.IntKeys},
		copyRange,
		backfill.WithBatchSize(batch),
		backfill.WithOwner("statuspage-e2e"),
		// The store's clock moves 10 s a batch: a lease of a day never runs
		// out in the test, so no renewal is needed.
		backfill.WithLease(24*time.Hour),
		backfill.WithThrottle(func(ctx context.Context) (time.Duration, error) {
			// Called before each batch, by the runner's goroutine alone.
			if calls++; calls <= held {
				return 0, nil
			}
			if calls == held+1 {
				close(holding)
			}
			<-ctx.Done()
			return 0, ctx.Err()
		}))
	require.NoError(t, err)
	errs := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		errs <- runner.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(waitLimit):
			t.Errorf("the backfill runner did not stop within %v of its context's end", waitLimit)
		}
	})
	select {
	case <-holding:
	case err := <-errs:
		cancel()
		t.Fatalf("the backfill ended before batch %d: %v", held+1, err)
	case <-time.After(waitLimit):
		cancel()
		t.Fatalf("the backfill did not reach batch %d within %v", held+1, waitLimit)
	}
	return errs, cancel
}

// serve serves page below /debug/cutover on 127.0.0.1 until the test
// ends, and returns the server's URL.
func serve(t *testing.T, page http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", page))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// loaded runs trigger, a click, and waits for the page it loads.
func loaded(t *testing.T, b *browser, what string, trigger chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, b, what, chromedp.WaitEvent(page.LoadEventFired, nil, trigger))
}

// text returns the text of the element sel selects.
func text(t *testing.T, b *browser, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, b, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// count returns how many elements sel selects.
func count(t *testing.T, b *browser, sel string) int {
	t.Helper()
	return get(t, b, "count "+sel, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
}
