package shadowread_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

type user struct {
	ID        string
	Name      string
	Email     string
	UpdatedAt time.Time
}

type fixture struct {
	stores     dualwritetest.Pair[user]
	repairs    *cutover.MemoryRepairLog
	metrics    *metrictest.Reader
	r          *shadowread.Reader[user]
	mu         sync.Mutex
	mismatches []*shadowread.Mismatch[user]
}

func newFixture(t *testing.T, stage cutover.Stage, opts ...shadowread.Option[user]) *fixture {
	t.Helper()
	f := &fixture{stores: dualwritetest.NewPair[user](), repairs: new(cutover.MemoryRepairLog), metrics: metrictest.New(t)}
	opts = append([]shadowread.Option[user]{
		shadowread.WithMeterProvider[user](f.metrics.Provider()),
		shadowread.WithLogger[user](testutil.Quiet()),
		shadowread.WithRepairLog[user](f.repairs),
		shadowread.WithOnMismatch(func(_ context.Context, m *shadowread.Mismatch[user]) {
			f.mu.Lock()
			f.mismatches = append(f.mismatches, m)
			f.mu.Unlock()
		}),
	}, opts...)
	r, err := shadowread.New[user]("users.get", cutover.Fixed(stage), opts...)
	require.NoError(t, err)
	f.r = r
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, r.Drain(ctx))
	})
	return f
}

func (f *fixture) get(ctx context.Context, id string) (user, error) {
	return f.r.Read(ctx, id, func(ctx context.Context, side cutover.Side) (user, error) {
		return f.stores.Side(side).Get(ctx, id)
	})
}

func (f *fixture) put(t *testing.T, u user) {
	t.Helper()
	require.NoError(t, f.stores.Old.Put(t.Context(), u.ID, u))
	require.NoError(t, f.stores.New.Put(t.Context(), u.ID, u))
}

func (f *fixture) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.r.Drain(ctx))
}

func (f *fixture) reported() []*shadowread.Mismatch[user] {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mismatches
}

var ada = user{ID: "42", Name: "Ada", Email: "ada@example.org", UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

func TestReadReturnsExactlyTheAuthoritativeAnswer(t *testing.T) {
	errGone := errors.New("old store: row gone")
	faults := map[string]func(f *fixture, other *dualwritetest.Store[user]){
		"other drifts": func(f *fixture, other *dualwritetest.Store[user]) {
			other.Drift("42", func(u user) user { u.Name = "Eve"; return u })
		},
		"other fails":  func(f *fixture, other *dualwritetest.Store[user]) { other.FailNext(1, errGone) },
		"other panics": func(f *fixture, other *dualwritetest.Store[user]) { other.PanicNext(1, "boom") },
		"other slow":   func(f *fixture, other *dualwritetest.Store[user]) { other.SetLatency(time.Millisecond) },
	}
	for _, stage := range cutover.Stages {
		for name, fault := range faults {
			for _, sync := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/sync=%v", stage, name, sync), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						var opts []shadowread.Option[user]
						if sync {
							opts = append(opts, shadowread.WithSynchronous[user]())
						}
						f := newFixture(t, stage, opts...)
						f.put(t, ada)
						auth := f.stores.Side(stage.Authoritative())
						want, wantErr := auth.Get(t.Context(), "42")
						fault(f, f.stores.Side(stage.Authoritative().Other()))

						got, err := f.get(t.Context(), "42")
						assert.Equal(t, want, got)
						assert.Equal(t, wantErr, err)
					})
				})
			}
		}
	}
}

func TestReadReturnsTheAuthoritativeErrorUnchanged(t *testing.T) {
	f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user]())
	f.stores.New.Put(t.Context(), "42", ada) // only the new store has it
	got, err := f.get(t.Context(), "42")
	assert.Same(t, dualwritetest.ErrNotFound, err)
	assert.Zero(t, got)
	require.Len(t, f.reported(), 1, "an error against a value is a mismatch")
	assert.Contains(t, f.reported()[0].Diff, "not found")
}

