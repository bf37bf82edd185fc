package dualwrite_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/telemetry"
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

// write returns a function that writes one key through w to stores.
func write(w *dualwrite.Writer, stores [2]*kv) func() error {
	ctx := context.Background()
	return func() error {
		return w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
			return stores[side].Put(ctx, "42", "Ada")
		})
	}
}

// direct returns the floor of a write to the first n stores: the same
// store calls, made directly.
func direct(stores [2]*kv, n int) func() error {
	ctx := context.Background()
	return func() error {
		for _, s := range stores[:n] {
			if err := s.Put(ctx, "42", "Ada"); err != nil {
				return err
			}
		}
		return nil
	}
}

func sdkProvider(b *testing.B) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

// BenchmarkWrite measures each write against its floor, the direct calls
// of the stores it writes, called in alternating rounds in the same
// benchmark (x-direct, ns-over-direct, allocs-over-direct; see
// testutil.Paired), and a write with the OpenTelemetry SDK against the same
// write without it (x-nosdk, ns-over-nosdk):
//
//	go test -run '^$' -bench 'BenchmarkWrite$' ./dualwrite/
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stage  cutover.Stage
		stores int // the stores a write calls
		opts   func(*testing.B) []dualwrite.Option
	}{
		{"off", cutover.Off, 1, nil},
		{"dualwrite", cutover.DualWrite, 2, nil},
		{"dualwrite/concurrent", cutover.DualWrite, 2, func(*testing.B) []dualwrite.Option {
			return []dualwrite.Option{dualwrite.WithConcurrentWrites()}
		}},
		{"live", cutover.Live, 2, nil},
		{"complete", cutover.Complete, 1, nil},
		{"complete/breaker", cutover.Complete, 1, func(b *testing.B) []dualwrite.Option {
			br, err := breaker.New("users-db")
			require.NoError(b, err)
			return []dualwrite.Option{dualwrite.WithBreaker(br)}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var opts []dualwrite.Option
			if tc.opts != nil {
				opts = tc.opts(b)
			}
			stores := [2]*kv{newKV(), newKV()}
			testutil.Paired(b, "direct", direct(stores, tc.stores), write(benchWriter(b, tc.stage, opts...), stores))
		})
	}
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite} {
		b.Run(stage.String()+"/sdk-metrics", func(b *testing.B) {
			stores := [2]*kv{newKV(), newKV()}
			testutil.Paired(b, "nosdk", write(benchWriter(b, stage), stores),
				write(benchWriter(b, stage, dualwrite.WithMeterProvider(sdkProvider(b))), stores))
		})
	}
	// The floor of the SDK's cost: a write without the SDK plus, by hand,
	// the records a write makes (one per store call) on the same histogram
	// with precomputed attribute sets. What the library adds beyond them
	// is ns-over-sdk-floor.
	b.Run("dualwrite/sdk-metrics/floor", func(b *testing.B) {
		stores := [2]*kv{newKV(), newKV()}
		mp := sdkProvider(b)
		nosdk := write(benchWriter(b, cutover.DualWrite), stores)
		records := sdkRecords(b, mp, "authoritative", "secondary")
		floor := func() error {
			err := nosdk()
			records()
			return err
		}
		testutil.Paired(b, "sdk-floor", floor, write(benchWriter(b, cutover.DualWrite, dualwrite.WithMeterProvider(mp)), stores))
	})
	// What the SDK costs a write with the writer's attribute sets, built
	// once in New, against what the same records cost with the sets built
	// per call, as a writer that passes metric.WithAttributes does
	// (x-per-call-sets-cost below 0.5: precomputing halves it or better).
	b.Run("dualwrite/sdk-metrics/per-call-sets", func(b *testing.B) {
		stores := [2]*kv{newKV(), newKV()}
		mp := sdkProvider(b)
		nosdk := write(benchWriter(b, cutover.DualWrite), stores)
		records := sdkPerCallRecords(b, mp, "authoritative", "secondary")
		perCall := func() error {
			err := nosdk()
			records()
			return err
		}
		testutil.Costs(b, "per-call-sets", nosdk,
			write(benchWriter(b, cutover.DualWrite, dualwrite.WithMeterProvider(mp)), stores), perCall)
	})
}

// sdkPerCallRecords returns a function that records what [sdkRecords]
// does, with the attributes passed per call, so that the SDK builds and
// deduplicates a set for each record.
func sdkPerCallRecords(b *testing.B, mp *sdkmetric.MeterProvider, oldRole, newRole string) func() {
	h, err := mp.Meter("github.com/cutover-go/cutover/dualwrite").Float64Histogram("cutover.dualwrite.duration",
		metric.WithDescription("Duration of writes to each store, by role and outcome."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...))
	require.NoError(b, err)
	ctx := context.Background()
	record := func(store, role string) {
		h.Record(ctx, 0.0001, metric.WithAttributes(
			telemetry.KeyOperation.String("users.save"), telemetry.KeyStore.String(store),
			telemetry.KeyRole.String(role), telemetry.KeyOutcome.String("ok")))
	}
	return func() {
		record("old", oldRole)
		record("new", newRole)
	}
}

// sdkRecords returns a function that records, on the writer's histogram
// of mp, one call of the old store in the first role and one of the new
// store in the second, each with outcome ok and an attribute set built
// once here: what the SDK costs a write at least.
func sdkRecords(b *testing.B, mp *sdkmetric.MeterProvider, oldRole, newRole string) func() {
	h, err := mp.Meter("github.com/cutover-go/cutover/dualwrite").Float64Histogram("cutover.dualwrite.duration",
		metric.WithDescription("Duration of writes to each store, by role and outcome."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...))
	require.NoError(b, err)
	opt := func(store, role string) []metric.RecordOption {
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			telemetry.KeyOperation.String("users.save"), telemetry.KeyStore.String(store),
			telemetry.KeyRole.String(role), telemetry.KeyOutcome.String("ok")))}
	}
	oldOpts, newOpts := opt("old", oldRole), opt("new", newRole)
	ctx := context.Background()
	return func() {
		h.Record(ctx, 0.0001, oldOpts...)
		h.Record(ctx, 0.0001, newOpts...)
	}
}

func BenchmarkBreaker(b *testing.B) {
	store := newKV()
	ctx := context.Background()
	put := func(ctx context.Context) error { return store.Put(ctx, "42", "Ada") }
	br, err := breaker.New("users-db")
	require.NoError(b, err)
	testutil.Paired(b, "direct", func() error { return put(ctx) }, func() error { return br.Do(ctx, put) })
}
