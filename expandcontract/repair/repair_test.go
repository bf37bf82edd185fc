package repair_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// repairFixture is a store with a settable clock and a repair log called
// "users" on one test database.
type repairFixture struct {
	db      *testdb.DB
	clock   *ectest.Clock
	metrics *metrictest.Reader
	store   *expandcontract.Store
	log     *repair.Log
}

func newRepairFixture(t *testing.T, db *testdb.DB) *repairFixture {
	t.Helper()
	f := &repairFixture{db: db, clock: ectest.NewClock(),
		metrics: metrictest.New(t)}
	f.store = f.open(t)
	var err error
	f.log, err = repair.NewLog(ectest.Migration(t, f.store, "users"))
	require.NoError(t, err)
	return f
}

// open opens another store on the fixture's database, as another instance
// of the service would.
func (f *repairFixture) open(t *testing.T) *expandcontract.Store {
	t.Helper()
	s, err := expandcontract.Open(t.Context(), f.db.DB,
		expandcontract.WithClock(f.clock.Now),
		expandcontract.WithLogger(slog.New(slog.DiscardHandler)),
		expandcontract.WithMeterProvider(f.metrics.Provider()))
	require.NoError(t, err)
	return s
}

func (f *repairFixture) repairer(t *testing.T, fn repair.Func, opts ...repair.Option) *repair.Repairer {
	t.Helper()
	r, err := repair.New(f.log, fn, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Close()) })
	return r
}

func (f *repairFixture) record(t *testing.T, r cutover.Repair) {
	t.Helper()
	require.NoError(t, f.log.Record(t.Context(), r))
}

func (f *repairFixture) entries(t *testing.T, includeDone bool) []repair.Entry {
	t.Helper()
	e, err := f.log.Entries(t.Context(), repair.Query{IncludeDone: includeDone, Limit: 1000})
	require.NoError(t, err)
	return e
}

func (f *repairFixture) pending(t *testing.T) int64 {
	t.Helper()
	n, err := f.log.Pending(t.Context())
	require.NoError(t, err)
	return n
}

// repairOfKey is the entry a dual writer records when a write of key misses
// the new store.
func repairOfKey(key string) cutover.Repair {
	return cutover.Repair{Op: "users.save", Key: key, Target: cutover.New, Stage: cutover.DualWrite,
		Reason: cutover.SecondaryFailed, Err: errors.New("new store down")}
}

// repairCalls makes repair functions that record their calls.
type repairCalls struct {
	mu    sync.Mutex
	calls []cutover.Repair
}

func (c *repairCalls) fn(err error) repair.Func {
	return func(_ context.Context, r cutover.Repair) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls = append(c.calls, r)
		return err
	}
}

func (c *repairCalls) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

