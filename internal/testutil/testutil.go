// Package testutil holds the fixtures that the tests of the root package,
// flags, dualwrite, shadowread and breaker share: a logger that drops
// everything, an open breaker, a stage source and a repair log that count
// their calls, and in-memory OpenFeature clients. It is imported by tests
// only.
package testutil

import (
	"context"
	"errors"
	"log/slog"
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

// Baseline is the time per operation of one benchmark of a run, such as the
// direct calls a benchmark of the library is compared with, kept so that the
// benchmarks after it in the same run report their cost against it. Its zero
// value has measured nothing, and Report then reports nothing. It is not
// safe for concurrent use; benchmarks of one run do not run at once.
type Baseline struct {
	name string
	ns   float64
}

// NewBaseline returns a baseline that benchmarks report against under name:
// as x-name, their time per operation divided by the baseline's, and as
// ns-over-name, the difference.
func NewBaseline(name string) *Baseline { return &Baseline{name: name} }

// Set keeps b's time per operation as the baseline. Call it after b's loop.
func (bl *Baseline) Set(b *testing.B) { bl.ns = nsPerOp(b) }

// Report reports b's time per operation against the baseline. Call it after
// b's loop.
func (bl *Baseline) Report(b *testing.B) {
	if bl.ns <= 0 {
		return
	}
	ns := nsPerOp(b)
	b.ReportMetric(ns/bl.ns, "x-"+bl.name)
	b.ReportMetric(ns-bl.ns, "ns-over-"+bl.name)
}

func nsPerOp(b *testing.B) float64 {
	if b.N == 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
