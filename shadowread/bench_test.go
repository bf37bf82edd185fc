package shadowread_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

// kv is the fake store function of the benchmarks: a map behind a mutex,
// with an optional latency, so that the library's cost is not lost in the
// noise of a recording fake.
type kv struct {
	mu      sync.RWMutex
	m       map[string]user
	latency time.Duration
}

func (s *kv) Get(ctx context.Context, key string) (user, error) {
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return user{}, ctx.Err()
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[key], nil
}

func benchStores(newLatency time.Duration) [2]*kv {
	m := map[string]user{ada.ID: ada}
	return [2]*kv{{m: m}, {m: m, latency: newLatency}}
}

func benchRead(b *testing.B, stage cutover.Stage, stores [2]*kv, opts ...shadowread.Option[user]) {
	opts = append([]shadowread.Option[user]{shadowread.WithLogger[user](testutil.Quiet())}, opts...)
	r, err := shadowread.New("users.get", cutover.Fixed(stage), opts...)
	require.NoError(b, err)
	ctx := context.Background()
	key := ada.ID
	b.ReportAllocs()
	var caller time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err = r.Read(ctx, key, func(ctx context.Context, side cutover.Side) (user, error) {
			return stores[side].Get(ctx, key)
		}); err != nil {
			break
		}
		caller += time.Since(start)
	}
	b.StopTimer()
	require.NoError(b, err)
	reportCaller(b, caller)
	require.NoError(b, r.Drain(context.Background()))
}

func BenchmarkRead(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		s := benchStores(0)[cutover.Old]
		ctx := context.Background()
		b.ReportAllocs()
		var (
			caller time.Duration
			err    error
		)
		for b.Loop() {
			start := time.Now()
			if _, err = s.Get(ctx, ada.ID); err != nil {
				break
			}
			caller += time.Since(start)
		}
		require.NoError(b, err)
		reportCaller(b, caller)
	})
	b.Run("off", func(b *testing.B) { benchRead(b, cutover.Off, benchStores(0)) })
	b.Run("off/sdk-metrics", func(b *testing.B) {
		benchRead(b, cutover.Off, benchStores(0), shadowread.WithMeterProvider[user](sdkProvider(b)))
	})
	// With the default bound, reads that find every comparison slot busy are
	// not compared: on 2 cores most of these are dropped.
	b.Run("shadow/async/new-instant", func(b *testing.B) { benchRead(b, cutover.Shadow, benchStores(0)) })
	// Every read is compared: the caller pays for starting a goroutine.
	b.Run("shadow/async/new-instant/unbounded", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(0), shadowread.WithMaxConcurrent[user](1<<30))
	})
	// The new store takes 100 ms: the caller must not notice. Comparisons
	// beyond the concurrency bound are dropped.
	b.Run("shadow/async/new-100ms", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond))
	})
	// Every read is compared and the new store takes 100 ms: the caller pays
	// for starting a goroutine that then sleeps. Run it with a fixed count,
	// such as -benchtime 200000x, or the goroutines pile up.
	b.Run("shadow/async/new-100ms/unbounded", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond), shadowread.WithMaxConcurrent[user](1<<30))
	})
	b.Run("shadow/async/new-100ms/sdk-metrics", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond), shadowread.WithMeterProvider[user](sdkProvider(b)))
	})
	b.Run("shadow/sync/new-instant", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(0), shadowread.WithSynchronous[user]())
	})
}

func sdkProvider(b *testing.B) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// reportCaller reports the time the caller spent in the calls, clock reads
// included, as caller-ns/op. Unlike ns/op it leaves out the comparisons
// that run on other goroutines, which compete for the same two cores.
func reportCaller(b *testing.B, caller time.Duration) {
	b.ReportMetric(float64(caller.Nanoseconds())/float64(b.N), "caller-ns/op")
}