func TestRepairLogRecordRoundTrip(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		recorded := []cutover.Repair{
			{Op: "users.save", Key: "42", Target: cutover.New, Stage: cutover.Shadow, Reason: cutover.SecondaryFailed,
				Err: errors.New("new store: connection reset; ключ «42» 🚧")},
			{Op: "users.save", Key: "ünïcødé key", Target: cutover.Old, Stage: cutover.Live, Reason: cutover.AuthoritativeFailed},
			{Op: "users.get", Key: "7", Target: cutover.New, Stage: cutover.Rampdown, Reason: cutover.Mismatch,
				Err: errors.New("name: \"Ada\" != \"Ava\"")},
			{Op: "users.save", Key: strings.Repeat("ж", 255), Target: cutover.New, Stage: cutover.Live,
				Reason: cutover.Fallback, Err: errors.New(strings.Repeat("x", 10000))},
			{Op: "users.save", Key: "", Target: cutover.Old, Stage: cutover.Complete, Reason: cutover.Unverified,
				Err: errors.New("bad \xff bytes and a \x00 NUL")},
		}
		for i, r := range recorded {
			r.Time = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) // the log stamps its own time
			f.record(t, r)
			if i == 0 {
				f.clock.Advance(time.Second)
			}
		}
		other, err := repair.NewLog(ectest.Migration(t, f.store, "orders"))
		require.NoError(t, err)
		require.NoError(t, other.Record(t.Context(), repairOfKey("1")))

		got := f.entries(t, false)
		require.Len(t, got, len(recorded))
		start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		for i, e := range got {
			want := recorded[i]
			at := start.Add(time.Second)
			if i == 0 {
				at = start
			}
			assert.Equal(t, want.Op, e.Repair.Op, "entry %d", i)
			assert.Equal(t, want.Key, e.Repair.Key, "entry %d", i)
			assert.Equal(t, want.Target, e.Repair.Target, "entry %d", i)
			assert.Equal(t, want.Stage, e.Repair.Stage, "entry %d", i)
			assert.Equal(t, want.Reason, e.Repair.Reason, "entry %d", i)
			assert.True(t, at.Equal(e.Repair.Time), "entry %d: time %v, want %v", i, e.Repair.Time, at)
			assert.True(t, at.Equal(e.NextAttemptAt), "entry %d is due when recorded", i)
			assert.Zero(t, e.Attempts)
			assert.Empty(t, e.LastError)
			assert.False(t, e.Stuck)
			assert.False(t, e.Done())
			if i > 0 {
				assert.Greater(t, e.ID, got[i-1].ID, "entries come in the order recorded")
			}
		}
		assert.EqualError(t, got[0].Repair.Err, "new store: connection reset; ключ «42» 🚧")
		assert.NoError(t, got[1].Repair.Err, "no error is kept as none")
		assert.EqualError(t, got[2].Repair.Err, "name: \"Ada\" != \"Ava\"")
		assert.Len(t, got[3].Repair.Err.Error(), repair.MaxErrorLen, "long errors are cut")
		assert.True(t, strings.HasSuffix(got[3].Repair.Err.Error(), "..."))
		assert.Equal(t, "bad \uFFFD bytes and a \\x00 NUL", got[4].Repair.Err.Error())

		assert.Equal(t, int64(len(recorded)), f.pending(t))
		n, err := other.Pending(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(1), n, "logs of different migrations are apart")
		assert.Equal(t, "orders", other.Name())

		page, err := f.log.Entries(t.Context(), repair.Query{AfterID: got[1].ID, Limit: 2})
		require.NoError(t, err)
		require.Len(t, page, 2)
		assert.Equal(t, got[2].ID, page[0].ID)
		assert.Equal(t, got[3].ID, page[1].ID)
	})
}

func TestRepairLogRejectsBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		for _, name := range []string{"", "a\x00b", "tab\there", strings.Repeat("n", 256), "bad \xff utf8"} {
			_, err := f.store.Migration(name)
			assert.ErrorIs(t, err, expandcontract.ErrInvalidInput, "name %q", name)
		}
		_, err := repair.NewLog(nil)
		assert.ErrorIs(t, err, repair.ErrInvalidInput, "a nil migration")
		for _, tc := range []struct {
			name string
			r    cutover.Repair
			want string
		}{
			{"target", cutover.Repair{Op: "users.save", Key: "1", Target: 7}, "target"},
			{"stage", cutover.Repair{Op: "users.save", Key: "1", Stage: 99}, "stage"},
			{"long key", cutover.Repair{Op: "users.save", Key: strings.Repeat("k", 256)}, "key"},
			{"long op", cutover.Repair{Op: strings.Repeat("o", 256), Key: "1"}, "operation"},
			{"key not utf8", cutover.Repair{Op: "users.save", Key: "\xff"}, "UTF-8"},
			{"key with NUL", cutover.Repair{Op: "users.save", Key: "a\x00"}, "NUL"},
			{"reason with NUL", cutover.Repair{Op: "users.save", Key: "1", Reason: "x\x00"}, "NUL"},
		} {
			err := f.log.Record(t.Context(), tc.r)
			assert.ErrorIs(t, err, repair.ErrInvalidInput, tc.name)
			assert.ErrorContains(t, err, tc.want, tc.name)
		}
		assert.Zero(t, f.pending(t), "nothing refused was recorded")

		ok := (&repairCalls{}).fn(nil)
		for _, tc := range []struct {
			name string
			fn   repair.Func
			opts []repair.Option
			want string
		}{
			{"nil function", nil, nil, "nil repair function"},
			{"nil option", ok, []repair.Option{repair.WithBatch(10), nil}, "option 1 is nil"},
			{"negative batch", ok, []repair.Option{repair.WithBatch(-1)}, "batch"},
			{"zero batch", ok, []repair.Option{repair.WithBatch(0)}, "batch"},
			{"zero backoff", ok, []repair.Option{repair.WithBackoff(0, time.Second)}, "backoff"},
			{"max below base", ok, []repair.Option{repair.WithBackoff(2*time.Second, time.Second)}, "backoff"},
			{"zero poll", ok, []repair.Option{repair.WithPollInterval(0)}, "poll"},
			{"negative attempts", ok, []repair.Option{repair.WithMaxAttempts(-1)}, "attempts"},
			{"zero timeout", ok, []repair.Option{repair.WithTimeout(0)}, "timeout"},
			{"claim too short", ok, []repair.Option{repair.WithTimeout(time.Minute),
				repair.WithClaimTTL(time.Minute)}, "claim TTL"},
			{"negative retention", ok, []repair.Option{repair.WithRetention(-time.Second)}, "retention"},
		} {
			r, err := repair.New(f.log, tc.fn, tc.opts...)
			assert.Nil(t, r, tc.name)
			assert.ErrorIs(t, err, repair.ErrInvalidInput, tc.name)
			assert.ErrorContains(t, err, tc.want, tc.name)
		}
		r, err := repair.New(nil, ok)
		assert.Nil(t, r)
		assert.ErrorIs(t, err, repair.ErrInvalidInput)
		assert.ErrorContains(t, err, "nil repair log")
		_, err = f.log.Entries(t.Context(), repair.Query{Limit: -1})
		assert.ErrorIs(t, err, repair.ErrInvalidInput)
	})
}

