package dualwrite_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testutil"
)

// The benchmarks compare a wrapped write with the direct call of the same
// fake store function in the same run: the difference is what the library
// costs the caller.

func benchWriter(b *testing.B, stage cutover.Stage, opts ...dualwrite.Option) *dualwrite.Writer {
	b.Helper()
	opts = append([]dualwrite.Option{dualwrite.WithLogger(testutil.Quiet())}, opts...)
	w, err := dualwrite.New("users.save", cutover.Fixed(stage), new(cutover.MemoryRepairLog), opts...)
	require.NoError(b, err)
	return w
}

// kv is the fake store function of the benchmarks: a map behind a mutex,
// cheap and steady, so that the library's cost is not lost in the noise.
// (dualwritetest.Store records every call, which is what tests want and
// benchmarks do not.)
type kv struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *kv) Put(_ context.Context, key, value string) error {
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
	return nil
}

func newKV() *kv { return &kv{m: map[string]string{}} }

// benchWrite writes one key through w in a loop and reports the cost
// against each baseline.
func benchWrite(b *testing.B, w *dualwrite.Writer, against ...*testutil.Baseline) {
	benchLoop(b, func(ctx context.Context, stores [2]*kv, key, value string) error {
		return w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
			return stores[side].Put(ctx, key, value)
		})
	}, against...)
}

// benchDirect is the floor: the same store function called directly, on n
// stores, with no library in between.
func benchDirect(b *testing.B, n int) {
	benchLoop(b, func(ctx context.Context, stores [2]*kv, key, value string) error {
		for _, s := range stores[:n] {
			if err := s.Put(ctx, key, value); err != nil {
				return err
			}
		}
		return nil
	})
}

// benchLoop calls op in a loop on a fresh pair of stores and reports the
// cost against each baseline.
func benchLoop(b *testing.B, op func(ctx context.Context, stores [2]*kv, key, value string) error, against ...*testutil.Baseline) {
	stores := [2]*kv{newKV(), newKV()}
	ctx := context.Background()
	var err error
	b.ReportAllocs()
	for b.Loop() {
		if err = op(ctx, stores, "42", "Ada"); err != nil {
			break
		}
	}
	require.NoError(b, err)
	for _, bl := range against {
		bl.Report(b)
	}
}

func sdkProvider(b *testing.B) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// BenchmarkWrite reports each write against its floor measured in the same
// run, the direct calls of the stores it writes (x-direct, ns-over-direct),
// and a write with the OpenTelemetry SDK against the same write without it
// (x-nosdk, ns-over-nosdk). Run it whole, so that the floors run first:
//
//	go test -run '^$' -bench 'BenchmarkWrite$' -benchmem ./dualwrite/
func BenchmarkWrite(b *testing.B) {
	one, two := testutil.NewBaseline("direct"), testutil.NewBaseline("direct")
	nosdk := testutil.NewBaseline("nosdk")
	b.Run("direct", func(b *testing.B) { benchDirect(b, 1); one.Set(b) })
	b.Run("direct/two-stores", func(b *testing.B) { benchDirect(b, 2); two.Set(b) })
	b.Run("off", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.Off), one) })
	b.Run("off/sdk-metrics", func(b *testing.B) {
		benchWrite(b, benchWriter(b, cutover.Off, dualwrite.WithMeterProvider(sdkProvider(b))), one)
	})
	b.Run("dualwrite", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.DualWrite), two); nosdk.Set(b) })
	b.Run("dualwrite/sdk-metrics", func(b *testing.B) {
		benchWrite(b, benchWriter(b, cutover.DualWrite, dualwrite.WithMeterProvider(sdkProvider(b))), two, nosdk)
	})
	b.Run("dualwrite/concurrent", func(b *testing.B) {
		benchWrite(b, benchWriter(b, cutover.DualWrite, dualwrite.WithConcurrentWrites()), two)
	})
	b.Run("live", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.Live), two) })
	b.Run("complete", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.Complete), one) })
	b.Run("complete/breaker", func(b *testing.B) {
		br, err := breaker.New("users-db")
		require.NoError(b, err)
		benchWrite(b, benchWriter(b, cutover.Complete, dualwrite.WithBreaker(br)), one)
	})
}

func BenchmarkBreaker(b *testing.B) {
	store := newKV()
	ctx := context.Background()
	put := func(ctx context.Context) error { return store.Put(ctx, "42", "Ada") }
	direct := testutil.NewBaseline("direct")
	b.Run("direct", func(b *testing.B) {
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if err = put(ctx); err != nil {
				break
			}
		}
		require.NoError(b, err)
		direct.Set(b)
	})
	b.Run("closed", func(b *testing.B) {
		br, err := breaker.New("users-db")
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if err = br.Do(ctx, put); err != nil {
				break
			}
		}
		require.NoError(b, err)
		direct.Report(b)
	})
}
