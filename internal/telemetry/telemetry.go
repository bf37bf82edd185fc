// Package telemetry holds the plumbing that every cutover package shares for
// OpenTelemetry and log/slog: provider defaults, attribute names, and a rate
// limiter for log lines that would otherwise repeat once per request.
package telemetry

import (
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
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
)

// Providers are the telemetry providers of one component. A nil field means
// the global one: otel.GetMeterProvider, otel.GetTracerProvider or
// slog.Default, read when [Providers.Resolve] runs.
type Providers struct {
	Meter  metric.MeterProvider
	Tracer trace.TracerProvider
	Logger *slog.Logger
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
