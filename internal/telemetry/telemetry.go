// Package telemetry holds the plumbing that every cutover package shares for
// OpenTelemetry and log/slog: provider defaults, attribute names, and a rate
// limiter for log lines that would otherwise repeat once per request.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/validate"
)

// Attribute keys used on every metric and span of the library.
const (
	KeyOperation = attribute.Key("cutover.operation") // "users.save"
	KeyStore     = attribute.Key("cutover.store")     // "old" or "new"
	KeyRole      = attribute.Key("cutover.role")      // "authoritative", "secondary", "shadow", "fallback"
	KeyOutcome   = attribute.Key("cutover.outcome")   // "ok", "error", "timeout", "canceled", "panic", "refused"
	KeyStage     = attribute.Key("cutover.stage")     // "shadow"
	KeyFlag      = attribute.Key("cutover.flag")      // flag key
	KeyReason    = attribute.Key("cutover.reason")    // why a fallback, drop or resolution happened
	KeyBreaker   = attribute.Key("cutover.breaker")   // breaker name
	KeyMigration = attribute.Key("cutover.migration") // expand-contract migration name
)

// Attribute keys of the spans of the expand-contract packages.
const (
	KeyPhaseFrom = attribute.Key("cutover.phase.from") // a migration's phase before a move
	KeyPhaseTo   = attribute.Key("cutover.phase.to")   // the phase a move asks for
	KeyStatement = attribute.Key("cutover.statement")  // a statement, abbreviated by sqltext.Abbreviate
	KeyRows      = attribute.Key("cutover.rows")       // rows copied or compared
)

// Providers are the telemetry providers of one component. A nil field means
// the global one: otel.GetMeterProvider, otel.GetTracerProvider or
// slog.Default, read when [Providers.Resolve] runs, so the zero value means
// the global ones. A Providers is a plain value, safe for concurrent use
// when no one changes it.
type Providers struct {
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
	Logger *slog.Logger
}

// Setting sets one provider of a [Providers] for the WithMeterProvider,
// WithTracerProvider and WithLogger options of the public packages, or
// returns the error that makes their constructor fail. The zero value, a
// nil Setting, must not be called. A Setting is safe for concurrent use;
// the Providers it changes is not.
type Setting func(*Providers) error

// Meter returns the setting of mp as the meter provider. A nil mp, or a nil
// pointer in the interface, is an error naming WithMeterProvider.
func Meter(mp metric.MeterProvider) Setting {
	return set(mp, "WithMeterProvider: nil meter provider", func(p *Providers) { p.Meter = mp })
}

// Tracer returns the setting of tp as the tracer provider. A nil tp, or a
// nil pointer in the interface, is an error naming WithTracerProvider.
func Tracer(tp trace.TracerProvider) Setting {
	return set(tp, "WithTracerProvider: nil tracer provider", func(p *Providers) { p.Tracer = tp })
}

// Logger returns the setting of l as the logger. A nil l is an error naming
// WithLogger.
func Logger(l *slog.Logger) Setting {
	return set(l, "WithLogger: nil logger", func(p *Providers) { p.Logger = l })
}

// set returns the setting that applies to the Providers, or the error what
// if v is nil.
func set(v any, what string, apply func(*Providers)) Setting {
	return func(p *Providers) error {
		if validate.Nil(v) {
			return errors.New(what)
		}
		apply(p)
		return nil
	}
}

// Resolve returns a meter and tracer named scope, and the logger, with nil
// providers replaced by the global ones.
func (p Providers) Resolve(scope string) (metric.Meter, trace.Tracer, *slog.Logger) {
	mp, tp, lg := p.Meter, p.Tracer, p.Logger
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if lg == nil {
		lg = slog.Default()
	}
	return mp.Meter(scope), tp.Tracer(scope), lg
}

// NoSpan is the span that does nothing, which [Child] returns for work
// that is not traced. It is safe for concurrent use.
var NoSpan = trace.SpanFromContext(context.Background())

// Child starts a span named name, with opt, under the span that ctx
// carries, if that one is recording. Otherwise it returns ctx unchanged and
// [NoSpan], and allocates nothing: work that is not traced, such as the
// batches of a backfill run without a tracer provider, pays one look-up of
// the context for its spans. A nil opt is not allowed; pass
// trace.WithAttributes() for none.
func Child(ctx context.Context, t trace.Tracer, name string, opt trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, NoSpan
	}
	return t.Start(ctx, name, opt)
}

