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

// BenchmarkOperationWithOpenFeature reports each operation against its
// floor measured in the same run: one bare evaluation of the flag on the
// same client plus the direct calls of the stores the operation calls
// (x-floor, ns-over-floor), and with the OpenTelemetry SDK against the same
// operation without it (x-nosdk, ns-over-nosdk). Run it whole, so that the
// floors run first:
//
//	go test -run '^$' -bench 'BenchmarkOperationWithOpenFeature' -benchmem .
func BenchmarkOperationWithOpenFeature(b *testing.B) {
	ctx := context.Background()
	quiet := testutil.Quiet()
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite, cutover.Shadow} {
		client := openFeatureClient(b, stage)
		stores := [2]*kv{{m: map[string]string{"42": "Ada"}}, {m: map[string]string{"42": "Ada"}}}
		n := 2 // the stores an operation calls
		if stage == cutover.Off {
			n = 1
		}
		resolver := func(b *testing.B, mp *sdkmetric.MeterProvider) *flags.Resolver {
			opts := []flags.Option{flags.WithLogger(quiet)}
			if mp != nil {
				opts = append(opts, flags.WithMeterProvider(mp))
			}
			r, err := flags.New(client, "users-migration", opts...)
			require.NoError(b, err)
			return r
		}
		// floor evaluates the flag and calls op on the first n stores.
		floor := func(b *testing.B, op func(s *kv) error) {
			var (
				d   openfeature.StringEvaluationDetails
				err error
			)
			b.ReportAllocs()
			for b.Loop() {
				if d, err = client.StringValueDetails(ctx, "users-migration", "off", openfeature.EvaluationContext{}); err != nil || d.Value != stage.String() {
					break
				}
				for _, s := range stores[:n] {
					if err = op(s); err != nil {
						break
					}
				}
			}
			require.NoError(b, err)
			require.Equal(b, stage.String(), d.Value)
		}

		writes, nosdk := testutil.NewBaseline("floor"), testutil.NewBaseline("nosdk")
		b.Run(stage.String()+"/write/floor", func(b *testing.B) {
			floor(b, func(s *kv) error { return s.Put(ctx, "42", "Ada") })
			writes.Set(b)
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
				wopts := []dualwrite.Option{dualwrite.WithLogger(quiet)}
				if mp != nil {
					wopts = append(wopts, dualwrite.WithMeterProvider(mp))
				}
				w, err := dualwrite.New("users.save", resolver(b, mp), new(cutover.MemoryRepairLog), wopts...)
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
				writes.Report(b)
				if sdk {
					nosdk.Report(b)
				} else {
					nosdk.Set(b)
				}
			})
		}
		if stage == cutover.DualWrite {
			continue // reads one store, as in off
		}
		reads := testutil.NewBaseline("floor")
		b.Run(stage.String()+"/read/floor", func(b *testing.B) {
			floor(b, func(s *kv) error { _, err := s.Get(ctx, "42"); return err })
			reads.Set(b)
		})
		for _, sync := range []bool{false, true} {
			name := stage.String() + "/read"
			var opts []shadowread.Option[string]
			if sync {
				if stage == cutover.Off {
					continue // nothing to compare
				}
				name += "/sync"
				opts = append(opts, shadowread.WithSynchronous[string]())
			}
			b.Run(name, func(b *testing.B) {
				r, err := shadowread.New("users.get", resolver(b, nil), append(opts, shadowread.WithLogger[string](quiet))...)
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
				reads.Report(b)
				require.NoError(b, r.Drain(context.Background()))
			})
		}
	}
}