// TestAsyncShadowDoesNotWaitForTheOtherStore holds the new store while the
// caller reads. In a synctest bubble, synctest.Wait returns once the
// comparison's goroutine is blocked on the hold, so the test knows it
// started and has not finished, with no timing involved.
func TestAsyncShadowDoesNotWaitForTheOtherStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow)
		f.put(t, ada)
		release := f.stores.New.Hold()
		got, err := f.get(t.Context(), "42") // returns while the new store is held
		require.NoError(t, err)
		assert.Equal(t, ada, got)
		synctest.Wait()
		require.NoError(t, f.stores.New.WaitStarted(t.Context(), 1), "the comparison must still run")
		assert.Zero(t, f.stores.New.Count(dualwritetest.OpGet), "the new store's read cannot have finished yet")
		release()
		f.drain(t)
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "match"))
	})
}

func TestCallerCancellationDoesNotCancelTheComparison(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow)
		f.put(t, ada)
		release := f.stores.New.Hold()
		ctx, cancel := context.WithCancel(t.Context())
		_, err := f.get(ctx, "42")
		require.NoError(t, err)
		synctest.Wait() // the comparison is blocked on the held store
		cancel()        // the request is over
		release()
		f.drain(t)
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "match"))
	})
}

func TestMismatchIsReported(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Shadow, cutover.Live} {
		t.Run(stage.String(), func(t *testing.T) {
			f := newFixture(t, stage)
			f.put(t, ada)
			f.stores.New.Drift("42", func(u user) user { u.Email = "ada@new.example.org"; return u })
			_, err := f.get(t.Context(), "42")
			require.NoError(t, err)
			f.drain(t)

			ms := f.reported()
			require.Len(t, ms, 1)
			m := ms[0]
			assert.Equal(t, "users.get", m.Op)
			assert.Equal(t, "42", m.Key)
			assert.Equal(t, stage, m.Stage)
			assert.Equal(t, stage.Authoritative(), m.Authoritative)
			assert.Equal(t, "ada@example.org", m.Old.Email)
			assert.Equal(t, "ada@new.example.org", m.New.Email)
			assert.Contains(t, m.Diff, "Email")
			assert.NotContains(t, m.Diff, "Name")

			entries := f.repairs.Entries()
			require.Len(t, entries, 1)
			assert.Equal(t, stage.Authoritative().Other(), entries[0].Target)
			assert.Equal(t, cutover.Mismatch, entries[0].Reason)
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.mismatches", "", ""))
		})
	}
}

func TestIgnoreNormalizeAndCompare(t *testing.T) {
	later := func(u user) user { u.UpdatedAt = u.UpdatedAt.Add(time.Hour); return u }
	for name, opt := range map[string]shadowread.Option[user]{
		"ignore":    shadowread.WithIgnore[user]("UpdatedAt"),
		"normalize": shadowread.WithNormalize(func(u user) user { u.UpdatedAt = time.Time{}; return u }),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](), opt)
			f.put(t, ada)
			f.stores.New.Drift("42", later)
			_, _ = f.get(t.Context(), "42")
			assert.Empty(t, f.reported())
		})
	}
	t.Run("compare", func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](),
			shadowread.WithCompare(func(old, new user) bool { return old.ID == new.ID && old.Name == new.Name }))
		f.put(t, ada)
		f.stores.New.Drift("42", later)
		_, _ = f.get(t.Context(), "42")
		assert.Empty(t, f.reported())
		f.stores.New.Drift("42", func(u user) user { u.Name = "Eve"; return u })
		_, _ = f.get(t.Context(), "42")
		require.Len(t, f.reported(), 1)
		assert.Contains(t, f.reported()[0].Diff, "Name")
	})
	t.Run("errors", func(t *testing.T) {
		errNotFound := errors.New("no such user")
		f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](),
			shadowread.WithCompareErrors[user](func(old, new error) bool {
				return errors.Is(old, dualwritetest.ErrNotFound) && errors.Is(new, errNotFound)
			}))
		f.stores.New.FailNext(1, errNotFound)
		_, err := f.get(t.Context(), "42")
		assert.ErrorIs(t, err, dualwritetest.ErrNotFound)
		assert.Empty(t, f.reported())
	})
}

