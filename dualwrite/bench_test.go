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

func benchWrite(b *testing.B, w *dualwrite.Writer) {
	stores := [2]*kv{newKV(), newKV()}
	ctx := context.Background()
	key, value := "42", "Ada"
	var err error
	b.ReportAllocs()
	for b.Loop() {
		if err = w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
			return stores[side].Put(ctx, key, value)
		}); err != nil {
			break
		}
	}
	require.NoError(b, err)
}

func sdkProvider(b *testing.B) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func BenchmarkWrite(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		store := newKV()
		ctx := context.Background()
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if err = store.Put(ctx, "42", "Ada"); err != nil {
				break
			}
		}
		require.NoError(b, err)
	})
	b.Run("off", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.Off)) })
	b.Run("off/sdk-metrics", func(b *testing.B) {
		benchWrite(b, benchWriter(b, cutover.Off, dualwrite.WithMeterProvider(sdkProvider(b))))
	})
	b.Run("dualwrite", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.DualWrite)) })
	b.Run("dualwrite/sdk-metrics", func(b *testing.B) {
		benchWrite(b, benchWriter(b, cutover.DualWrite, dualwrite.WithMeterProvider(sdkProvider(b))))
	})
	b.Run("complete", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.Complete)) })
	b.Run("complete/breaker", func(b *testing.B) {
		br, err := breaker.New("users-db")
		require.NoError(b, err)
		benchWrite(b, benchWriter(b, cutover.Complete, dualwrite.WithBreaker(br)))
	})
}

func BenchmarkBreaker(b *testing.B) {
	store := newKV()
	ctx := context.Background()
	put := func(ctx context.Context) error { return store.Put(ctx, "42", "Ada") }
	b.Run("direct", func(b *testing.B) {
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if err = put(ctx); err != nil {
				break
			}
		}
		require.NoError(b, err)
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
	})
}