func TestRepairLogBehindDualWrite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		stores := dualwritetest.NewPair[string]()
		w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), f.log,
			dualwrite.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		save := func(key, v string) error {
			return w.Write(t.Context(), key, func(ctx context.Context, side cutover.Side) error {
				return stores.Side(side).Put(ctx, key, v)
			})
		}

		stores.New.FailNext(1, errors.New("new store: disk full"))
		require.NoError(t, save("42", "Ada"), "a failed secondary write does not fail the call")
		require.NoError(t, save("43", "Bob"))
		got := f.entries(t, false)
		require.Len(t, got, 1, "the key of the failed secondary write is in the SQL log")
		r := got[0].Repair
		assert.Equal(t, "users.save", r.Op)
		assert.Equal(t, "42", r.Key)
		assert.Equal(t, cutover.New, r.Target)
		assert.Equal(t, cutover.Shadow, r.Stage)
		assert.Equal(t, cutover.SecondaryFailed, r.Reason)
		assert.ErrorContains(t, r.Err, "disk full")

		// A log that cannot record fails the call: the key is not lost unseen.
		_, err = db.ExecContext(t.Context(), `DROP TABLE cutover_repairs`)
		require.NoError(t, err)
		stores.New.FailNext(1, nil)
		err = save("44", "Cy")
		var se *dualwrite.SecondaryError
		require.ErrorAs(t, err, &se)
		assert.Error(t, se.RecordErr)
		assert.Equal(t, "44", se.Key)
	})
}

