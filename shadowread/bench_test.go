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

// benchRead reads one key through a reader in a loop and reports the
// cost against each baseline. With async, for a reader that compares on
// goroutines of its own, it also reports the caller's time as
// caller-ns/op; the other readers' loops leave out the clock reads that
// takes.
func benchRead(b *testing.B, stage cutover.Stage, stores [2]*kv, async bool, opts []shadowread.Option[user], against ...*testutil.Baseline) {
	opts = append([]shadowread.Option[user]{shadowread.WithLogger[user](testutil.Quiet())}, opts...)
	r, err := shadowread.New("users.get", cutover.Fixed(stage), opts...)
	require.NoError(b, err)
	ctx := context.Background()
	key := ada.ID
	b.ReportAllocs()
	var caller time.Duration
	for b.Loop() {
		var start time.Time
		if async {
			start = time.Now()
		}
		if _, err = r.Read(ctx, key, func(ctx context.Context, side cutover.Side) (user, error) {
			return stores[side].Get(ctx, key)
		}); err != nil {
			break
		}
		if async {
			caller += time.Since(start)
		}
	}
	b.StopTimer()
	require.NoError(b, err)
	if async {
		reportCaller(b, caller)
	}
	for _, bl := range against {
		bl.Report(b)
	}
	require.NoError(b, r.Drain(context.Background()))
}

// benchDirect is the floor: the same store function called directly, on n
// stores, with no library in between.
func benchDirect(b *testing.B, n int) {
	stores := benchStores(0)
	ctx := context.Background()
	b.ReportAllocs()
	var err error
	for b.Loop() {
		for _, s := range stores[:n] {
			if _, err = s.Get(ctx, ada.ID); err != nil {
				break
			}
		}
	}
	require.NoError(b, err)
}

// BenchmarkRead reports the reads that make both store calls on the
// caller's goroutine against their floor measured in the same run, the
// direct calls of the stores they read (x-direct, ns-over-direct), and a
// read with the OpenTelemetry SDK against the same read without it
// (x-nosdk, ns-over-nosdk). Asynchronous comparisons run on goroutines of
// their own, competing for the same cores: for those, caller-ns/op is the
// time the caller spent. Run it whole, so that the floors run first:
//
//	go test -run '^$' -bench 'BenchmarkRead$' -benchmem -benchtime 200000x ./shadowread/
func BenchmarkRead(b *testing.B) {
	one, two := testutil.NewBaseline("direct"), testutil.NewBaseline("direct")
	nosdk := testutil.NewBaseline("nosdk")
	sync := []shadowread.Option[user]{shadowread.WithSynchronous[user]()}
	b.Run("direct", func(b *testing.B) { benchDirect(b, 1); one.Set(b) })
	b.Run("direct/two-stores", func(b *testing.B) { benchDirect(b, 2); two.Set(b) })
	b.Run("off", func(b *testing.B) { benchRead(b, cutover.Off, benchStores(0), false, nil, one) })
	b.Run("off/sdk-metrics", func(b *testing.B) {
		benchRead(b, cutover.Off, benchStores(0), false, []shadowread.Option[user]{shadowread.WithMeterProvider[user](sdkProvider(b))}, one)
	})
	b.Run("shadow/sync/new-instant", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(0), false, sync, two)
		nosdk.Set(b)
	})
	b.Run("shadow/sync/new-instant/sdk-metrics", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(0), false, append(sync, shadowread.WithMeterProvider[user](sdkProvider(b))), two, nosdk)
	})
	b.Run("live/sync/new-instant", func(b *testing.B) { benchRead(b, cutover.Live, benchStores(0), false, sync, two) })
	// With the default bound, reads that find every comparison slot busy are
	// not compared: on 2 cores most of these are dropped.
	b.Run("shadow/async/new-instant", func(b *testing.B) { benchRead(b, cutover.Shadow, benchStores(0), true, nil) })
	// Every read is compared: the caller pays for starting a goroutine.
	b.Run("shadow/async/new-instant/unbounded", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(0), true, []shadowread.Option[user]{shadowread.WithMaxConcurrent[user](1 << 30)})
	})
	// The new store takes 100 ms: the caller must not notice. Comparisons
	// beyond the concurrency bound are dropped.
	b.Run("shadow/async/new-100ms", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond), true, nil)
	})
	// Every read is compared and the new store takes 100 ms: the caller pays
	// for starting a goroutine that then sleeps. Run it with a fixed count,
	// such as -benchtime 200000x, or the goroutines pile up.
	b.Run("shadow/async/new-100ms/unbounded", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond), true, []shadowread.Option[user]{shadowread.WithMaxConcurrent[user](1 << 30)})
	})
	b.Run("shadow/async/new-100ms/sdk-metrics", func(b *testing.B) {
		benchRead(b, cutover.Shadow, benchStores(100*time.Millisecond), true, []shadowread.Option[user]{shadowread.WithMeterProvider[user](sdkProvider(b))})
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
