package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testutil"
)

// fixture is a writer over a pair of fake stores.
type fixture struct {
	stores  dualwritetest.Pair[string]
	repairs *cutover.MemoryRepairLog
	stage   cutover.Stage
	w       *dualwrite.Writer
	metrics *metrictest.Reader
}

func newFixture(t *testing.T, stage cutover.Stage, opts ...dualwrite.Option) *fixture {
	t.Helper()
	f := &fixture{stores: dualwritetest.NewPair[string](), repairs: new(cutover.MemoryRepairLog), stage: stage}
	f.metrics = metrictest.New(t)
	opts = append([]dualwrite.Option{
		dualwrite.WithMeterProvider(f.metrics.Provider()),
		dualwrite.WithLogger(testutil.Quiet()),
	}, opts...)
	w, err := dualwrite.New("users.save", cutover.StageFunc(func(context.Context) cutover.Stage { return f.stage }), f.repairs, opts...)
	require.NoError(t, err)
	f.w = w
	return f
}

func (f *fixture) save(ctx context.Context, key, value string) error {
	return f.w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
		return f.stores.Side(side).Put(ctx, key, value)
	})
}

func puts(s *dualwritetest.Store[string]) int { return s.Count(dualwritetest.OpPut) }

func TestWriteFollowsTheStageTable(t *testing.T) {
	tests := []struct {
		stage cutover.Stage
		order []cutover.Side
	}{
		{cutover.Off, []cutover.Side{cutover.Old}},
		{cutover.DualWrite, []cutover.Side{cutover.Old, cutover.New}},
		{cutover.Shadow, []cutover.Side{cutover.Old, cutover.New}},
		{cutover.Live, []cutover.Side{cutover.New, cutover.Old}},
		{cutover.Rampdown, []cutover.Side{cutover.New, cutover.Old}},
		{cutover.Complete, []cutover.Side{cutover.New}},
	}
	for _, tt := range tests {
		t.Run(tt.stage.String(), func(t *testing.T) {
			f := newFixture(t, tt.stage)
			var order []cutover.Side
			err := f.w.Write(t.Context(), "42", func(ctx context.Context, side cutover.Side) error {
				order = append(order, side)
				return f.stores.Side(side).Put(ctx, "42", "Ada")
			})
			require.NoError(t, err)
			assert.Equal(t, tt.order, order)
			assert.Zero(t, f.repairs.Len())
		})
	}
}

func TestAuthoritativeFailureIsReturnedAndSecondaryNotWritten(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.DualWrite, cutover.Shadow} {
		t.Run(stage.String(), func(t *testing.T) {
			f := newFixture(t, stage)
			boom := errors.New("old store down")
			f.stores.Old.FailNext(1, boom)
			err := f.save(t.Context(), "42", "Ada")
			assert.ErrorIs(t, err, boom)
			assert.Zero(t, puts(f.stores.New), "the secondary must not be written")
			assert.Zero(t, f.repairs.Len())
		})
	}
}

func TestSecondaryFailureIsRecordedAndTheCallSucceeds(t *testing.T) {
	tests := []struct {
		stage     cutover.Stage
		secondary cutover.Side
	}{
		{cutover.DualWrite, cutover.New},
		{cutover.Shadow, cutover.New},
		{cutover.Live, cutover.Old},
		{cutover.Rampdown, cutover.Old},
	}
	for _, tt := range tests {
		t.Run(tt.stage.String(), func(t *testing.T) {
			f := newFixture(t, tt.stage)
			boom := errors.New("secondary down")
			f.stores.Side(tt.secondary).FailNext(1, boom)
			require.NoError(t, f.save(t.Context(), "42", "Ada"))

			entries := f.repairs.Entries()
			require.Len(t, entries, 1, "a failed secondary write must leave a repair-log entry")
			e := entries[0]
			assert.Equal(t, "users.save", e.Op)
			assert.Equal(t, "42", e.Key)
			assert.Equal(t, tt.secondary, e.Target)
			assert.Equal(t, cutover.SecondaryFailed, e.Reason)
			assert.Equal(t, tt.stage, e.Stage)
			assert.ErrorIs(t, e.Err, boom)
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.repairs", "cutover.reason", "secondary_failed"))
		})
	}
}

