package trigger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
	"github.com/cutover-go/cutover/trigger"
)

// kv is the fake store of the benchmarks: a map behind a mutex, cheap and
// steady, so that the triggers' cost is not lost in the noise.
type kv struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *kv) put(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

func (s *kv) get(key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func benchMonitor(b *testing.B, opts ...trigger.Option) *trigger.Monitor {
	b.Helper()
	m, err := trigger.New("users-email", func(context.Context, trigger.Firing) (trigger.Result, error) { return trigger.Result{}, nil },
		append(opts, trigger.WithLogger(testutil.Quiet()))...)
	require.NoError(b, err)
	m.Evaluate(b.Context())
	return m
}

// BenchmarkObserved measures what the triggers cost per wrapped call: the
// same write or read through a wrapper with the monitor as its observer
// against one without (x-unobserved, ns-over-unobserved). With the global
// meter provider, which records nothing, the observer is also what makes
// the wrapper read the clock around each store call.
func BenchmarkObserved(b *testing.B) {
	ctx := context.Background()
	stores := [2]*kv{{m: map[string]string{"42": "Ada"}}, {m: map[string]string{"42": "Ada"}}}
	writer := func(b *testing.B, stage cutover.Stage, opts ...dualwrite.Option) func() error {
		w, err := dualwrite.New("users.save", cutover.Fixed(stage), new(testutil.Log),
			append(opts, dualwrite.WithLogger(testutil.Quiet()))...)
		require.NoError(b, err)
		return func() error {
			return w.Write(ctx, "42", func(_ context.Context, side cutover.Side) error {
				return stores[side].put("42", "Ada")
			})
		}
	}
	for _, stage := range []cutover.Stage{cutover.DualWrite, cutover.Live} {
		b.Run("write/"+stage.String(), func(b *testing.B) {
			testutil.Paired(b, "unobserved", writer(b, stage), writer(b, stage, dualwrite.WithObserver(benchMonitor(b))))
		})
	}
	// A monitor without a latency trigger needs no latency: the wrapper,
	// with no metrics recording either, reads no clock for it.
	b.Run("write/live/no-latency-rule", func(b *testing.B) {
		testutil.Paired(b, "unobserved", writer(b, cutover.Live),
			writer(b, cutover.Live, dualwrite.WithObserver(benchMonitor(b, trigger.WithRules(noLatency()...)))))
	})
	// With the OpenTelemetry SDK the wrapper times every store call for its
	// histogram already, and the observer reuses those durations: this is
	// the observer's own cost.
	b.Run("write/live/sdk-metrics", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		sdk := dualwrite.WithMeterProvider(mp)
		testutil.Paired(b, "unobserved", writer(b, cutover.Live, sdk), writer(b, cutover.Live, sdk, dualwrite.WithObserver(benchMonitor(b))))
	})
	b.Run("read/shadow/sync", func(b *testing.B) {
		reader := func(opts ...shadowread.Option[string]) func() error {
			r, err := shadowread.New[string]("users.get", cutover.Fixed(cutover.Shadow),
				append(opts, shadowread.WithSynchronous[string](), shadowread.WithLogger[string](testutil.Quiet()))...)
			require.NoError(b, err)
			return func() error {
				_, err := r.Read(ctx, "42", func(_ context.Context, side cutover.Side) (string, error) {
					return stores[side].get("42")
				})
				return err
			}
		}
		testutil.Paired(b, "unobserved", reader(), reader(shadowread.WithObserver[string](benchMonitor(b))))
	})
}

// BenchmarkObserveCall measures one observation alone, from all the
// benchmark's goroutines at once into the one current bucket: the
// contended case.
func BenchmarkObserveCall(b *testing.B) {
	m := benchMonitor(b)
	ctx := context.Background()
	c := cutover.CallEvent{Op: "users.save", Stage: cutover.Live, Side: cutover.New, Duration: 1000}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveCall(ctx, c)
		}
	})
}

// BenchmarkEvaluate measures one evaluation of the four default triggers,
// which Run makes once per interval.
func BenchmarkEvaluate(b *testing.B) {
	m := benchMonitor(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.Evaluate(ctx)
	}
}
