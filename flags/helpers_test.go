package flags_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/internal/testutil"
)

// newClient returns a client of p on an OpenFeature API of its own.
func newClient(tb testing.TB, p openfeature.FeatureProvider) *openfeature.Client {
	tb.Helper()
	return testutil.Client(tb, p)
}

// staticFlag is an enabled in-memory flag that always gives value.
func staticFlag(value any) memprovider.InMemoryFlag { return testutil.StaticFlag(value) }

// memClient returns a client of an in-memory provider serving fs.
func memClient(tb testing.TB, fs map[string]memprovider.InMemoryFlag) *openfeature.Client {
	tb.Helper()
	return testutil.MemClient(tb, fs)
}

// telemetryOpts returns options sending metrics to a manual reader, which it
// returns, and logs nowhere.
func telemetryOpts() (*sdkmetric.ManualReader, []flags.Option) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	return rd, []flags.Option{
		flags.WithMeterProvider(mp),
		flags.WithLogger(testutil.Quiet()),
	}
}

// counts returns the sums of the counter called name, keyed by the values
// of keys joined with "/", such as "off/unknown_value".
func counts(tb testing.TB, rd *sdkmetric.ManualReader, name string, keys ...attribute.Key) map[string]int64 {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(tb, rd.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(tb, "github.com/cutover-go/cutover/flags", sm.Scope.Name)
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			require.Equal(tb, "{resolution}", m.Unit)
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(tb, ok, "metric %s is %T", name, m.Data)
			for _, dp := range sum.DataPoints {
				k := ""
				for i, key := range keys {
					v, _ := dp.Attributes.Value(key)
					if i > 0 {
						k += "/"
					}
					k += v.AsString()
				}
				out[k] += dp.Value
			}
		}
	}
	return out
}

const (
	keyFlag   = attribute.Key("cutover.flag")
	keyStage  = attribute.Key("cutover.stage")
	keyReason = attribute.Key("cutover.reason")
)

// stageCounts returns the resolutions counted for flag, keyed "stage/reason".
func stageCounts(tb testing.TB, rd *sdkmetric.ManualReader, flag string) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for k, v := range counts(tb, rd, "cutover.flags.resolutions", keyFlag, keyStage, keyReason) {
		if len(k) > len(flag) && k[:len(flag)+1] == flag+"/" {
			out[k[len(flag)+1:]] += v
		}
	}
	return out
}

// stubProvider is an OpenFeature provider whose string and float evaluations
// are done by functions; the other kinds report a general error.
type stubProvider struct {
	str func(ctx context.Context, flag string) openfeature.StringResolutionDetail
	flt func(ctx context.Context, flag string) openfeature.FloatResolutionDetail
}

func (p *stubProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "stub"} }

func (p *stubProvider) Hooks() []openfeature.Hook { return nil }

func (p *stubProvider) StringEvaluation(ctx context.Context, flag string, def string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	return p.str(ctx, flag)
}

func (p *stubProvider) FloatEvaluation(ctx context.Context, flag string, def float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return p.flt(ctx, flag)
}

func (p *stubProvider) BooleanEvaluation(_ context.Context, _ string, def bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: generalError()}
}

func (p *stubProvider) IntEvaluation(_ context.Context, _ string, def int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: generalError()}
}

func (p *stubProvider) ObjectEvaluation(_ context.Context, _ string, def any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: generalError()}
}

func generalError() openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewGeneralResolutionError("backend unavailable"),
		Reason:          openfeature.ErrorReason,
	}
}