func TestFailPolicyReturnsSecondaryError(t *testing.T) {
	f := newFixture(t, cutover.Shadow, dualwrite.WithPolicy(dualwrite.Fail))
	boom := errors.New("new store down")
	f.stores.New.FailNext(1, boom)
	err := f.save(t.Context(), "42", "Ada")
	var se *dualwrite.SecondaryError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, cutover.New, se.Target)
	assert.NoError(t, se.RecordErr)
	assert.Equal(t, 1, f.repairs.Len(), "the key is recorded under every policy")
}

func TestSecondaryPanicIsRecovered(t *testing.T) {
	f := newFixture(t, cutover.Shadow)
	f.stores.New.PanicNext(1, "nil map")
	require.NoError(t, f.save(t.Context(), "42", "Ada"))
	entries := f.repairs.Entries()
	require.Len(t, entries, 1)
	var pe *cutover.PanicError
	require.ErrorAs(t, entries[0].Err, &pe)
	assert.Equal(t, "nil map", pe.Value)
	assert.NotEmpty(t, pe.Stack)
}

// TestSecondaryTimeoutIsRecorded holds the new store past the secondary
// timeout, on the fake clock of a synctest bubble: the timeout fires exactly
// when it is due, however loaded the machine.
func TestSecondaryTimeoutIsRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, cutover.DualWrite, dualwrite.WithTimeout(5*time.Second))
		release := f.stores.New.Hold()
		defer release()
		start := time.Now()
		require.NoError(t, f.save(t.Context(), "42", "Ada"))
		assert.Equal(t, 5*time.Second, time.Since(start), "the caller waited out the secondary timeout, no more")
		entries := f.repairs.Entries()
		require.Len(t, entries, 1)
		assert.ErrorIs(t, entries[0].Err, context.DeadlineExceeded)
		assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.duration", "cutover.outcome", "timeout"))
	})
}

func TestCallerCancellationDoesNotCancelTheSecondary(t *testing.T) {
	f := newFixture(t, cutover.DualWrite)
	ctx, cancel := context.WithCancel(t.Context())
	err := f.w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
		err := f.stores.Side(side).Put(ctx, "42", "Ada")
		if side == cutover.Old {
			cancel() // the request ends right after the authoritative write
		}
		return err
	})
	require.NoError(t, err)
	assert.Empty(t, f.stores.Diff(), "the secondary write must run to completion")
	assert.Zero(t, f.repairs.Len())
}

type failingLog struct{ err error }

func (l failingLog) Record(context.Context, cutover.Repair) error { return l.err }

func TestRepairLogFailureFailsTheCall(t *testing.T) {
	stores := dualwritetest.NewPair[string]()
	logErr := errors.New("repair table missing")
	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), failingLog{logErr}, dualwrite.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	stores.New.FailNext(1, nil)
	err = w.Write(t.Context(), "42", func(ctx context.Context, side cutover.Side) error {
		return stores.Side(side).Put(ctx, "42", "Ada")
	})
	var se *dualwrite.SecondaryError
	require.ErrorAs(t, err, &se, "a key the repair log refused must reach the caller")
	assert.ErrorIs(t, err, logErr)
	assert.ErrorIs(t, err, dualwritetest.ErrInjected)
	assert.Equal(t, "42", se.Key)
}

func TestLiveWriteFallsBackToOldWhenBreakerOpen(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Live, cutover.Rampdown} {
		t.Run(stage.String(), func(t *testing.T) {
			f := newFixture(t, stage, dualwrite.WithBreaker(testutil.OpenBreaker(t)))
			require.NoError(t, f.save(t.Context(), "42", "Ada"))
			assert.Zero(t, puts(f.stores.New), "an open breaker must keep calls off the new store")
			assert.Equal(t, map[string]string{"42": "Ada"}, f.stores.Old.Snapshot())
			entries := f.repairs.Entries()
			require.Len(t, entries, 1)
			assert.Equal(t, cutover.New, entries[0].Target)
			assert.Equal(t, cutover.Fallback, entries[0].Reason)
			assert.ErrorIs(t, entries[0].Err, breaker.ErrOpen)
			assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.fallbacks", "cutover.reason", "refused"))
		})
	}
}

