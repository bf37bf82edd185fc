package backfill_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// batchLog is a BatchFunc that copies like copyRange and records how many
// rows each of its calls copied, committed or not.
type batchLog struct {
	mu   sync.Mutex
	rows []int64
}

func (l *batchLog) batch() backfill.BatchFunc {
	return func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		n, err := copyRange(ctx, tx, r)
		l.mu.Lock()
		l.rows = append(l.rows, n)
		l.mu.Unlock()
		return n, err
	}
}

func (l *batchLog) sizes() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.rows...)
}

// settingsEvents returns the history of the migration's settings and
// controls: actor, reason and detail of each.
func settingsEvents(t *testing.T, m *expandcontract.Migration) []string {
	t.Helper()
	evs, err := m.Events(t.Context())
	require.NoError(t, err)
	var out []string
	for _, ev := range evs {
		if ev.Kind == "backfill" && ev.Actor == "operator" {
			out = append(out, ev.Actor+" | "+ev.Reason+" | "+ev.Detail)
		}
	}
	return out
}

// TestBackfillSettingsChangeWhileItRuns changes the batch size and the rate
// limit of a running backfill, and pauses it, through a second store on
// its own connection pool, as an operator's command would, from the
// runner's throttle hook, which runs before each batch. The batch that
// runs when a setting changes commits as it was read; the next one
// follows the new setting. Each change is in the history.
func TestBackfillSettingsChangeWhileItRuns(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(200)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		logs := newLogSignal()
		s := ectest.Open(t, db.DB, nil, expandcontract.WithLogger(slog.New(logs)))
		other := ectest.Open(t, secondPool(t, db), nil)
		ectest.ToBackfill(t, s, "phones")
		om := ectest.Migration(t, other, "phones")

		var calls atomic.Int64
		steer := func(ctx context.Context) (time.Duration, error) {
			switch calls.Add(1) {
			case 3:
				return 0, backfill.SetBatchSize(ctx, om, 25, "operator", "replicas keep up")
			case 5:
				return 0, backfill.SetRate(ctx, om, 5000, "operator", "spare the primary")
			case 7:
				return 0, backfill.Pause(ctx, om, "operator", "look at the replicas")
			}
			return 0, nil
		}
		var log batchLog
		var reports []backfill.Progress
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"}, log.batch(),
			backfill.WithBatchSize(10), backfill.WithThrottle(steer), backfill.WithPollInterval(2*time.Millisecond),
			backfill.WithProgress(func(p backfill.Progress) { reports = append(reports, p) }))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()

		logs.wait(t, "backfill paused")
		st := state(t, s, "phones")
		assert.True(t, st.Paused)
		assert.Equal(t, 25, st.BatchSize)
		assert.Equal(t, 5000.0, st.RateLimit)
		assert.Equal(t, int64(3*10+3*25), st.Rows, "batches 1-3 of 10 keys, 4-6 of 25; the 7th rolled back")
		// While paused, the batch size goes back to the runner's own.
		require.NoError(t, backfill.SetBatchSize(t.Context(), om, 0, "operator", "back to normal"))
		require.NoError(t, backfill.Resume(t.Context(), om, "operator", "replicas fine"))
		require.NoError(t, <-done)
		checkCopiedOnce(t, db.DB, "customers", len(ids))

		want := []int64{10, 10, 10, 25, 25, 25, 25} // the 7th was rolled back by the pause
		for left := int64(200 - 105); left > 0; left -= 10 {
			want = append(want, min(left, 10))
		}
		assert.Equal(t, want, log.sizes(), "rows of each batch")
		type applied struct {
			rate float64
			size int
		}
		var got []applied
		for _, p := range reports {
			got = append(got, applied{p.RateLimit, p.BatchSize})
		}
		require.Len(t, got, 6+10+1)
		assert.Equal(t, []applied{{0, 10}, {0, 10}, {0, 25}, {0, 25}, {5000, 25}, {5000, 25}}, got[:6],
			"each change is applied from the commit of the batch that ran when it was made")
		for i, a := range got[6:] {
			assert.Equal(t, applied{5000, 10}, a, "report %d after the resume", 7+i)
		}
		assert.Equal(t, []string{
			"operator | replicas keep up | batch size: none -> 25 keys",
			"operator | spare the primary | rate limit: none -> 5000 rows/s",
			"operator | look at the replicas | pause: paused false -> true",
			"operator | back to normal | batch size: 25 keys -> none",
			"operator | replicas fine | resume: paused true -> false",
		}, settingsEvents(t, om))
	})
}

