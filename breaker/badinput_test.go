package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/testutil"
)

// TestBadInputNew gives New an empty name, negative durations, a nil option
// and nil providers. Each fails, without a panic, with an error that starts
// "breaker: invalid input: ", wraps ErrInvalidInput and names the problem;
// no instrument is created and nothing is logged.
func TestBadInputNew(t *testing.T) {
	var nilMeter *sdkmetric.MeterProvider
	for _, tc := range []struct {
		name     string
		breaker  string
		settings breaker.Settings
		opts     []breaker.Option
		want     string
	}{
		{"empty name", "", breaker.Settings{}, nil, "breaker: invalid input: empty name"},
		{"negative interval", "db", breaker.Settings{Interval: -time.Second}, nil, "breaker: invalid input: negative interval or timeout in settings (-1s, 0s)"},
		{"negative timeout", "db", breaker.Settings{Timeout: -time.Millisecond}, nil, "breaker: invalid input: negative interval or timeout in settings (0s, -1ms)"},
		{"both negative", "db", breaker.Settings{Interval: -1, Timeout: -2}, nil, "(-1ns, -2ns)"},
		{"nil option", "db", breaker.Settings{}, []breaker.Option{nil}, "breaker: invalid input: option 3 is nil"},
		{"nil logger", "db", breaker.Settings{}, []breaker.Option{breaker.WithLogger(nil)}, "breaker: invalid input: WithLogger: nil logger"},
		{"nil meter provider", "db", breaker.Settings{}, []breaker.Option{breaker.WithMeterProvider(nil)}, "WithMeterProvider: nil meter provider"},
		{"typed nil meter provider", "db", breaker.Settings{}, []breaker.Option{breaker.WithMeterProvider(nilMeter)}, "WithMeterProvider: nil meter provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			var logs bytes.Buffer
			opts := append([]breaker.Option{breaker.WithSettings(tc.settings), breaker.WithMeterProvider(mp),
				breaker.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, tc.opts...)
			var (
				b   *breaker.Breaker
				err error
			)
			require.NotPanics(t, func() { b, err = breaker.New(tc.breaker, opts...) })
			assert.Nil(t, b)
			require.Error(t, err)
			assert.ErrorIs(t, err, breaker.ErrInvalidInput)
			assert.True(t, strings.HasPrefix(err.Error(), "breaker: invalid input: "), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
			assert.False(t, errors.Is(err, breaker.ErrOpen))

			var rm metricdata.ResourceMetrics
			require.NoError(t, reader.Collect(t.Context(), &rm))
			for _, sm := range rm.ScopeMetrics {
				assert.Empty(t, sm.Metrics, "no instrument reports")
			}
			assert.Empty(t, logs.String(), "nothing logged")
		})
	}
}

// TestBadInputZeroSettings checks that zero settings are not bad input:
// each takes the documented default, so a breaker built from the zero
// Settings opens after more than five consecutive failures.
func TestBadInputZeroSettings(t *testing.T) {
	b, err := breaker.New("db", breaker.WithSettings(breaker.Settings{}), breaker.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	down := errors.New("down")
	for range 6 {
		assert.Equal(t, breaker.Closed, b.State())
		_ = b.Do(t.Context(), func(context.Context) error { return down })
	}
	assert.Equal(t, breaker.Open, b.State())
	err = b.Do(t.Context(), func(context.Context) error { assert.Fail(t, "called while open"); return nil })
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Contains(t, err.Error(), "breaker: open: db")
}

// TestBadInputNilFunction gives Do a nil function. It returns ErrNilFunc,
// which wraps ErrInvalidInput, without a panic and without asking the
// breaker: a half-open breaker keeps its probe for a real call.
func TestBadInputNilFunction(t *testing.T) {
	b, err := breaker.New("db", breaker.WithLogger(testutil.Quiet()), breaker.WithSettings(breaker.Settings{MaxRequests: 1}))
	require.NoError(t, err)
	require.NotPanics(t, func() { err = b.Do(t.Context(), nil) })
	assert.ErrorIs(t, err, breaker.ErrNilFunc)
	assert.ErrorIs(t, err, breaker.ErrInvalidInput)
	assert.EqualError(t, err, "breaker: invalid input: nil function")
	assert.Zero(t, b.Counts().Requests, "the breaker was not asked")
}