func TestLiveWriteFallsBackToOldWhenNewFails(t *testing.T) {
	f := newFixture(t, cutover.Live)
	f.stores.New.FailNext(1, nil)
	require.NoError(t, f.save(t.Context(), "42", "Ada"))
	assert.Equal(t, map[string]string{"42": "Ada"}, f.stores.Old.Snapshot())
	entries := f.repairs.Entries()
	require.Len(t, entries, 1)
	assert.Equal(t, cutover.New, entries[0].Target)
	assert.Equal(t, cutover.Fallback, entries[0].Reason)
}

func TestLiveWriteDoesNotFallBackOnErrorsTheBreakerIgnores(t *testing.T) {
	conflict := errors.New("unique violation")
	b, err := breaker.New("users-db", breaker.WithLogger(testutil.Quiet()), breaker.WithSettings(breaker.Settings{
		IsFailure: func(err error) bool { return !errors.Is(err, conflict) },
	}))
	require.NoError(t, err)
	f := newFixture(t, cutover.Live, dualwrite.WithBreaker(b))
	f.stores.New.FailNext(1, conflict)
	assert.ErrorIs(t, f.save(t.Context(), "42", "Ada"), conflict)
	assert.Zero(t, puts(f.stores.Old))
	assert.Zero(t, f.repairs.Len())
}

func TestShadowSkipsNewStoreWhenBreakerOpen(t *testing.T) {
	f := newFixture(t, cutover.Shadow, dualwrite.WithBreaker(testutil.OpenBreaker(t)))
	require.NoError(t, f.save(t.Context(), "42", "Ada"))
	assert.Zero(t, puts(f.stores.New))
	entries := f.repairs.Entries()
	require.Len(t, entries, 1)
	assert.Equal(t, cutover.Skipped, entries[0].Reason)
	assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.repairs", "cutover.reason", "skipped"))
}

func TestCompleteHasNoFallback(t *testing.T) {
	f := newFixture(t, cutover.Complete, dualwrite.WithBreaker(testutil.OpenBreaker(t)))
	assert.ErrorIs(t, f.save(t.Context(), "42", "Ada"), breaker.ErrOpen)
	assert.Zero(t, puts(f.stores.Old))
	assert.Zero(t, puts(f.stores.New))
}

