package flags_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/internal/metrictest"
)

// badClient is a flag client that answers every evaluation with one value
// and counts the evaluations.
type badClient struct {
	calls atomic.Int64
	stage string
	rate  float64
}

func (c *badClient) StringValueDetails(_ context.Context, _ string, _ string, _ openfeature.EvaluationContext, _ ...openfeature.Option) (openfeature.StringEvaluationDetails, error) {
	c.calls.Add(1)
	return openfeature.StringEvaluationDetails{Value: c.stage}, nil
}

func (c *badClient) FloatValueDetails(_ context.Context, _ string, _ float64, _ openfeature.EvaluationContext, _ ...openfeature.Option) (openfeature.FloatEvaluationDetails, error) {
	c.calls.Add(1)
	return openfeature.FloatEvaluationDetails{Value: c.rate}, nil
}

// TestBadInputNew gives New every argument and option it refuses. Each
// fails, without a panic, with an error that starts "flags: invalid input: ",
// wraps ErrInvalidInput and names every problem, and the flag is never
// evaluated.
func TestBadInputNew(t *testing.T) {
	t.Parallel()
	client := &badClient{stage: "live", rate: 1}
	bound := func(_ context.Context, s cutover.Stage) cutover.Stage { return s }
	var (
		nilClient *badClient
		nilMeter  *sdkmetric.MeterProvider
	)
	type opts = []flags.Option
	for _, tc := range []struct {
		name   string
		client flags.Client
		flag   string
		opts   opts
		want   []string
	}{
		{"nil client", nil, "m", nil, []string{"flags: invalid input: nil client"}},
		{"typed nil client", (*openfeature.Client)(nil), "m", nil, []string{"flags: invalid input: nil client"}},
		{"typed nil client of another type", nilClient, "m", nil, []string{"flags: invalid input: nil client"}},
		{"empty flag", client, "", nil, []string{"flags: invalid input: empty flag key"}},
		{"fallback not a stage", client, "m", opts{flags.WithFallback(cutover.Stage(200))}, []string{`flags: invalid input: flag "m": fallback Stage(200): cutover: unknown stage`}},
		{"negative timeout", client, "m", opts{flags.WithTimeout(-time.Nanosecond)}, []string{"timeout -1ns: negative"}},
		{"rate fallback NaN", client, "m", opts{flags.WithSampleRateFlag("r", math.NaN())}, []string{"sample rate fallback NaN: outside [0, 1]"}},
		{"rate fallback above one", client, "m", opts{flags.WithSampleRateFlag("r", math.Inf(1))}, []string{"sample rate fallback +Inf: outside [0, 1]"}},
		{"rate fallback below zero", client, "m", opts{flags.WithSampleRateFlag("r", -0.01)}, []string{"sample rate fallback -0.01"}},
		{"empty rate flag", client, "m", opts{flags.WithSampleRateFlag("", 0.5)}, []string{"sample rate flag: empty flag key"}},
		{"nil bound", client, "m", opts{flags.WithBound(nil)}, []string{"bound: nil function"}},
		{"nil evaluation context", client, "m", opts{flags.WithEvaluationContext(nil)}, []string{"evaluation context: nil function"}},
		{"nil option", client, "m", opts{nil}, []string{"option 0 is nil"}},
		{"nil logger", client, "m", opts{flags.WithLogger(nil)}, []string{`flags: invalid input: flag "m": WithLogger: nil logger`}},
		{"nil meter provider", client, "m", opts{flags.WithMeterProvider(nil)}, []string{"WithMeterProvider: nil meter provider"}},
		{"typed nil meter provider", client, "m", opts{flags.WithMeterProvider(nilMeter)}, []string{"WithMeterProvider: nil meter provider"}},
		{"every problem at once", client, "m", opts{flags.WithBound(bound), flags.WithTimeout(-1), nil, flags.WithFallback(9)},
			[]string{"timeout -1ns: negative", "option 2 is nil", "fallback Stage(9)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				r   *flags.Resolver
				err error
			)
			require.NotPanics(t, func() { r, err = flags.New(tc.client, tc.flag, tc.opts...) })
			assert.Nil(t, r)
			require.Error(t, err)
			assert.ErrorIs(t, err, flags.ErrInvalidInput)
			assert.True(t, strings.HasPrefix(err.Error(), "flags: invalid input: "), "%v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	assert.Zero(t, client.calls.Load(), "no flag was evaluated")
}

// TestBadInputFlagValues gives the stage flag values that are no stage:
// other spellings, look-alike letters, bytes that are not UTF-8, SQL, and
// ten kilobytes of text. Each request gets the fallback stage, counted as
// unknown_value; the log line says why and stays short.
func TestBadInputFlagValues(t *testing.T) {
	t.Parallel()
	values := []string{"LIVE", "dual-write", "l\u0456ve", "\uff4c\uff49\uff56\uff45", "shadow\xff", "rampdown; DROP TABLE users",
		"complete\n", strings.Repeat("live", 2500)}
	for _, v := range values {
		metrics := metrictest.New(t)
		var logs bytes.Buffer
		client := &badClient{stage: v}
		r, err := flags.New(client, "m", flags.WithFallback(cutover.DualWrite), flags.WithMeterProvider(metrics.Provider()),
			flags.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		for range 3 {
			assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()), "%.40q", v)
		}
		assert.Equal(t, int64(3), metrics.Sum("cutover.flags.resolutions", "cutover.reason", "unknown_value"))
		assert.Zero(t, metrics.Sum("cutover.flags.resolutions", "cutover.reason", "flag"))
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		require.NotEmpty(t, lines)
		for _, l := range lines {
			assert.Contains(t, l, "cutover: unknown stage")
			assert.Less(t, len(l), 1000, "a log line does not echo the whole value")
		}
	}
}

// TestBadInputSampleRateValues gives the sample rate flag values outside
// [0, 1]. Each gives the fallback rate, counted as out_of_range.
func TestBadInputSampleRateValues(t *testing.T) {
	t.Parallel()
	for _, v := range []float64{math.NaN(), -0.5, 1.0001, math.Inf(1), math.Inf(-1)} {
		metrics := metrictest.New(t)
		client := &badClient{stage: "shadow", rate: v}
		r, err := flags.New(client, "m", flags.WithSampleRateFlag("rate", 0.25), flags.WithMeterProvider(metrics.Provider()),
			flags.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		assert.Equal(t, 0.25, r.SampleRate(t.Context()), "%v", v)
		assert.Equal(t, int64(1), metrics.Sum("cutover.flags.sample_rate_resolutions", "cutover.reason", "out_of_range"))
		assert.Equal(t, cutover.Shadow, r.Stage(t.Context()), "the stage flag is unaffected")
	}
}