func TestRepairFailureKeepsTheEntry(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		const base = 10 * time.Second
		f.record(t, repairOfKey("42"))
		fail := errors.New("new store still down")
		var calls repairCalls
		var mu sync.Mutex
		result := fail
		r := f.repairer(t, func(ctx context.Context, rep cutover.Repair) error {
			mu.Lock()
			err := result
			mu.Unlock()
			return calls.fn(err)(ctx, rep)
		}, repair.WithBackoff(base, time.Hour))

		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1}, stats)
		got := f.entries(t, false)
		require.Len(t, got, 1, "a repair-log entry was lost when the repair function failed")
		e := got[0]
		assert.Equal(t, 1, e.Attempts)
		assert.Equal(t, "new store still down", e.LastError)
		now := f.clock.Now()
		assert.False(t, e.NextAttemptAt.Before(now.Add(base/2-time.Microsecond)), "due %v, not before the backoff", e.NextAttemptAt)
		assert.False(t, e.NextAttemptAt.After(now.Add(base)), "due %v, at most the backoff away", e.NextAttemptAt)
		assert.False(t, e.Done())
		assert.Equal(t, int64(1), f.pending(t))

		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Zero(t, stats.Claimed, "not due before the backoff passes")
		assert.Equal(t, 1, calls.len())

		f.clock.Advance(base)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1}, stats)
		e = f.entries(t, false)[0]
		assert.Equal(t, 2, e.Attempts)
		now = f.clock.Now()
		assert.False(t, e.NextAttemptAt.Before(now.Add(base-time.Microsecond)), "the backoff doubles")
		assert.False(t, e.NextAttemptAt.After(now.Add(2*base)))

		mu.Lock()
		result = nil
		mu.Unlock()
		f.clock.Advance(2 * base)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Repaired: 1}, stats)
		assert.Zero(t, f.pending(t))
		all := f.entries(t, true)
		require.Len(t, all, 1)
		assert.True(t, all[0].Done())
		assert.True(t, f.clock.Now().Equal(all[0].DoneAt))
		assert.Equal(t, 2, all[0].Attempts, "the history of failures stays")
		assert.Equal(t, 3, calls.len())
		for _, c := range calls.calls {
			assert.Equal(t, "42", c.Key)
			assert.Equal(t, cutover.New, c.Target)
			assert.EqualError(t, c.Err, "new store down", "the function sees the recorded failure")
		}

		assert.Equal(t, int64(1), f.metrics.Sum("cutover.expandcontract.repairs.done", "cutover.reason", "repaired"))
		assert.Equal(t, int64(2), f.metrics.Sum("cutover.expandcontract.repairs.done", "cutover.reason", "failed"))
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.expandcontract.repairs.latency", "cutover.migration", "users"))
		assert.Zero(t, f.metrics.Sum("cutover.expandcontract.repairs.pending", "cutover.migration", "users"))

		deleted, err := f.log.DeleteDone(t.Context(), f.clock.Now())
		require.NoError(t, err)
		assert.Zero(t, deleted, "only entries done before the time given")
		deleted, err = f.log.DeleteDone(t.Context(), f.clock.Now().Add(time.Microsecond))
		require.NoError(t, err)
		assert.Equal(t, int64(1), deleted)
		assert.Empty(t, f.entries(t, true))
	})
}

func TestRepairCoalescesEntriesOfOneKey(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		first := repairOfKey("1")
		f.record(t, first)
		f.record(t, repairOfKey("2"))
		f.clock.Advance(time.Second)
		latest := cutover.Repair{Op: "users.save", Key: "1", Target: cutover.New, Stage: cutover.Shadow,
			Reason: cutover.Skipped, Err: errors.New("breaker open")}
		f.record(t, first)
		f.record(t, latest)
		f.record(t, cutover.Repair{Op: "users.save", Key: "1", Target: cutover.Old, Stage: cutover.Live, Reason: cutover.SecondaryFailed})
		f.record(t, cutover.Repair{Op: "users.delete", Key: "1", Target: cutover.New, Stage: cutover.Shadow, Reason: cutover.SecondaryFailed})

		entries := f.entries(t, false)
		require.Len(t, entries, 4, "one entry per operation, key and target")
		e := entries[0]
		assert.Equal(t, int64(3), e.Records)
		assert.True(t, ectest.Start.Equal(e.FirstRecorded), "the first recording is kept")
		assert.True(t, f.clock.Now().Equal(e.Repair.Time), "the last recording")
		assert.Equal(t, cutover.Skipped, e.Repair.Reason, "the last record's fields")
		for _, e := range entries[1:] {
			assert.Equal(t, int64(1), e.Records)
		}

		var calls repairCalls
		r := f.repairer(t, calls.fn(nil))
		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 4, Repaired: 4}, stats)
		require.Len(t, calls.calls, 4, "one call per operation, key and target")
		c := calls.calls[0]
		assert.Equal(t, "1", c.Key)
		assert.Equal(t, cutover.New, c.Target)
		assert.Equal(t, cutover.Skipped, c.Reason, "the latest entry's fields")
		assert.Equal(t, cutover.Shadow, c.Stage)
		assert.EqualError(t, c.Err, "breaker open")
		assert.True(t, f.clock.Now().Equal(c.Time))
		assert.Equal(t, "2", calls.calls[1].Key)
		assert.Equal(t, cutover.Old, calls.calls[2].Target)
		assert.Equal(t, "users.delete", calls.calls[3].Op)
		assert.Zero(t, f.pending(t))
		assert.Equal(t, int64(4), f.metrics.Sum("cutover.expandcontract.repairs.done", "cutover.reason", "repaired"))
	})
}