func TestConcurrentWrites(t *testing.T) {
	t.Run("both succeed", func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, dualwrite.WithConcurrentWrites())
		require.NoError(t, f.save(t.Context(), "42", "Ada"))
		assert.Empty(t, f.stores.Diff())
		assert.Equal(t, 1, puts(f.stores.New))
	})
	t.Run("authoritative fails after secondary succeeded", func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, dualwrite.WithConcurrentWrites())
		boom := errors.New("old store down")
		f.stores.Old.FailNext(1, boom)
		assert.ErrorIs(t, f.save(t.Context(), "42", "Ada"), boom)
		entries := f.repairs.Entries()
		require.Len(t, entries, 1, "the stores differ, so the key must be recorded")
		assert.Equal(t, cutover.New, entries[0].Target)
		assert.Equal(t, cutover.AuthoritativeFailed, entries[0].Reason)
	})
	t.Run("authoritative panics after secondary succeeded", func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, dualwrite.WithConcurrentWrites())
		f.stores.Old.PanicNext(1, "nil map")
		assert.PanicsWithValue(t, "nil map", func() { _ = f.save(t.Context(), "42", "Ada") },
			"the old store's panic goes on to the caller unchanged")
		assert.Equal(t, map[string]string{"42": "Ada"}, f.stores.New.Snapshot())
		entries := f.repairs.Entries()
		require.Len(t, entries, 1, "only the secondary has the write: the key must be recorded before the panic goes on")
		assert.Equal(t, cutover.New, entries[0].Target)
		assert.Equal(t, cutover.AuthoritativeFailed, entries[0].Reason)
		var pe *cutover.PanicError
		require.ErrorAs(t, entries[0].Err, &pe)
		assert.Equal(t, "nil map", pe.Value)
	})
	t.Run("authoritative and secondary panic", func(t *testing.T) {
		f := newFixture(t, cutover.Shadow, dualwrite.WithConcurrentWrites())
		f.stores.Old.PanicNext(1, "nil map")
		f.stores.New.PanicNext(1, "new bug")
		assert.PanicsWithValue(t, "nil map", func() { _ = f.save(t.Context(), "42", "Ada") })
		assert.Empty(t, f.stores.Diff())
		assert.Zero(t, f.repairs.Len(), "neither store has the write")
	})
	for _, tc := range []struct {
		name   string
		failed cutover.Side // the store that fails in live
		reason cutover.Reason
	}{
		{"secondary fails", cutover.Old, cutover.SecondaryFailed},
		{"new fails in live: old answers", cutover.New, cutover.Fallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, cutover.Live, dualwrite.WithConcurrentWrites())
			f.stores.Side(tc.failed).FailNext(1, nil)
			require.NoError(t, f.save(t.Context(), "42", "Ada"))
			entries := f.repairs.Entries()
			require.Len(t, entries, 1)
			assert.Equal(t, tc.failed, entries[0].Target)
			assert.Equal(t, tc.reason, entries[0].Reason)
		})
	}
}

func TestCallReturnsTheAuthoritativeResult(t *testing.T) {
	for _, tt := range []struct {
		stage cutover.Stage
		want  int
	}{{cutover.Shadow, 1}, {cutover.Live, 2}} {
		t.Run(tt.stage.String(), func(t *testing.T) {
			f := newFixture(t, tt.stage)
			ids := [2]int{1, 2} // the id each store would generate
			id, err := dualwrite.Call(t.Context(), f.w, "ada", func(ctx context.Context, side cutover.Side) (int, error) {
				return ids[side], f.stores.Side(side).Put(ctx, "ada", "Ada")
			})
			require.NoError(t, err)
			assert.Equal(t, tt.want, id)
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	src, log := cutover.Fixed(cutover.Off), new(cutover.MemoryRepairLog)
	tests := []struct {
		name string
		new  func() (*dualwrite.Writer, error)
		want string
	}{
		{"empty op", func() (*dualwrite.Writer, error) { return dualwrite.New("", src, log) }, "empty operation name"},
		{"nil source", func() (*dualwrite.Writer, error) { return dualwrite.New("op", nil, log) }, "nil stage source"},
		{"nil log", func() (*dualwrite.Writer, error) { return dualwrite.New("op", src, nil) }, "nil repair log"},
		{"bad timeout", func() (*dualwrite.Writer, error) {
			return dualwrite.New("op", src, log, dualwrite.WithTimeout(-time.Second))
		}, "secondary timeout must be positive"},
		{"bad policy", func() (*dualwrite.Writer, error) {
			return dualwrite.New("op", src, log, dualwrite.WithPolicy(7))
		}, "unknown policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.new()
			assert.Nil(t, w)
			assert.ErrorIs(t, err, dualwrite.ErrInvalidInput)
			assert.ErrorContains(t, err, "dualwrite: invalid input: "+tt.want)
		})
	}
}

// slowLog is a repair log that takes longer than a secondary write may.
type slowLog struct {
	cutover.MemoryRepairLog
	delay time.Duration
}

func (l *slowLog) Record(ctx context.Context, r cutover.Repair) error {
	t := time.NewTimer(l.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.MemoryRepairLog.Record(ctx, r)
}

// TestRepairLogSlowerThanTheSecondaryTimeoutStillRecords runs on the fake
// clock of a synctest bubble: a repair log twenty times slower than the
// secondary timeout, and within DefaultRecordTimeout, still gets the key,
// and the write waits for it.
func TestRepairLogSlowerThanTheSecondaryTimeoutStillRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stores := dualwritetest.NewPair[string]()
		log := &slowLog{delay: 2 * time.Second}
		w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), log,
			dualwrite.WithTimeout(100*time.Millisecond), dualwrite.WithLogger(testutil.Quiet()))
		require.NoError(t, err)
		stores.New.FailNext(1, nil)
		start := time.Now()
		err = w.Write(t.Context(), "42", func(ctx context.Context, side cutover.Side) error {
			return stores.Side(side).Put(ctx, "42", "Ada")
		})
		require.NoError(t, err, "the repair log has a budget of its own")
		assert.Equal(t, 2*time.Second, time.Since(start))
		assert.Equal(t, 1, log.Len())
	})

	_, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), new(cutover.MemoryRepairLog), dualwrite.WithRecordTimeout(0))
	assert.ErrorContains(t, err, "dualwrite: invalid input: record timeout must be positive")
}

