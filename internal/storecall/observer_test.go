package storecall_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/storecall"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/testutil"
)

// TestObserver: a recorder with an observer reports each call, a refused
// one and a panicking one included, each fallback and each comparison.
func TestObserver(t *testing.T) {
	ev := &testutil.Events{}
	r := recorder(t, testutil.OpenBreaker(t))
	r.SetObserver(ev)
	ctx := t.Context()
	down := errors.New("down")
	f := storecall.ErrFunc(func(_ context.Context, side cutover.Side) error {
		if side == cutover.Old {
			return nil
		}
		return down
	})
	_, o, _ := storecall.Call(ctx, ctx, r, cutover.Live, cutover.New, telemetry.Authoritative, false, f)
	require.Equal(t, telemetry.Refused, o)
	_, o, _ = storecall.Call(ctx, ctx, r, cutover.Live, cutover.Old, telemetry.Fallback, false, f)
	require.Equal(t, telemetry.OK, o)
	boom := storecall.ErrFunc(func(context.Context, cutover.Side) error { panic("boom") })
	_, o, _ = storecall.Call(ctx, ctx, r, cutover.Live, cutover.Old, telemetry.Secondary, false, boom)
	require.Equal(t, telemetry.Panic, o)
	r.FellBack(ctx, cutover.Live, storecall.FallbackRefused)
	r.Compared(ctx, cutover.Shadow, cutover.CompareMismatch)

	require.Len(t, ev.Calls, 3)
	assert.Equal(t, cutover.CallEvent{Op: "op", Stage: cutover.Live, Side: cutover.New, Role: cutover.RoleAuthoritative, Outcome: cutover.CallRefused}, ev.Calls[0])
	assert.Equal(t, cutover.RoleFallback, ev.Calls[1].Role)
	assert.Equal(t, cutover.CallOK, ev.Calls[1].Outcome)
	assert.Equal(t, cutover.CallPanic, ev.Calls[2].Outcome)
	assert.True(t, ev.Calls[2].Outcome.Failed())
	assert.Equal(t, []cutover.FallbackEvent{{Op: "op", Stage: cutover.Live, Reason: cutover.FallbackRefused}}, ev.Fallbacks)
	assert.Equal(t, []cutover.ComparisonEvent{{Op: "op", Stage: cutover.Shadow, Result: cutover.CompareMismatch}}, ev.Comparisons)
}

// latencyFree is an observer that says it uses no latency.
type latencyFree struct{ testutil.Events }

func (*latencyFree) ObservesLatency() bool { return false }

// TestObserverWithoutLatency: an observer that uses no latency is told of
// every call, with no duration, when no metric records the calls either;
// one that does use them gets them.
func TestObserverWithoutLatency(t *testing.T) {
	ctx := t.Context()
	slow := storecall.ErrFunc(func(context.Context, cutover.Side) error {
		start := time.Now()
		for time.Since(start) == 0 { // at least one tick of the clock
		}
		return nil
	})
	free := &latencyFree{}
	r := recorder(t, nil)
	r.SetObserver(free)
	_, o, _ := storecall.Call(ctx, ctx, r, cutover.Live, cutover.New, telemetry.Authoritative, false, slow)
	require.Equal(t, telemetry.OK, o)
	require.Len(t, free.Calls, 1, "the call is observed")
	assert.Zero(t, free.Calls[0].Duration, "and not timed")

	timed := &testutil.Events{}
	r = recorder(t, nil)
	r.SetObserver(timed)
	_, _, _ = storecall.Call(ctx, ctx, r, cutover.Live, cutover.New, telemetry.Authoritative, false, slow)
	require.Len(t, timed.Calls, 1)
	assert.Positive(t, timed.Calls[0].Duration, "an observer that says nothing gets the latency")
}
