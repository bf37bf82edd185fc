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

// newReader returns a reader of stage for the benchmarks.
func newReader(b *testing.B, stage cutover.Stage, opts ...shadowread.Option[user]) *shadowread.Reader[user] {
	opts = append([]shadowread.Option[user]{shadowread.WithLogger[user](testutil.Quiet())}, opts...)
	r, err := shadowread.New("users.get", cutover.Fixed(stage), opts...)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, r.Drain(context.Background())) })
	return r
}

// read returns a function that reads one key through r from stores.
func read(r *shadowread.Reader[user], stores [2]*kv) func() error {
	ctx := context.Background()
	return func() error {
		_, err := r.Read(ctx, ada.ID, func(ctx context.Context, side cutover.Side) (user, error) {
			return stores[side].Get(ctx, ada.ID)
		})
		return err
	}
}

// direct returns the floor of a read of the first n stores: the same
// store calls, made directly.
func direct(stores [2]*kv, n int) func() error {
	ctx := context.Background()
	return func() error {
		for _, s := range stores[:n] {
			if _, err := s.Get(ctx, ada.ID); err != nil {
				return err
			}
		}
		return nil
	}
}

// benchRead reads one key through a reader that compares on goroutines of
// its own, and reports the time the caller spent as caller-ns/op.
func benchRead(b *testing.B, stores [2]*kv, opts ...shadowread.Option[user]) {
	r := newReader(b, cutover.Shadow, opts...)
	f := read(r, stores)
	b.ReportAllocs()
	var caller time.Duration
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		caller += time.Since(start)
	}
	b.StopTimer()
	reportCaller(b, caller)
}

// BenchmarkRead measures the reads that make their store calls on the
// caller's goroutine against their floor, the direct calls of the stores
// they read, called in alternating rounds in the same benchmark (x-direct,
// ns-over-direct, allocs-over-direct; see testutil.Paired), and a read with
// the OpenTelemetry SDK against the same read without it (x-nosdk,
// ns-over-nosdk). Asynchronous comparisons run on goroutines of their own,
// competing for the same cores: for those, caller-ns/op is the time the
// caller spent.
//
//	go test -run '^$' -bench 'BenchmarkRead$' -benchtime 200000x ./shadowread/
func BenchmarkRead(b *testing.B) {
	sync := shadowread.WithSynchronous[user]()
	for _, tc := range []struct {
		name   string
		stage  cutover.Stage
		stores int // the stores a read calls
		opts   []shadowread.Option[user]
	}{
		{"off", cutover.Off, 1, nil},
		{"shadow/sync/new-instant", cutover.Shadow, 2, []shadowread.Option[user]{sync}},
		{"live/sync/new-instant", cutover.Live, 2, []shadowread.Option[user]{sync}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			stores := benchStores(0)
			testutil.Paired(b, "direct", direct(stores, tc.stores), read(newReader(b, tc.stage, tc.opts...), stores))
		})
	}
	b.Run("off/sdk-metrics", func(b *testing.B) {
		stores := benchStores(0)
		testutil.Paired(b, "nosdk", read(newReader(b, cutover.Off), stores),
			read(newReader(b, cutover.Off, shadowread.WithMeterProvider[user](sdkProvider(b))), stores))
	})
	b.Run("shadow/sync/new-instant/sdk-metrics", func(b *testing.B) {
		stores := benchStores(0)
		testutil.Paired(b, "nosdk", read(newReader(b, cutover.Shadow, sync), stores),
			read(newReader(b, cutover.Shadow, sync, shadowread.WithMeterProvider[user](sdkProvider(b))), stores))
	})
	// With the default bound, reads that find every comparison slot busy are
	// not compared: on 2 cores most of these are dropped.
	b.Run("shadow/async/new-instant", func(b *testing.B) { benchRead(b, benchStores(0)) })
	// Every read is compared: the caller pays for starting a goroutine.
	b.Run("shadow/async/new-instant/unbounded", func(b *testing.B) {
		benchRead(b, benchStores(0), shadowread.WithMaxConcurrent[user](1<<30))
	})
	// The new store takes 100 ms: the caller must not notice. Comparisons
	// beyond the concurrency bound are dropped.
	b.Run("shadow/async/new-100ms", func(b *testing.B) { benchRead(b, benchStores(100*time.Millisecond)) })
	// Every read is compared and the new store takes 100 ms: the caller pays
	// for starting a goroutine that then sleeps. Run it with a fixed count,
	// such as -benchtime 200000x, or the goroutines pile up.
	b.Run("shadow/async/new-100ms/unbounded", func(b *testing.B) {
		benchRead(b, benchStores(100*time.Millisecond), shadowread.WithMaxConcurrent[user](1<<30))
	})
	b.Run("shadow/async/new-100ms/sdk-metrics", func(b *testing.B) {
		benchRead(b, benchStores(100*time.Millisecond), shadowread.WithMeterProvider[user](sdkProvider(b)))
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
