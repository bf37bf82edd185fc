package flags_test

import (
	"context"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/internal/testutil"
)

var sinkStage cutover.Stage

func benchClient(b *testing.B) *openfeature.Client {
	return memClient(b, map[string]memprovider.InMemoryFlag{"m": staticFlag("shadow")})
}

// BenchmarkBareOpenFeature is the baseline: one string evaluation on the
// in-memory provider, the least any resolution of the flag costs.
func BenchmarkBareOpenFeature(b *testing.B) {
	client := benchClient(b)
	ctx := context.Background()
	var (
		d   openfeature.StringEvaluationDetails
		err error
	)
	b.ReportAllocs()
	for b.Loop() {
		if d, err = client.StringValueDetails(ctx, "m", "off", openfeature.EvaluationContext{}); err != nil || d.Value != "shadow" {
			break
		}
	}
	require.NoError(b, err)
	require.Equal(b, "shadow", d.Value)
}

func benchResolver(b *testing.B, client flags.Client, opts ...flags.Option) {
	r, err := flags.New(client, "m", append([]flags.Option{
		flags.WithLogger(testutil.Quiet()),
	}, opts...)...)
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sinkStage = r.Stage(ctx)
	}
	require.Equal(b, cutover.Shadow, sinkStage)
}

// BenchmarkResolverStage is Stage on the same provider, with the no-op meter
// provider OpenTelemetry uses until one is installed.
func BenchmarkResolverStage(b *testing.B) {
	benchResolver(b, benchClient(b), flags.WithMeterProvider(noop.NewMeterProvider()))
}

// BenchmarkResolverStageSDKMetrics counts each resolution with the
// OpenTelemetry SDK.
func BenchmarkResolverStageSDKMetrics(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	benchResolver(b, benchClient(b), flags.WithMeterProvider(mp))
}

// BenchmarkResolverStageBound adds a bound function that leaves the stage
// alone.
func BenchmarkResolverStageBound(b *testing.B) {
	benchResolver(b, benchClient(b), flags.WithMeterProvider(noop.NewMeterProvider()),
		flags.WithBound(func(_ context.Context, s cutover.Stage) cutover.Stage { return min(s, cutover.Live) }))
}

// BenchmarkResolverStageTimeout shows the price of WithTimeout: a goroutine,
// a timer and a channel per evaluation.
func BenchmarkResolverStageTimeout(b *testing.B) {
	benchResolver(b, benchClient(b), flags.WithMeterProvider(noop.NewMeterProvider()),
		flags.WithTimeout(time.Second))
}