func TestSampleRate(t *testing.T) {
	f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](), shadowread.WithSampleRate[user](0))
	f.put(t, ada)
	for range 20 {
		_, _ = f.get(t.Context(), "42")
	}
	assert.Zero(t, f.stores.New.Count(dualwritetest.OpGet))

	var asked atomic.Int64
	g := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](),
		shadowread.WithSampler[user](func(context.Context) float64 { asked.Add(1); return 1 }))
	g.put(t, ada)
	for range 20 {
		_, _ = g.get(t.Context(), "42")
	}
	assert.Equal(t, 20, g.stores.New.Count(dualwritetest.OpGet))
	assert.Equal(t, int64(20), asked.Load())
}

func TestOverflowIsDroppedNotQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, shadowread.WithMaxConcurrent[user](2))
		f.put(t, ada)
		release := f.stores.New.Hold()
		for range 10 {
			_, err := f.get(t.Context(), "42")
			require.NoError(t, err)
		}
		synctest.Wait()
		assert.Equal(t, int64(8), f.metrics.Sum("cutover.shadowread.dropped", "", ""))
		release()
		f.drain(t)
		assert.Equal(t, 2, f.stores.New.Count(dualwritetest.OpGet))
	})
}

// TestShadowFailuresAreCountedNotReported runs on the fake clock of a
// synctest bubble, so the held store times out exactly at the comparison's
// timeout.
func TestShadowFailuresAreCountedNotReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](), shadowread.WithTimeout[user](time.Second))
		f.put(t, ada)
		f.stores.New.PanicNext(1, "boom")
		_, err := f.get(t.Context(), "42")
		require.NoError(t, err)
		release := f.stores.New.Hold()
		defer release()
		start := time.Now()
		_, err = f.get(t.Context(), "42")
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(start), "a synchronous comparison waits out its timeout, no more")
		assert.Equal(t, int64(2), f.metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "error"))
		assert.Empty(t, f.reported())
		assert.Zero(t, f.repairs.Len())
	})
}

func TestLiveReadFallsBackToOld(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Live, cutover.Rampdown} {
		t.Run(stage.String()+"/breaker open", func(t *testing.T) {
			f := newFixture(t, stage, shadowread.WithBreaker[user](testutil.OpenBreaker(t)))
			f.put(t, ada)
			got, err := f.get(t.Context(), "42")
			require.NoError(t, err, "an open breaker must not fail a read the old store can answer")
			assert.Equal(t, ada, got)
			assert.Zero(t, f.stores.New.Count(dualwritetest.OpGet))
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.fallbacks", "cutover.reason", "refused"))
		})
		t.Run(stage.String()+"/new fails", func(t *testing.T) {
			f := newFixture(t, stage)
			f.put(t, ada)
			f.stores.New.FailNext(1, nil)
			got, err := f.get(t.Context(), "42")
			require.NoError(t, err)
			assert.Equal(t, ada, got)
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.fallbacks", "cutover.reason", "failed"))
		})
		t.Run(stage.String()+"/new panics", func(t *testing.T) {
			f := newFixture(t, stage)
			f.put(t, ada)
			f.stores.New.PanicNext(1, "nil map")
			got, err := f.get(t.Context(), "42")
			require.NoError(t, err, "a new store that panics before complete is a failure like any other")
			assert.Equal(t, ada, got)
			assert.Equal(t, 1, f.stores.Old.Count(dualwritetest.OpGet))
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.fallbacks", "cutover.reason", "failed"))
		})
	}
	t.Run("complete has no fallback", func(t *testing.T) {
		f := newFixture(t, cutover.Complete, shadowread.WithBreaker[user](testutil.OpenBreaker(t)))
		f.put(t, ada)
		_, err := f.get(t.Context(), "42")
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Zero(t, f.stores.Old.Count(dualwritetest.OpGet))
	})
	t.Run("caller cancellation is not a fallback", func(t *testing.T) {
		f := newFixture(t, cutover.Live)
		f.put(t, ada)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.get(ctx, "42")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, f.stores.Old.Count(dualwritetest.OpGet))
	})
}