func TestRepairFunctionPanicIsAFailure(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("1"))
		f.record(t, repairOfKey("2"))
		var calls repairCalls
		r := f.repairer(t, func(ctx context.Context, rep cutover.Repair) error {
			if rep.Key == "1" && calls.len() == 0 {
				calls.fn(nil)(ctx, rep)
				panic("nil map write")
			}
			return calls.fn(nil)(ctx, rep)
		}, repair.WithBackoff(time.Second, time.Second))

		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err, "a panic in one repair fails that repair only")
		assert.Equal(t, repair.Stats{Claimed: 2, Repaired: 1, Failed: 1}, stats)
		got := f.entries(t, false)
		require.Len(t, got, 1)
		assert.Equal(t, "1", got[0].Repair.Key)
		assert.Contains(t, got[0].LastError, repair.ErrPanic.Error())
		assert.Contains(t, got[0].LastError, "nil map write")

		f.clock.Advance(time.Second)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Repaired: 1}, stats)
		assert.Zero(t, f.pending(t))
	})
}

func TestRepairStuckAfterMaxAttempts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("1"))
		f.record(t, repairOfKey("2"))
		var mu sync.Mutex
		broken := map[string]bool{"1": true}
		r := f.repairer(t, func(_ context.Context, rep cutover.Repair) error {
			mu.Lock()
			defer mu.Unlock()
			if broken[rep.Key] {
				return fmt.Errorf("row %s fails a constraint in the new store", rep.Key)
			}
			return nil
		}, repair.WithMaxAttempts(2), repair.WithBackoff(time.Second, time.Second))

		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 2, Repaired: 1, Failed: 1}, stats)
		f.clock.Advance(time.Second)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1, Stuck: 1}, stats)

		f.clock.Advance(365 * 24 * time.Hour)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Zero(t, stats.Claimed, "a stuck entry is not retried by itself")
		got := f.entries(t, false)
		require.Len(t, got, 1, "a stuck entry is kept")
		assert.True(t, got[0].Stuck)
		assert.Equal(t, 2, got[0].Attempts)
		assert.Contains(t, got[0].LastError, "fails a constraint")
		assert.True(t, got[0].NextAttemptAt.IsZero())
		stuck, err := f.log.Stuck(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(1), stuck)
		assert.Equal(t, int64(1), f.pending(t), "stuck entries are pending")
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.expandcontract.repairs.stuck", "cutover.migration", "users"))
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.expandcontract.repairs.pending", "cutover.migration", "users"))

		mu.Lock()
		broken["1"] = false
		mu.Unlock()
		n, err := f.log.RetryStuck(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
		e := f.entries(t, false)[0]
		assert.False(t, e.Stuck)
		assert.Zero(t, e.Attempts)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Repaired: 1}, stats)
		assert.Zero(t, f.pending(t))
	})
}

