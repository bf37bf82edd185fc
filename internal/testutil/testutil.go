// Package testutil holds the fixtures that the tests of the root package,
// flags, dualwrite, shadowread, breaker, trigger and expandcontract share: a
// logger that drops everything, breakers, a stage source and a repair log
// that count their calls, a fake clock, an observer that keeps its events,
// in-memory OpenFeature clients, and [Paired], which measures a benchmark
// against its floor. It is imported by tests only.
package testutil

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
)

// Quiet returns a logger that drops every record, for code under test whose
// log lines the test does not look at.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// OpenBreaker returns a breaker named "users-db" that one failure opened and
// that stays open for an hour, so every call it guards is refused for the
// rest of the test. It logs nowhere and reports to the global meter
// provider, which records nothing unless a test installs one.
func OpenBreaker(tb testing.TB) *breaker.Breaker {
	tb.Helper()
	b := TripOnce(tb, time.Hour)
	_ = b.Do(context.Background(), func(context.Context) error { return errors.New("trip") })
	require.Equal(tb, breaker.Open, b.State())
	return b
}

// TripOnce returns a closed breaker named "users-db" that one failure opens
// and that lets a probe through once it has been open for timeout. It logs
// nowhere and reports to the global meter provider.
func TripOnce(tb testing.TB, timeout time.Duration) *breaker.Breaker {
	tb.Helper()
	b, err := breaker.New("users-db", breaker.WithLogger(Quiet()),
		breaker.WithSettings(breaker.Settings{
			ReadyToTrip: func(c breaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
			Timeout:     timeout,
		}))
	require.NoError(tb, err)
	return b
}

// Source is a [cutover.StageSource] that always gives one stage and counts
// how often it was asked. Its zero value gives [cutover.Off]. It is safe
// for concurrent use.
type Source struct {
	stage cutover.Stage
	calls atomic.Int64
}

// NewSource returns a source that gives s, which need not be a valid stage.
func NewSource(s cutover.Stage) *Source { return &Source{stage: s} }

// Stage returns the stage given to [NewSource] and counts the call.
func (s *Source) Stage(context.Context) cutover.Stage {
	s.calls.Add(1)
	return s.stage
}

// Calls returns how many times Stage was called.
func (s *Source) Calls() int64 { return s.calls.Load() }

// Log is a [cutover.RepairLog] that accepts every entry, keeps none and
// counts them. Its zero value is ready to use; it is safe for concurrent
// use.
type Log struct{ calls atomic.Int64 }

// Record counts r and returns nil.
func (l *Log) Record(context.Context, cutover.Repair) error {
	l.calls.Add(1)
	return nil
}

// Calls returns how many entries were recorded.
func (l *Log) Calls() int64 { return l.calls.Load() }

// Clock is a fake clock that moves only when told to. Create one with
// [NewClock]; the zero value stands at the zero time. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Events is a [cutover.Observer] that keeps every event it is told of, in
// order. Its zero value is ready to use; it is safe for concurrent use, and
// its fields may be read once the calls that feed it have returned.
type Events struct {
	mu          sync.Mutex
	Calls       []cutover.CallEvent
	Fallbacks   []cutover.FallbackEvent
	Comparisons []cutover.ComparisonEvent
}

// ObserveCall keeps c.
func (e *Events) ObserveCall(_ context.Context, c cutover.CallEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Calls = append(e.Calls, c)
}

// ObserveFallback keeps f.
func (e *Events) ObserveFallback(_ context.Context, f cutover.FallbackEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Fallbacks = append(e.Fallbacks, f)
}

// ObserveComparison keeps c.
func (e *Events) ObserveComparison(_ context.Context, c cutover.ComparisonEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.Comparisons = append(e.Comparisons, c)
}

// StaticFlag returns an enabled in-memory flag that always gives value.
func StaticFlag(value any) memprovider.InMemoryFlag {
	return memprovider.InMemoryFlag{State: memprovider.Enabled, DefaultVariant: "v", Variants: map[string]any{"v": value}}
}

// Client registers p with an OpenFeature API of its own, not the global
// one, and returns a client of it; the API is shut down when tb ends.
func Client(tb testing.TB, p openfeature.FeatureProvider) *openfeature.Client {
	tb.Helper()
	api := isolated.NewAPI()
	tb.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	require.NoError(tb, api.SetProviderAndWait(context.Background(), p))
	return api.NewClient()
}

// MemClient returns a client, as [Client] does, of an in-memory provider
// serving flags.
func MemClient(tb testing.TB, flags map[string]memprovider.InMemoryFlag) *openfeature.Client {
	tb.Helper()
	return Client(tb, memprovider.NewInMemoryProvider(flags))
}

// Costs compares what two ways of doing the same extra work cost on top
// of base, the work without it: op is base plus the code under test, ref
// is base plus the other way (such as records with attribute sets built
// per call). It calls the three in alternating rounds, as [Paired] does,
// and reports op's cost over base (ns-over-base), ref's (name-ns-over-base)
// and their ratio (x-name-cost: below 1 means op's way is cheaper). A call
// that fails fails the benchmark.
func Costs(b *testing.B, name string, base, op, ref func() error) {
	b.Helper()
	spent := timeRounds(b, base, op, ref)
	baseNs := float64(spent[0].Nanoseconds()) / float64(b.N)
	opNs := float64(spent[1].Nanoseconds())/float64(b.N) - baseNs
	refNs := float64(spent[2].Nanoseconds())/float64(b.N) - baseNs
	b.ReportMetric(opNs, "ns-over-base")
	b.ReportMetric(refNs, name+"-ns-over-base")
	b.ReportMetric(opNs/refNs, "x-"+name+"-cost")
}

// timeRounds calls each of fns b.N times, in rounds of a few calls each in
// turns, each function first in one round in len(fns), and returns the
// time each took in all.
func timeRounds(b *testing.B, fns ...func() error) []time.Duration {
	b.Helper()
	const round = 128
	spent := make([]time.Duration, len(fns))
	b.ResetTimer()
	for done, r := 0, 0; done < b.N; r++ {
		n := min(round, b.N-done)
		for k := range fns {
			i := (r + k) % len(fns)
			start := time.Now()
			for range n {
				if err := fns[i](); err != nil {
					b.Fatalf("call %d: %v", done, err)
				}
			}
			spent[i] += time.Since(start)
		}
		done += n
	}
	b.StopTimer()
	return spent
}

// Paired measures op against floor, the same work done without the code
// under test (such as the direct calls of the stores), in one benchmark:
// it calls them in alternating rounds, so that a machine whose load changes
// during the run slows both alike. It reports op's time per call
// (ns/call), the floor's (name-ns/call), their ratio (x-name) and
// difference (ns-over-name), and op's allocations per call (allocs/call)
// and beyond the floor's (allocs-over-name). The ns/op that package testing
// reports is that of one op and one floor call together. A call that fails
// fails the benchmark.
func Paired(b *testing.B, name string, floor, op func() error) {
	b.Helper()
	fns := [2]func() error{floor, op}
	spent := timeRounds(b, fns[:]...)
	floorNs := float64(spent[0].Nanoseconds()) / float64(b.N)
	opNs := float64(spent[1].Nanoseconds()) / float64(b.N)
	b.ReportMetric(opNs, "ns/call")
	b.ReportMetric(floorNs, name+"-ns/call")
	b.ReportMetric(opNs/floorNs, "x-"+name)
	b.ReportMetric(opNs-floorNs, "ns-over-"+name)
	allocs := [2]float64{}
	for i, f := range fns {
		allocs[i] = testing.AllocsPerRun(100, func() { _ = f() })
	}
	b.ReportMetric(allocs[1], "allocs/call")
	b.ReportMetric(allocs[1]-allocs[0], "allocs-over-"+name)
}