func TestShadowSkipsNewStoreWhenBreakerOpen(t *testing.T) {
	f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](), shadowread.WithBreaker[user](testutil.OpenBreaker(t)))
	f.put(t, ada)
	_, err := f.get(t.Context(), "42")
	require.NoError(t, err)
	assert.Zero(t, f.stores.New.Count(dualwritetest.OpGet))
	assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.skipped", "", ""))
}

func TestMismatchCallbackPanicIsRecovered(t *testing.T) {
	stores := dualwritetest.NewPair[user]()
	r, err := shadowread.New[user]("users.get", cutover.Fixed(cutover.Shadow), shadowread.WithSynchronous[user](),
		shadowread.WithLogger[user](testutil.Quiet()),
		shadowread.WithOnMismatch(func(context.Context, *shadowread.Mismatch[user]) { panic("callback bug") }))
	require.NoError(t, err)
	require.NoError(t, stores.Old.Put(t.Context(), "42", ada))
	got, err := r.Read(t.Context(), "42", func(ctx context.Context, side cutover.Side) (user, error) {
		return stores.Side(side).Get(ctx, "42")
	})
	require.NoError(t, err)
	assert.Equal(t, ada, got)
}

type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }

// TestMismatchLogsAreRateLimited runs in a synctest bubble, where the clock
// stands still while the reads run: the limiter lets through its burst of
// five lines and no more, however slow the machine.
func TestMismatchLogsAreRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lines atomic.Int64
		f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](),
			shadowread.WithLogger[user](slog.New(countingHandler{slog.DiscardHandler, &lines})))
		f.put(t, ada)
		f.stores.New.Drift("42", func(u user) user { u.Name = "Eve"; return u })
		for range 200 {
			_, _ = f.get(t.Context(), "42")
		}
		assert.Len(t, f.reported(), 200, "every mismatch is reported to the callback")
		assert.Equal(t, int64(200), f.metrics.Sum("cutover.shadowread.mismatches", "", ""))
		assert.Equal(t, int64(5), lines.Load(), "but only the limiter's burst is logged")

		time.Sleep(time.Second) // one more token
		_, _ = f.get(t.Context(), "42")
		assert.Equal(t, int64(6), lines.Load())
	})
}

func TestDrainHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow)
		f.put(t, ada)
		release := f.stores.New.Hold()
		_, _ = f.get(t.Context(), "42")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		assert.ErrorIs(t, f.r.Drain(ctx), context.Canceled)
		release()
	})
}

