package flags

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/testutil"
)

// recorder is a slog handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recorder) WithGroup(string) slog.Handler            { return h }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

// take returns the records so far, each as its message and attributes, and
// forgets them.
func (h *recorder) take() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, r := range h.records {
		m := map[string]any{"msg": r.Message, "level": r.Level}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.Any()
			return true
		})
		out = append(out, m)
	}
	h.records = nil
	return out
}

func memClient(tb testing.TB, fs map[string]memprovider.InMemoryFlag) *openfeature.Client {
	tb.Helper()
	return testutil.MemClient(tb, fs)
}

func flag(value any) memprovider.InMemoryFlag { return testutil.StaticFlag(value) }

func withClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

func TestFallbackLogsAreRateLimited(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": flag("sideways"), "rate": flag(7)})
	clk := testutil.NewClock(time.Unix(1000, 0))
	logs := &recorder{}
	r, err := New(client, "m",
		WithLogger(slog.New(logs)),
		WithMeterProvider(noop.NewMeterProvider()),
		WithFallback(cutover.DualWrite),
		WithSampleRateFlag("rate", 0.5),
		withClock(clk.Now))
	require.NoError(t, err)

	for range 25 {
		require.Equal(t, cutover.DualWrite, r.Stage(t.Context()))
	}
	got := logs.take()
	require.Len(t, got, logBurst)
	first := got[0]
	assert.Equal(t, slog.LevelWarn, first["level"])
	assert.Equal(t, "flags: flag unusable, using fallback", first["msg"])
	assert.Equal(t, "m", first["cutover.flag"])
	assert.Equal(t, "unknown_value", first["cutover.reason"])
	assert.Equal(t, "dualwrite", first["fallback"])
	assert.Contains(t, first["error"], `"sideways"`)
	assert.NotContains(t, first, "suppressed")

	// Half an interval later there is still no token.
	clk.Advance(logEvery / 2)
	r.Stage(t.Context())
	assert.Empty(t, logs.take())

	// After a whole interval one line goes through and says how many were
	// held back: 15 from the burst and 1 from above.
	clk.Advance(logEvery / 2)
	r.Stage(t.Context())
	got = logs.take()
	require.Len(t, got, 1)
	assert.Equal(t, int64(16), got[0]["suppressed"])

	// The sample rate shares the fallback limiter.
	clk.Advance(logEvery)
	assert.Equal(t, 0.5, r.SampleRate(t.Context()))
	got = logs.take()
	require.Len(t, got, 1)
	assert.Equal(t, "rate", got[0]["cutover.flag"])
	assert.Equal(t, "out_of_range", got[0]["cutover.reason"])
	assert.Equal(t, "0.5", got[0]["fallback"])
}

func TestClampLogsAreRateLimited(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": flag("complete"), "bad": flag("?")})
	clk := testutil.NewClock(time.Unix(1000, 0))
	logs := &recorder{}
	opts := []Option{
		WithLogger(slog.New(logs)),
		WithMeterProvider(noop.NewMeterProvider()),
		WithBound(func(_ context.Context, s cutover.Stage) cutover.Stage { return min(s, cutover.Shadow) }),
		withClock(clk.Now),
	}
	r, err := New(client, "m", opts...)
	require.NoError(t, err)
	for range 12 {
		require.Equal(t, cutover.Shadow, r.Stage(t.Context()))
	}
	got := logs.take()
	require.Len(t, got, logBurst)
	assert.Equal(t, slog.LevelInfo, got[0]["level"])
	assert.Equal(t, "flags: stage clamped", got[0]["msg"])
	assert.Equal(t, "complete", got[0]["cutover.requested_stage"])
	assert.Equal(t, "shadow", got[0]["cutover.stage"])
	assert.NotContains(t, got[0], "cutover.requested_reason")

	clk.Advance(logEvery)
	r.Stage(t.Context())
	got = logs.take()
	require.Len(t, got, 1)
	assert.Equal(t, int64(2), got[0]["suppressed"])

	// A fallback that is then clamped logs both, and the clamp line says
	// why the stage was requested.
	bad, err := New(client, "bad", append(opts, WithFallback(cutover.Complete))...)
	require.NoError(t, err)
	require.Equal(t, cutover.Shadow, bad.Stage(t.Context()))
	got = logs.take()
	require.Len(t, got, 2)
	assert.Equal(t, "unknown_value", got[0]["cutover.reason"])
	assert.Equal(t, "unknown_value", got[1]["cutover.requested_reason"])
}

// TestStageAllocatesNothingOfItsOwn checks that a Resolver adds no
// allocation to those of the OpenFeature evaluation it makes.
func TestStageAllocatesNothingOfItsOwn(t *testing.T) {
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": flag("shadow")})
	r, err := New(client, "m", WithMeterProvider(noop.NewMeterProvider()),
		WithBound(func(_ context.Context, s cutover.Stage) cutover.Stage { return s }))
	require.NoError(t, err)
	ctx := t.Context()
	bare := testing.AllocsPerRun(200, func() {
		_, _ = client.StringValueDetails(ctx, "m", "off", openfeature.EvaluationContext{})
	})
	resolved := testing.AllocsPerRun(200, func() { r.Stage(ctx) })
	assert.Equal(t, bare, resolved)
}