// TestBackfillWaitSeesControls gives a runner a rate limit so low that it
// would wait for a quarter of an hour after each batch, and checks that it
// sees, while it waits, a pause, a new rate limit set while paused and one
// set while it waits, each within its poll interval.
func TestBackfillWaitSeesControls(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(40)))
		logs := newLogSignal()
		s := ectest.Open(t, db.DB, nil, expandcontract.WithLogger(slog.New(logs)))
		other := ectest.Open(t, secondPool(t, db), nil)
		ectest.ToBackfill(t, s, "phones")
		om := ectest.Migration(t, other, "phones")

		reports := make(chan backfill.Progress, 16)
		slow := func(p backfill.Progress) {
			if p.Batches == 2 {
				// Before the wait after batch 2, which applies the rate of
				// before; batch 3 commits with this one.
				assert.NoError(t, backfill.SetRate(context.Background(), om, 10.0/900, "operator", "slow again"))
			}
			reports <- p
		}
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithBatchSize(10), backfill.WithRate(10.0/900),
			backfill.WithPollInterval(5*time.Millisecond), backfill.WithProgress(slow))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()
		next := func(what string) backfill.Progress {
			t.Helper()
			select {
			case p := <-reports:
				return p
			case err := <-done:
				t.Fatalf("run ended before %s: %v", what, err)
			case <-time.After(20 * time.Second):
				t.Fatalf("no progress report: the runner did not see %s while it waited", what)
			}
			return backfill.Progress{}
		}

		assert.Equal(t, int64(1), next("the first batch").Batches)
		require.NoError(t, backfill.Pause(t.Context(), om, "operator", "hold"))
		logs.wait(t, "backfill paused")
		assert.Equal(t, int64(10), state(t, s, "phones").Rows)
		require.NoError(t, backfill.SetRate(t.Context(), om, 1e6, "operator", "fast"))
		require.NoError(t, backfill.Resume(t.Context(), om, "operator", "go"))
		assert.Equal(t, int64(2), next("the resume").Batches)
		p := next("batch 3")
		assert.Equal(t, int64(3), p.Batches)
		assert.InDelta(t, 10.0/900, p.RateLimit, 1e-12, "batch 3 committed with the rate set after batch 2")
		require.NoError(t, backfill.SetRate(t.Context(), om, 1e6, "operator", "fast again"))
		assert.Equal(t, int64(4), next("the new rate").Batches)
		assert.True(t, next("the end").Done)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after its last batch")
		}
		assert.Equal(t, []string{
			"operator | hold | pause: paused false -> true",
			"operator | fast | rate limit: none -> 1e+06 rows/s",
			"operator | go | resume: paused true -> false",
			"operator | slow again | rate limit: 1e+06 rows/s -> 0.011111111111111112 rows/s",
			"operator | fast again | rate limit: 0.011111111111111112 rows/s -> 1e+06 rows/s",
		}, settingsEvents(t, om))
	})
}

// TestBackfillControlsTwice gives each control twice at one instant of a
// frozen clock: the second changes nothing in the row, which MySQL counts
// as no row changed, and still succeeds and is recorded.
func TestBackfillControlsTwice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClock())
		m := ectest.ToBackfill(t, s, "phones")
		ctx := t.Context()
		for range 2 {
			require.NoError(t, backfill.Pause(ctx, m, "operator", "twice"))
			require.NoError(t, backfill.Cancel(ctx, m, "operator", "twice"))
			require.NoError(t, backfill.MarkDone(ctx, m, "operator", "twice"))
		}
		assert.Equal(t, []string{
			"operator | twice | pause: paused false -> true",
			"operator | twice | cancel: canceled false -> true",
			"operator | twice | marked done: done at none -> 2026-11-01T12:00:00Z",
			"operator | twice | pause: paused true -> true",
			"operator | twice | cancel: canceled true -> true",
			"operator | twice | marked done: done at 2026-11-01T12:00:00Z -> 2026-11-01T12:00:00Z",
		}, settingsEvents(t, m))
	})
}