func TestNewRejectsBadInput(t *testing.T) {
	src := cutover.Fixed(cutover.Shadow)
	tests := []struct {
		name string
		opts []shadowread.Option[user]
		want string
	}{
		{"rate", []shadowread.Option[user]{shadowread.WithSampleRate[user](1.5)}, "sample rate 1.5 outside [0, 1]"},
		{"timeout", []shadowread.Option[user]{shadowread.WithTimeout[user](0)}, "timeout must be positive"},
		{"concurrency", []shadowread.Option[user]{shadowread.WithMaxConcurrent[user](-1)}, "max concurrent"},
		{"nil compare", []shadowread.Option[user]{shadowread.WithCompare[user](nil)}, "WithCompare: nil function"},
		{"nil normalize", []shadowread.Option[user]{shadowread.WithNormalize[user](nil)}, "WithNormalize"},
		{"ignore path", []shadowread.Option[user]{shadowread.WithIgnore[user]("a..b")}, "shadowread: invalid input: diff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := shadowread.New("users.get", src, tt.opts...)
			assert.Nil(t, r)
			assert.ErrorIs(t, err, shadowread.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err := shadowread.New[user]("", src)
	assert.ErrorContains(t, err, "empty operation name")
	_, err = shadowread.New[user]("users.get", nil)
	assert.ErrorContains(t, err, "nil stage source")
}

func TestWithFailuresSeparatesFailuresFromAnswers(t *testing.T) {
	errConn := errors.New("connection reset")
	f := newFixture(t, cutover.Shadow, shadowread.WithSynchronous[user](),
		shadowread.WithFailures[user](func(err error) bool { return errors.Is(err, errConn) }))
	f.put(t, ada)
	f.stores.New.FailNext(1, errConn)
	_, err := f.get(t.Context(), "42")
	require.NoError(t, err)
	assert.Empty(t, f.reported(), "a store that failed to answer is no mismatch")
	assert.Zero(t, f.repairs.Len())
	assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "error"))

	require.NoError(t, f.stores.New.Delete(t.Context(), "42"))
	_, err = f.get(t.Context(), "42")
	require.NoError(t, err)
	require.Len(t, f.reported(), 1, "a store that answers \"not found\" where the other has the row is a mismatch")
	assert.Equal(t, 1, f.repairs.Len())
}

// readHeld stores ada in both stores and reads it with the new store held, so
// that the comparison blocks on it, and returns the release of the hold.
func (f *fixture) readHeld(t *testing.T) (release func()) {
	t.Helper()
	f.put(t, ada)
	release = f.stores.New.Hold()
	got, err := f.get(t.Context(), "42")
	require.NoError(t, err)
	assert.Equal(t, ada, got)
	return release
}

func TestWriteRacingTheComparisonIsNoMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow)
		release := f.readHeld(t)

		// A save lands on both stores before the comparison reads the new one.
		renamed := ada
		renamed.Name = "Ada King"
		synctest.Wait() // the comparison is blocked on the held store
		require.NoError(t, f.stores.Old.Put(t.Context(), "42", renamed))
		f.stores.New.Drift("42", func(user) user { return renamed }) // the new store's copy of the save
		release()
		f.drain(t)

		assert.Empty(t, f.reported())
		assert.Zero(t, f.repairs.Len())
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "race"))
	})
}

// TestAuthoritativePanicGoesOnWhereTheStoreIsTheCallersOwn: the old store's
// panic while it answers (off, dualwrite, shadow) and the new store's in
// complete reach the caller unchanged, as they would without the library,
// and nothing is compared.
func TestAuthoritativePanicGoesOnWhereTheStoreIsTheCallersOwn(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite, cutover.Shadow, cutover.Complete} {
		t.Run(stage.String(), func(t *testing.T) {
			f := newFixture(t, stage, shadowread.WithSynchronous[user]())
			f.put(t, ada)
			auth := f.stores.Side(stage.Authoritative())
			auth.PanicNext(1, "nil map")
			assert.PanicsWithValue(t, "nil map", func() { _, _ = f.get(t.Context(), "42") })
			assert.Zero(t, f.stores.Side(stage.Authoritative().Other()).Count(dualwritetest.OpGet))
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.shadowread.duration", "cutover.outcome", "panic"))
		})
	}
}

// TestDrainWaitsForRunningComparisons runs in a synctest bubble: two Drains
// wait for a comparison held on the new store, and both return once it
// ends.
func TestDrainWaitsForRunningComparisons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.Shadow)
		release := f.readHeld(t)
		var drained atomic.Int64
		for range 2 {
			go func() {
				if f.r.Drain(t.Context()) == nil {
					drained.Add(1)
				}
			}()
		}
		synctest.Wait()
		assert.Zero(t, drained.Load(), "a comparison is still running")
		release()
		synctest.Wait()
		assert.Equal(t, int64(2), drained.Load())
		require.NoError(t, f.r.Drain(t.Context()), "nothing runs: Drain returns at once")
	})
}