// TestNewStorePanicFallsBackBeforeComplete: while the new store is
// authoritative (live, rampdown) its panic is a failure like any other:
// the write goes to the old store, the key is recorded for repair of the
// new one with the panic as its error, and the caller sees no panic.
func TestNewStorePanicFallsBackBeforeComplete(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Live, cutover.Rampdown} {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/concurrent=%v", stage, concurrent), func(t *testing.T) {
				var opts []dualwrite.Option
				if concurrent {
					opts = append(opts, dualwrite.WithConcurrentWrites())
				}
				f := newFixture(t, stage, opts...)
				f.stores.New.PanicNext(1, "nil map")
				require.NoError(t, f.save(t.Context(), "42", "Ada"))
				assert.Equal(t, map[string]string{"42": "Ada"}, f.stores.Old.Snapshot())
				assert.Empty(t, f.stores.New.Snapshot())

				entries := f.repairs.Entries()
				require.Len(t, entries, 1)
				assert.Equal(t, cutover.New, entries[0].Target)
				assert.Equal(t, cutover.Fallback, entries[0].Reason)
				var pe *cutover.PanicError
				require.ErrorAs(t, entries[0].Err, &pe)
				assert.Equal(t, "nil map", pe.Value)
				assert.NotEmpty(t, pe.Stack)
				assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.fallbacks", "cutover.reason", "failed"))
				assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.duration", "cutover.outcome", "panic"))
			})
		}
	}
}

// TestOldStorePanicGoesOnWhileItIsAuthoritative: in off, dualwrite and
// shadow the old store's panic reaches the caller unchanged, as it would
// without the library; the new store is not written and nothing is
// recorded.
func TestOldStorePanicGoesOnWhileItIsAuthoritative(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite, cutover.Shadow} {
		t.Run(stage.String(), func(t *testing.T) {
			f := newFixture(t, stage)
			f.stores.Old.PanicNext(1, "nil map")
			assert.PanicsWithValue(t, "nil map", func() { _ = f.save(t.Context(), "42", "Ada") })
			assert.Zero(t, puts(f.stores.New))
			assert.Zero(t, f.repairs.Len())
		})
	}
}

// TestPanickingProbeLetsTheBreakerRecover runs in a synctest bubble, whose
// fake clock gobreaker reads. The new store panics on the half-open
// breaker's probe: in live the write falls back to the old store; in
// complete, where the new store is the only one, the panic goes on to the
// caller as it would without the library. Either way the probe counts as
// failed, the breaker opens again, and after its timeout it lets the next
// write reach the new store. A ticket left open would keep it half-open,
// refusing the new store every call for good.
func TestPanickingProbeLetsTheBreakerRecover(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Live, cutover.Complete} {
		t.Run(stage.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := testutil.TripOnce(t, time.Minute)
				f := newFixture(t, stage, dualwrite.WithBreaker(b))
				f.stores.New.FailNext(1, nil)
				_ = f.save(t.Context(), "1", "Ada")
				time.Sleep(time.Minute + time.Nanosecond)
				require.Equal(t, breaker.HalfOpen, b.State())

				f.stores.New.PanicNext(1, "driver bug")
				if stage == cutover.Complete {
					assert.PanicsWithValue(t, "driver bug", func() { _ = f.save(t.Context(), "2", "Grace") })
				} else {
					require.NoError(t, f.save(t.Context(), "2", "Grace"))
				}
				assert.Equal(t, breaker.Open, b.State(), "the panicking probe failed")
				assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.duration", "cutover.outcome", "panic"))

				time.Sleep(time.Minute + time.Nanosecond)
				require.NoError(t, f.save(t.Context(), "3", "Edsger"))
				assert.Equal(t, breaker.Closed, b.State())
				assert.Equal(t, map[string]string{"3": "Edsger"}, f.stores.New.Snapshot(), "the new store is written again")
			})
		})
	}
}