// TestRepairersRace runs repairers of several instances on one log at once
// and checks that no entry is repaired by two of them at the same time, and
// that each is repaired exactly once when it succeeds.
func TestRepairersRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		const keys, instances = 120, 4
		// One entry per key, so that calls for a key are calls for its entry.
		for i := range keys {
			f.record(t, repairOfKey(fmt.Sprint(i)))
		}

		var mu sync.Mutex
		running := map[string]int{}
		calls := map[string]int{}
		var overlaps []string
		fn := func(_ context.Context, r cutover.Repair) error {
			mu.Lock()
			running[r.Key]++
			calls[r.Key]++
			if running[r.Key] > 1 {
				overlaps = append(overlaps, r.Key)
			}
			fail := calls[r.Key] == 1 && len(r.Key)%2 == 0 // two-digit keys fail once
			mu.Unlock()
			runtime.Gosched()
			mu.Lock()
			running[r.Key]--
			mu.Unlock()
			if fail {
				return errors.New("transient")
			}
			return nil
		}
		var repairers []*repair.Repairer
		for range instances {
			log, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
			require.NoError(t, err)
			r, err := repair.New(log, fn, repair.WithBatch(7),
				repair.WithBackoff(time.Second, time.Second))
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			repairers = append(repairers, r)
		}

		drain := func() {
			var wg sync.WaitGroup
			for _, r := range repairers {
				wg.Go(func() {
					for range 1000 {
						stats, err := r.RunOnce(t.Context())
						if !assert.NoError(t, err) || stats.Claimed == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
		}
		drain()
		f.clock.Advance(time.Second) // the failed ones are due again
		drain()

		assert.Empty(t, overlaps, "entries repaired by two repairers at once")
		assert.Zero(t, f.pending(t))
		for i := range keys {
			k := fmt.Sprint(i)
			want := 1
			if len(k)%2 == 0 {
				want = 2
			}
			assert.Equal(t, want, calls[k], "calls for key %s", k)
		}
	})
}

func TestRepairClaimOfACrashedRepairerExpires(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("42"))
		const ttl = time.Minute
		started, release := make(chan struct{}), make(chan struct{})
		stalled := f.repairer(t, func(ctx context.Context, _ cutover.Repair) error {
			close(started)
			<-release
			return errors.New("gave up")
		}, repair.WithClaimTTL(ttl), repair.WithTimeout(30*time.Second))
		type result struct {
			stats repair.Stats
			err   error
		}
		done := make(chan result, 1)
		go func() {
			stats, err := stalled.RunOnce(context.Background())
			done <- result{stats, err}
		}()
		select {
		case <-started:
		case <-t.Context().Done():
			t.Fatal("the first repairer never ran")
		}
		e := f.entries(t, false)[0]
		assert.True(t, f.clock.Now().Add(ttl).Equal(e.NextAttemptAt), "held for the claim TTL")

		other, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
		require.NoError(t, err)
		var calls repairCalls
		second, err := repair.New(other, calls.fn(nil), repair.WithClaimTTL(ttl), repair.WithTimeout(30*time.Second))
		require.NoError(t, err)
		defer second.Close()
		stats, err := second.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Zero(t, stats.Claimed, "an entry held by another repairer is left to it")

		f.clock.Advance(ttl)
		stats, err = second.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Repaired: 1}, stats, "the claim ran out")
		assert.Equal(t, 1, calls.len())

		close(release)
		res := <-done
		require.NoError(t, res.err)
		assert.Equal(t, repair.Stats{Claimed: 1}, res.stats, "a late failure does not undo the repair")
		all := f.entries(t, true)
		require.Len(t, all, 1)
		assert.True(t, all[0].Done())
		assert.Zero(t, all[0].Attempts)
		assert.Empty(t, all[0].LastError)
	})
}

func TestRepairCanceledReleasesTheEntry(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("42"))
		before := f.entries(t, false)[0]
		ctx, cancel := context.WithCancel(t.Context())
		r := f.repairer(t, func(ctx context.Context, _ cutover.Repair) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		stats, err := r.RunOnce(ctx)
		require.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, stats.Failed)
		after := f.entries(t, false)
		require.Len(t, after, 1)
		assert.Zero(t, after[0].Attempts, "a canceled repair is not a failed one")
		assert.True(t, before.NextAttemptAt.Equal(after[0].NextAttemptAt), "due again at once")
		assert.Empty(t, after[0].LastError)
	})
}

func TestRepairerRun(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		for i := range 250 {
			f.record(t, repairOfKey(fmt.Sprint(i)))
		}
		var calls repairCalls
		r := f.repairer(t, calls.fn(nil), repair.WithPollInterval(3*time.Second))
		waited, tick := make(chan time.Duration), make(chan struct{})
		repair.SetRepairerWait(r, func(ctx context.Context, d time.Duration) error {
			select {
			case waited <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-tick:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()

		assert.Equal(t, 3*time.Second, <-waited, "Run waits the poll interval once nothing is due")
		assert.Equal(t, 250, calls.len(), "full batches are repaired without waiting")
		assert.Zero(t, f.pending(t))

		f.record(t, repairOfKey("late"))
		tick <- struct{}{}
		<-waited
		assert.Equal(t, 251, calls.len())

		// A round that fails is logged and tried again after the interval.
		_, err := db.ExecContext(t.Context(), `DROP TABLE cutover_repairs`)
		require.NoError(t, err)
		tick <- struct{}{}
		<-waited

		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
	})
}

// TestRepairDrainsDualWrites writes through a dual writer whose new store
// fails often, then drains the SQL repair log and finds the stores equal.
func TestRepairDrainsDualWrites(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		stores := dualwritetest.NewPair[string]()
		w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), f.log,
			dualwrite.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		stores.New.FailRate(0.3, nil)
		for i := range 500 {
			key := fmt.Sprintf("user-%03d", i%150)
			err := w.Write(t.Context(), key, func(ctx context.Context, side cutover.Side) error {
				return stores.Side(side).Put(ctx, key, fmt.Sprintf("v%d", i))
			})
			require.NoError(t, err)
			f.clock.Advance(time.Millisecond)
		}
		stores.New.Reset()
		recorded := f.pending(t)
		require.Greater(t, recorded, int64(100), "about 30% of the writes failed on the new store")
		require.NotEmpty(t, stores.Diff())

		r := f.repairer(t, func(ctx context.Context, rep cutover.Repair) error {
			src, dst := stores.Side(rep.Target.Other()), stores.Side(rep.Target)
			v, err := src.Get(ctx, rep.Key)
			if errors.Is(err, dualwritetest.ErrNotFound) {
				return dst.Delete(ctx, rep.Key)
			}
			if err != nil {
				return err
			}
			return dst.Put(ctx, rep.Key, v)
		}, repair.WithBatch(50))
		var total repair.Stats
		for range 100 {
			stats, err := r.RunOnce(t.Context())
			require.NoError(t, err)
			if stats.Claimed == 0 {
				break
			}
			total.Claimed += stats.Claimed
			total.Repaired += stats.Repaired
		}
		assert.Equal(t, int(recorded), total.Repaired)
		assert.Empty(t, stores.Diff(), "the stores converged")
		assert.Zero(t, f.pending(t))
		assert.Equal(t, recorded, f.metrics.Sum("cutover.expandcontract.repairs.done", "cutover.reason", "repaired"))
		assert.Equal(t, recorded, f.metrics.Sum("cutover.expandcontract.repairs.latency", "", ""))
	})
}