// EndSpan sets the attribute cutover.outcome of span to outcome, and attrs;
// records err, if it is not nil, as an event with the status Error and the
// error's text; and ends span. On a span that is not recording it only
// ends it, but the caller has built attrs already: on a path that runs
// often, check span.IsRecording first.
func EndSpan(span trace.Span, outcome string, err error, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(KeyOutcome.String(outcome))
		span.SetAttributes(attrs...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// DurationBuckets are histogram bucket bounds, in seconds, suited to store
// calls: from 100 µs to 10 s.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Limiter lets through at most Burst events at once and then one every
// Every, and counts what it held back. The zero value lets nothing through;
// use [NewLimiter]. It is safe for concurrent use.
type Limiter struct {
	every time.Duration
	burst float64
	now   func() time.Time

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
}

// NewLimiter returns a limiter that allows burst events at once and then one
// every every. A nil now means time.Now.
func NewLimiter(every time.Duration, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{every: every, burst: float64(burst), now: now, tokens: float64(burst), last: now()}
}

// Allow reports whether one more event may go through now, and if so how
// many were held back since the last one that went through.
func (l *Limiter) Allow() (ok bool, suppressed int64) {
	if l == nil || l.now == nil {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.every > 0 {
		l.tokens += float64(now.Sub(l.last)) / float64(l.every)
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
	} else {
		l.tokens = l.burst
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Outcome classifies how one store call ended: it is cutover.Outcome, so
// that an observer's events carry the outcome the metrics record. The zero
// value is [OK]. It is a plain value, safe for concurrent use.
type Outcome = cutover.Outcome

// The outcomes of a store call, as the cutover.outcome attribute says them.
const (
	OK          = cutover.CallOK       // returned no error
	Error       = cutover.CallError    // returned an error
	Timeout     = cutover.CallTimeout  // the library's own timeout for the call ran out
	Canceled    = cutover.CallCanceled // the caller's context was done
	Panic       = cutover.CallPanic    // panicked; the panic was recovered
	Refused     = cutover.CallRefused  // not called: the breaker was open
	numOutcomes = Refused + 1
)

// Role says why a store was called: it is cutover.Role. The zero value is
// [Authoritative]. It is a plain value, safe for concurrent use.
type Role = cutover.Role

// The roles of a store call, as the cutover.role attribute says them.
const (
	Authoritative = cutover.RoleAuthoritative // its answer is the caller's
	Secondary     = cutover.RoleSecondary     // written after the authoritative store
	Shadow        = cutover.RoleShadow        // read to compare with the authoritative answer
	Fallback      = cutover.RoleFallback      // called because the authoritative new store failed
	numRoles      = Fallback + 1
)

// Calls records the duration of store calls of one operation in a histogram,
// with every attribute set computed once so that recording allocates nothing.
// The zero value is not usable; create one with [NewCalls]. It is safe for
// concurrent use.
type Calls struct {
	hist metric.Float64Histogram
	opts [2][numRoles][numOutcomes][]metric.RecordOption
}

// NewCalls creates the histogram name on meter for the operation op.
func NewCalls(meter metric.Meter, name, description, op string) (*Calls, error) {
	h, err := meter.Float64Histogram(name,
		metric.WithDescription(description),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(DurationBuckets...))
	if err != nil {
		return nil, err
	}
	c := &Calls{hist: h}
	for side, store := range [2]string{"old", "new"} {
		for r := range numRoles {
			for o := range numOutcomes {
				set := attribute.NewSet(KeyOperation.String(op), KeyStore.String(store),
					KeyRole.String(r.String()), KeyOutcome.String(o.String()))
				c.opts[side][r][o] = []metric.RecordOption{metric.WithAttributeSet(set)}
			}
		}
	}
	return c, nil
}

// Enabled reports whether recording would do anything, so that callers can
// skip reading the clock when no meter provider is installed.
func (c *Calls) Enabled(ctx context.Context) bool { return c.hist.Enabled(ctx) }

// Record adds one call of the store side (0 old, 1 new) in role r that ended
// with o after d.
func (c *Calls) Record(ctx context.Context, side uint8, r Role, o Outcome, d time.Duration) {
	c.hist.Record(ctx, d.Seconds(), c.opts[side&1][r][o]...)
}

// Enum is a small enumeration of metric attribute values: the values 0, 1,
// ... up to a count, each with the attribute value its String method returns.
// It is a type constraint, so it has no zero value; its types are plain
// values, safe for concurrent use.
type Enum interface {
	~uint8
	String() string
}

// Counter is an Int64Counter with one precomputed attribute set per value of
// the enumeration E, so that adding allocates nothing and a value of
// another enumeration does not compile. The zero value is not usable;
// create one with [NewCounter]. It is safe for concurrent use.
type Counter[E Enum] struct {
	c    metric.Int64Counter
	opts [][]metric.AddOption
}

// NewCounter creates the counter name on meter. It precomputes, for each
// value v of E below n, the attribute set base plus key=v.String().
func NewCounter[E Enum](meter metric.Meter, name, description, unit string, base []attribute.KeyValue, key attribute.Key, n E) (*Counter[E], error) {
	c, err := meter.Int64Counter(name, metric.WithDescription(description), metric.WithUnit(unit))
	if err != nil {
		return nil, err
	}
	ctr := &Counter[E]{c: c, opts: make([][]metric.AddOption, n)}
	for v := range n {
		kvs := append(slices.Clone(base), key.String(v.String()))
		ctr.opts[v] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
	}
	return ctr, nil
}

// Add adds one to the count of v.
func (c *Counter[E]) Add(ctx context.Context, v E) { c.c.Add(ctx, 1, c.opts[v]...) }