// TestAmbiguousAuthoritativeWriteIsRecorded: the authoritative write
// commits, but the caller's context ends before it returns, so it returns
// the context's error. The caller gets that error; the key is recorded for
// repair of the secondary, reason ambiguous, since the write may have
// committed. The deadline case runs in a synctest bubble, whose fake clock
// ends the caller's context exactly at its deadline.
func TestAmbiguousAuthoritativeWriteIsRecorded(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.DualWrite, cutover.Shadow, cutover.Live, cutover.Rampdown} {
		for _, concurrent := range []bool{false, true} {
			for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
				t.Run(fmt.Sprintf("%s/concurrent=%v/%v", stage, concurrent, cause), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						var opts []dualwrite.Option
						if concurrent {
							opts = append(opts, dualwrite.WithConcurrentWrites())
						}
						f := newFixture(t, stage, opts...)
						auth, sec := stage.Authoritative(), stage.Authoritative().Other()
						ctx, cancel := context.WithTimeout(t.Context(), time.Second)
						defer cancel()
						err := f.w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
							err := f.stores.Side(side).Put(ctx, "42", "Ada")
							if side == auth && err == nil { // committed; the caller leaves before the answer
								if cause == context.Canceled {
									cancel()
								} else {
									<-ctx.Done()
								}
								return ctx.Err()
							}
							return err
						})
						assert.ErrorIs(t, err, cause, "the caller still gets the error")
						assert.Equal(t, map[string]string{"42": "Ada"}, f.stores.Side(auth).Snapshot())
						if !concurrent {
							assert.Zero(t, puts(f.stores.Side(sec)), "the secondary is not written after a failed authoritative write")
						}

						entries := f.repairs.Entries()
						require.Len(t, entries, 1)
						assert.Equal(t, "42", entries[0].Key)
						assert.Equal(t, sec, entries[0].Target)
						assert.Equal(t, cutover.Ambiguous, entries[0].Reason)
						assert.ErrorIs(t, entries[0].Err, cause)
						assert.Equal(t, int64(1), f.metrics.Sum("cutover.dualwrite.repairs", "cutover.reason", "ambiguous"))
						assert.Zero(t, f.metrics.Sum("cutover.dualwrite.fallbacks", "", ""), "the caller left: no fallback")
					})
				})
			}
		}
	}
	for _, stage := range []cutover.Stage{cutover.Off, cutover.Complete} {
		t.Run(stage.String()+"/one store", func(t *testing.T) {
			f := newFixture(t, stage)
			ctx, cancel := context.WithCancel(t.Context())
			err := f.w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error { cancel(); return ctx.Err() })
			assert.ErrorIs(t, err, context.Canceled)
			assert.Zero(t, f.repairs.Len(), "with one store written, there is nothing to repair")
		})
	}
}

// TestAmbiguousWriteThatTheRepairLogRefusesFailsWithBoth: the caller gets
// its context's error and the repair log's, so the key is not lost unseen.
func TestAmbiguousWriteThatTheRepairLogRefusesFailsWithBoth(t *testing.T) {
	logErr := errors.New("repair table missing")
	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Shadow), failingLog{logErr}, dualwrite.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	err = w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error { cancel(); return ctx.Err() })
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, logErr)
	var se *dualwrite.SecondaryError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, cutover.Ambiguous, se.Reason)
	assert.Equal(t, cutover.New, se.Target)
}
