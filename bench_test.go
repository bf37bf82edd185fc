package cutover_test

import (
	"context"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

// The whole operation, stage resolution included, against its floor: one
// bare OpenFeature string evaluation on the same in-memory provider plus
// the direct call of the same fake store function.

type kv struct {
	mu sync.RWMutex
	m  map[string]string
}

func (s *kv) Put(_ context.Context, key, value string) error {
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
	return nil
}

func (s *kv) Get(_ context.Context, key string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[key], nil
}

func openFeatureClient(b *testing.B, stage cutover.Stage) *openfeature.Client {
	b.Helper()
	return testutil.MemClient(b, map[string]memprovider.InMemoryFlag{"users-migration": testutil.StaticFlag(stage.String())})
}

func BenchmarkOperationWithOpenFeature(b *testing.B) {
	ctx := context.Background()
	quiet := testutil.Quiet()
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite} {
		client := openFeatureClient(b, stage)
		stores := [2]*kv{{m: map[string]string{}}, {m: map[string]string{}}}
		b.Run(stage.String()+"/floor", func(b *testing.B) {
			var (
				d   openfeature.StringEvaluationDetails
				err error
			)
			b.ReportAllocs()
			for b.Loop() {
				if d, err = client.StringValueDetails(ctx, "users-migration", "off", openfeature.EvaluationContext{}); err != nil || d.Value != stage.String() {
					break
				}
				if err = stores[cutover.Old].Put(ctx, "42", "Ada"); err != nil {
					break
				}
				if stage != cutover.Off {
					if err = stores[cutover.New].Put(ctx, "42", "Ada"); err != nil {
						break
					}
				}
			}
			require.NoError(b, err)
			require.Equal(b, stage.String(), d.Value)
		})
		for _, sdk := range []bool{false, true} {
			name := stage.String() + "/write"
			var mp *sdkmetric.MeterProvider
			if sdk {
				name += "/sdk-metrics"
				mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			}
			b.Run(name, func(b *testing.B) {
				var fopts []flags.Option
				var wopts []dualwrite.Option
				if mp != nil {
					fopts = append(fopts, flags.WithMeterProvider(mp))
					wopts = append(wopts, dualwrite.WithMeterProvider(mp))
				}
				resolver, err := flags.New(client, "users-migration", append(fopts, flags.WithLogger(quiet))...)
				require.NoError(b, err)
				w, err := dualwrite.New("users.save", resolver, new(cutover.MemoryRepairLog), append(wopts, dualwrite.WithLogger(quiet))...)
				require.NoError(b, err)
				b.ReportAllocs()
				for b.Loop() {
					if err = w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
						return stores[side].Put(ctx, "42", "Ada")
					}); err != nil {
						break
					}
				}
				require.NoError(b, err)
			})
		}
		if stage == cutover.Off {
			b.Run("off/read", func(b *testing.B) {
				resolver, err := flags.New(client, "users-migration", flags.WithLogger(quiet))
				require.NoError(b, err)
				r, err := shadowread.New("users.get", resolver, shadowread.WithLogger[string](quiet))
				require.NoError(b, err)
				b.ReportAllocs()
				for b.Loop() {
					if _, err = r.Read(ctx, "42", func(ctx context.Context, side cutover.Side) (string, error) {
						return stores[side].Get(ctx, "42")
					}); err != nil {
						break
					}
				}
				require.NoError(b, err)
			})
		}
	}
}
