package storecall_test

import (
	"context"
	"errors"
	"testing"

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
	r.Observer = ev
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
