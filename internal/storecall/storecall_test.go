package storecall_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/storecall"
	"github.com/cutover-go/cutover/internal/telemetry"
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