func TestRepairCorruptEntryIsKeptStuck(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		now := f.clock.Now().UnixMicro()
		_, err := db.ExecContext(t.Context(), db.Dialect.Rebind(`INSERT INTO cutover_repairs (migration, op, entity_key, target,
			stage, reason, error, created_at, attempts, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '')`),
			"users", "users.save", "1", 1, "sideways", "secondary_failed", "", now, now)
		require.NoError(t, err)
		var calls repairCalls
		r := f.repairer(t, calls.fn(nil))
		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1, Stuck: 1}, stats)
		assert.Zero(t, calls.len(), "the function never sees an entry that cannot be read")
		stuck, err := f.log.Stuck(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(1), stuck, "the entry is kept for a person to look at")
		var lastError string
		require.NoError(t, db.GetContext(t.Context(), &lastError, `SELECT last_error FROM cutover_repairs`))
		assert.Contains(t, lastError, "sideways")
		_, err = f.log.Entries(t.Context(), repair.Query{})
		assert.ErrorIs(t, err, expandcontract.ErrCorrupt)
	})
}

// TestRepairOfHotKeysLeavesNoEntryHeld records a few keys from several
// goroutines while two repairers drain them, as a service whose new store
// is down records every write of its hot keys. On MySQL the repairers'
// bookkeeping then loses deadlocks to the records' upserts; an entry whose
// bookkeeping failed would stay held for the claim TTL, which the fixture's
// clock never reaches, and the log would not drain.
func TestRepairOfHotKeysLeavesNoEntryHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		const keys, recorders, records = 1, 8, 200
		var calls repairCalls
		var repairers []*repair.Repairer
		for range 2 {
			log, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
			require.NoError(t, err)
			r, err := repair.New(log, calls.fn(nil), repair.WithBatch(4))
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			repairers = append(repairers, r)
		}
		var recording sync.WaitGroup
		for g := range recorders {
			recording.Go(func() {
				for i := range records {
					assert.NoError(t, f.log.Record(t.Context(), repairOfKey(fmt.Sprint((g+i)%keys))))
				}
			})
		}
		stop := make(chan struct{})
		var repairing sync.WaitGroup
		var failures atomic.Int64
		for _, r := range repairers {
			repairing.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := r.RunOnce(t.Context()); err != nil {
						failures.Add(1)
						t.Logf("RunOnce: %v", err)
					}
				}
			})
		}
		recording.Wait()
		close(stop)
		repairing.Wait()
		for range 100 { // the records are done: a few rounds drain the log
			stats, err := repairers[0].RunOnce(t.Context())
			require.NoError(t, err)
			if stats.Claimed == 0 {
				break
			}
		}
		assert.Zero(t, failures.Load(), "rounds that failed")
		assert.Zero(t, f.pending(t), "entries left pending: %+v", f.entries(t, false))
		assert.NotZero(t, calls.len())
	})
}
