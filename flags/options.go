package flags

import (
	"context"
	"log/slog"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// config holds the settings that options change. Its zero value is the
// default configuration apart from errs, which collects invalid options.
type config struct {
	fallback     cutover.Stage
	bound        func(ctx context.Context, requested cutover.Stage) cutover.Stage
	rateFlag     string
	rateFallback float64
	timeout      time.Duration
	evalCtx      func(ctx context.Context) openfeature.EvaluationContext
	providers    telemetry.Providers

	// now is the clock of the log limiters; nil means time.Now. Only
	// tests inside the package set it.
	now func() time.Time

	errs validate.Errors
}

// Option changes how [New] builds a [Resolver]. Options are immutable values
// made by the With functions of this package, so one may be shared by many
// calls to New and is safe for concurrent use; an invalid one, or the zero
// value, a nil Option, makes New fail. When two options set the same thing,
// the later one wins.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithFallback sets the stage used when the flag cannot be evaluated or
// holds a value that is not a stage: provider errors, a missing flag, an
// unknown value and a timeout. The default is [cutover.Off], which keeps
// every read and write on the old store. A value that is not one of the
// six stages makes [New] fail.
func WithFallback(s cutover.Stage) Option {
	return optionFunc(func(c *config) {
		if !s.Valid() {
			c.errs.Addf("fallback %v: %w", s, cutover.ErrUnknownStage)
			return
		}
		c.fallback = s
	})
}

// WithBound sets a function that may change the stage the flag asked for,
// as an expand-contract phase does when it forbids stages the data is not
// ready for. It runs on every [Resolver.Stage] call, on the caller's
// goroutine, after the flag (or the fallback) gave requested, so it must be
// fast and safe for concurrent use. When it returns a stage other than
// requested the resolution is counted and logged with reason "clamped"; when
// it returns a value that is not a stage, the fallback is used and counted
// as "error". Without it the requested stage is used as is. A nil f makes
// [New] fail.
func WithBound(f func(ctx context.Context, requested cutover.Stage) cutover.Stage) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.errs.Addf("bound: nil function")
			return
		}
		c.bound = f
	})
}

// WithSampleRateFlag names a numeric (float) flag that gives the share of
// shadow reads to compare, from 0 (none) to 1 (all), read by
// [Resolver.SampleRate]. fallback is used when that flag cannot be
// evaluated or holds a value outside [0, 1]. Without this option SampleRate
// returns 1 without evaluating anything. An empty flag key or a fallback
// outside [0, 1] (or NaN) makes [New] fail.
func WithSampleRateFlag(flag string, fallback float64) Option {
	return optionFunc(func(c *config) {
		if flag == "" {
			c.errs.Addf("sample rate flag: empty flag key")
			return
		}
		if !validRate(fallback) {
			c.errs.Addf("sample rate fallback %v: outside [0, 1]", fallback)
			return
		}
		c.rateFlag, c.rateFallback = flag, fallback
	})
}

// WithTimeout bounds each flag evaluation by d.
//
// With the default of 0 there is no extra bound: the evaluation runs on the
// caller's goroutine with the caller's context, costs nothing beyond the
// provider's own work, and takes as long as the provider takes (the caller's
// deadline, if any, is passed to the provider).
//
// With d > 0 every evaluation runs on a goroutine of its own under
// context.WithTimeout(ctx, d); if the provider has not answered after d, the
// fallback is used with reason "timeout" and the caller goes on. The price is
// paid on every call, not just slow ones: a goroutine, a channel, a timer and
// a derived context, some microseconds and about ten allocations, several
// times the cost of the evaluation itself on a provider that answers from
// memory (see BenchmarkResolverStageTimeout). A
// provider that ignores its context keeps that goroutine until it returns.
// Use it for providers that may block on the network; in-process providers
// (flagd in-process, file or memory providers) do not need it. A negative d
// makes [New] fail.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.errs.Addf("timeout %v: negative", d)
			return
		}
		c.timeout = d
	})
}

// WithEvaluationContext sets a function that builds the OpenFeature
// evaluation context of a request from its context, for example to set the
// targeting key from the user id the service keeps under its own context
// key. It runs on the caller's goroutine for every evaluation and must be
// safe for concurrent use. Without it the empty evaluation context is passed
// and no map is built per call; the SDK still merges the transaction context
// set with [openfeature.WithTransactionContext] or [ContextWithTargetingKey],
// and the client and API contexts. A nil f makes [New] fail.
func WithEvaluationContext(f func(ctx context.Context) openfeature.EvaluationContext) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.errs.Addf("evaluation context: nil function")
			return
		}
		c.evalCtx = f
	})
}

// WithMeterProvider sets where the resolution counters are created. Without
// it the global provider, otel.GetMeterProvider, is read when [New] runs. A
// nil mp makes New fail.
func WithMeterProvider(mp metric.MeterProvider) Option { return providers(telemetry.Meter(mp)) }

// WithLogger sets the logger for fallbacks and clamped stages. Without it
// slog.Default is read when [New] runs. A nil l makes New fail.
func WithLogger(l *slog.Logger) Option { return providers(telemetry.Logger(l)) }

func providers(s telemetry.Setting) Option {
	return optionFunc(func(c *config) { c.errs.Add(s(&c.providers)) })
}

// validRate reports whether v is a sample rate; NaN fails both comparisons.
func validRate(v float64) bool { return v >= 0 && v <= 1 }
