package storecall_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/storecall"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/testutil"
)

func recorder(t *testing.T, b *breaker.Breaker) *storecall.Recorder {
	t.Helper()
	calls, err := telemetry.NewCalls(noop.NewMeterProvider().Meter("test"), "d", "d", "op")
	require.NoError(t, err)
	return storecall.NewRecorder("op", calls, tracenoop.NewTracerProvider().Tracer("test"), b)
}

// TestFallback is the fallback rule of dualwrite and shadowread, stage by
// stage and outcome by outcome.
func TestFallback(t *testing.T) {
	conflict := errors.New("unique violation")
	b, err := breaker.New("db", breaker.WithLogger(slog.New(slog.DiscardHandler)),
		breaker.WithSettings(breaker.Settings{IsFailure: func(err error) bool { return !errors.Is(err, conflict) }}))
	require.NoError(t, err)
	down := errors.New("down")
	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	type want struct {
		why storecall.FallbackReason
		ok  bool
	}
	for _, tc := range []struct {
		name    string
		breaker *breaker.Breaker
		ctx     context.Context
		o       telemetry.Outcome
		err     error
		want    want
	}{
		{"refused", b, t.Context(), telemetry.Refused, breaker.ErrOpen, want{storecall.FallbackRefused, true}},
		{"failed", nil, t.Context(), telemetry.Error, down, want{storecall.FallbackFailed, true}},
		{"failed under the breaker", b, t.Context(), telemetry.Error, down, want{storecall.FallbackFailed, true}},
		{"timed out", b, t.Context(), telemetry.Timeout, context.DeadlineExceeded, want{storecall.FallbackFailed, true}},
		{"panicked", nil, t.Context(), telemetry.Panic, &cutover.PanicError{Value: "boom"}, want{storecall.FallbackFailed, true}},
		{"an answer the breaker ignores", b, t.Context(), telemetry.Error, conflict, want{}},
		{"the caller left", nil, canceled, telemetry.Canceled, context.Canceled, want{}},
		{"succeeded", b, t.Context(), telemetry.OK, nil, want{}},
	} {
		r := recorder(t, tc.breaker)
		for _, stage := range cutover.Stages {
			t.Run(fmt.Sprintf("%s/%s", tc.name, stage), func(t *testing.T) {
				why, ok := r.Fallback(tc.ctx, stage, tc.o, tc.err)
				w := tc.want
				if stage != cutover.Live && stage != cutover.Rampdown {
					w = want{} // only where the old store is still fully written
				}
				assert.Equal(t, w, want{why, ok})
			})
		}
	}
}

func TestFallbackReasonNames(t *testing.T) {
	assert.Equal(t, "refused", storecall.FallbackRefused.String())
	assert.Equal(t, "failed", storecall.FallbackFailed.String())
}

// TestAuthoritativePanicCompletesTheTicket runs in a synctest bubble, whose
// fake clock gobreaker reads. The authoritative call of the new store (in
// complete, where its panic goes on to the caller) is the half-open
// breaker's probe and panics: the probe counts as failed, so the breaker
// opens again and lets a probe through after its timeout. A ticket left
// open would keep it half-open, refusing every call for good.
func TestAuthoritativePanicCompletesTheTicket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := testutil.TripOnce(t, time.Minute)
		r := recorder(t, b)
		call := func(f storecall.ErrFunc) error {
			_, _, err := storecall.Call(t.Context(), t.Context(), r, cutover.Complete, cutover.New, telemetry.Authoritative, false, f)
			return err
		}
		require.Error(t, call(func(context.Context, cutover.Side) error { return errors.New("down") }))
		time.Sleep(time.Minute + time.Nanosecond)
		require.Equal(t, breaker.HalfOpen, b.State())

		assert.PanicsWithValue(t, "driver bug", func() {
			_ = call(func(context.Context, cutover.Side) error { panic("driver bug") })
		}, "an authoritative panic goes on to the caller unchanged")
		assert.Equal(t, breaker.Open, b.State(), "a panicking probe is a failed probe")

		time.Sleep(time.Minute + time.Nanosecond)
		require.NoError(t, call(func(context.Context, cutover.Side) error { return nil }), "the next probe goes through")
		assert.Equal(t, breaker.Closed, b.State())
	})
}

// TestRecoveredPanicCountsAgainstTheBreaker: a secondary call's panic comes
// back as a *cutover.PanicError and is a failure, even under a breaker that
// counts no error.
func TestRecoveredPanicCountsAgainstTheBreaker(t *testing.T) {
	b, err := breaker.New("db", breaker.WithLogger(slog.New(slog.DiscardHandler)), breaker.WithSettings(breaker.Settings{
		ReadyToTrip: func(c breaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		Timeout:     time.Hour,
		IsFailure:   func(error) bool { return false },
	}))
	require.NoError(t, err)
	r := recorder(t, b)
	_, o, err := storecall.Call(t.Context(), context.Background(), r, cutover.Shadow, cutover.New, telemetry.Secondary, false,
		storecall.ErrFunc(func(context.Context, cutover.Side) error { panic("driver bug") }))
	var pe *cutover.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "driver bug", pe.Value)
	assert.Equal(t, telemetry.Panic, o)
	assert.Equal(t, breaker.Open, b.State())
}
