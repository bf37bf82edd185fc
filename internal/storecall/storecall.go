// Package storecall makes one call to one store on behalf of the dualwrite
// and shadowread wrappers: through the new store's breaker, in a child span,
// with panics recovered unless [Propagates] lets them go on, and with its
// latency and outcome recorded. It also holds the rule both wrappers follow when
// the authoritative new store fails: [Recorder.Fallback].
package storecall

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// Func is the user's function for one store, called with the side it must
// act on. Keeping the function behind a type parameter lets both shapes
// below be called without wrapping them in a closure. The zero value, a nil
// Func, must not be called; the wrappers refuse nil functions first.
// Implementations must be safe for concurrent use: a concurrent dual write
// calls one from two goroutines at once.
type Func[R any] interface {
	Call(ctx context.Context, side cutover.Side) (R, error)
}

// ErrFunc adapts a function returning only an error. The zero value, a nil
// function, must not be called. It is as safe for concurrent use as the
// function.
type ErrFunc func(ctx context.Context, side cutover.Side) error

// Call calls f.
func (f ErrFunc) Call(ctx context.Context, side cutover.Side) (struct{}, error) {
	return struct{}{}, f(ctx, side)
}

// ValueFunc adapts a function returning a value and an error. The zero
// value, a nil function, must not be called. It is as safe for concurrent
// use as the function.
type ValueFunc[R any] func(ctx context.Context, side cutover.Side) (R, error)

// Call calls f.
func (f ValueFunc[R]) Call(ctx context.Context, side cutover.Side) (R, error) { return f(ctx, side) }

// Recorder holds what every call of one operation shares. The zero value is
// not usable; create one with [NewRecorder]. It is safe for concurrent use.
type Recorder struct {
	Calls   *telemetry.Calls
	Tracer  trace.Tracer
	Breaker *breaker.Breaker // guards the new store; may be nil
	// Observer, if not nil, is told of every call, fallback and
	// comparison. Set it with [Recorder.SetObserver], before the first
	// call and never after.
	Observer cutover.Observer
	// timeObserver is set when the observer uses the calls' latencies.
	timeObserver bool
	op           string
	spans        [2]string
}

// NewRecorder returns a recorder for the operation op.
func NewRecorder(op string, calls *telemetry.Calls, tracer trace.Tracer, b *breaker.Breaker) *Recorder {
	return &Recorder{Calls: calls, Tracer: tracer, Breaker: b, op: op,
		spans: [2]string{op + " old", op + " new"}}
}

// SetObserver makes o the recorder's observer. Calls are timed for it
// unless it is a [cutover.LatencyObserver] that uses no latency. Call it
// before the first call and never after.
func (r *Recorder) SetObserver(o cutover.Observer) {
	r.Observer = o
	r.timeObserver = o != nil
	if lo, ok := o.(cutover.LatencyObserver); ok {
		r.timeObserver = lo.ObservesLatency()
	}
}

// Start starts a span named name under the span that ctx carries, if that
// one is recording. Otherwise it returns ctx unchanged and a span that does
// nothing: requests that are not traced pay nothing for spans.
func (r *Recorder) Start(ctx context.Context, name string, opt trace.SpanStartOption) (context.Context, trace.Span) {
	return telemetry.Child(ctx, r.Tracer, name, opt)
}

// Call makes one call of f for side in role, in stage, on ctx. caller is
// the context whose end means the caller left; for a detached call it is a
// context that is never done. With traced set, the call gets a child span if
// ctx carries a recording span; a caller that knows it carries none passes
// false and saves the look-up.
//
// A call to the new store first asks the breaker, if any; a refused call
// returns an error wrapping breaker.ErrOpen. A panic of a call for which
// [Propagates] reports true goes on to the caller unchanged, as it would
// without the library, once the breaker's ticket is done with a failure,
// the call is counted with outcome panic and its span is ended. Any other
// call's panic is recovered and comes back as a *cutover.PanicError, with
// outcome panic, and counts against the breaker like any failure.
func Call[R any, F Func[R]](ctx, caller context.Context, r *Recorder, stage cutover.Stage, side cutover.Side, role telemetry.Role, traced bool, f F) (v R, o telemetry.Outcome, err error) {
	var ticket breaker.Ticket
	guarded := side == cutover.New && r.Breaker != nil
	if guarded {
		if ticket, err = r.Breaker.Allow(); err != nil {
			r.Calls.Record(ctx, uint8(side), role, telemetry.Refused, 0)
			if r.Observer != nil {
				r.observe(ctx, stage, side, role, telemetry.Refused, 0)
			}
			return v, telemetry.Refused, err
		}
	}
	var span trace.Span
	if traced && trace.SpanFromContext(ctx).IsRecording() {
		ctx, span = r.Tracer.Start(ctx, r.spans[side&1])
	}
	timed := r.timeObserver || r.Calls.Enabled(ctx) // an observer may need the latency too
	var start time.Duration
	if timed {
		start = since() // the monotonic clock alone
	}
	switch {
	case !Propagates(stage, side, role):
		v, err = protect(ctx, side, f)
	case guarded || span != nil || timed || r.Observer != nil:
		v, err = guard(ctx, caller, r, ticket, span, stage, side, role, timed, start, f)
	default:
		v, err = call(ctx, side, f) // a panic leaves nothing to complete
	}
	o = Classify(ctx, caller, err)
	r.end(ctx, caller, ticket, span, stage, side, role, timed, start, o, err)
	return v, o, err
}

// guard calls f, whose panic goes on to the caller, and reports the call as
// panicked if it does not return: to the breaker, the histogram and the
// span.
func guard[R any, F Func[R]](ctx, caller context.Context, r *Recorder, ticket breaker.Ticket, span trace.Span, stage cutover.Stage, side cutover.Side, role telemetry.Role, timed bool, start time.Duration, f F) (v R, err error) {
	returned := false
	defer func() {
		if !returned { // panicking, or runtime.Goexit: the panic goes on
			r.end(ctx, caller, ticket, span, stage, side, role, timed, start, telemetry.Panic, errPropagated)
		}
	}()
	v, err = call(ctx, side, f)
	returned = true
	return v, err
}

// errPropagated is what the breaker, the span and the metrics learn of a
// panic that Call lets go on to the caller.
var errPropagated = &cutover.PanicError{Value: "storecall: the call panicked; the panic went on to the caller"}

// end reports how a call ended: to the breaker, the histogram, the
// observer and the span.
func (r *Recorder) end(ctx, caller context.Context, ticket breaker.Ticket, span trace.Span, stage cutover.Stage, side cutover.Side, role telemetry.Role, timed bool, start time.Duration, o telemetry.Outcome, err error) {
	ticket.Done(caller, err)
	var d time.Duration
	if timed {
		d = since() - start
		r.Calls.Record(ctx, uint8(side), role, o, d)
	}
	if r.Observer != nil {
		r.observe(ctx, stage, side, role, o, d)
	}
	if span != nil {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, o.String())
		}
		span.End()
	}
}

// Propagates reports whether a panic of the call of side in role, in stage,
// goes on to the caller: only that of the authoritative call of the old
// store (in off, dualwrite and shadow) or of the new store in complete.
// There the store is the one the caller's request would use without the
// library, and the library leaves its panics alone. Every other call's
// panic, the new store's before complete included, is a failure: it is
// recovered into a *cutover.PanicError, falls back where failures fall back
// and is recorded for repair.
func Propagates(stage cutover.Stage, side cutover.Side, role telemetry.Role) bool {
	return role == telemetry.Authoritative && (side == cutover.Old || stage >= cutover.Complete)
}

func protect[R any, F Func[R]](ctx context.Context, side cutover.Side, f F) (v R, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &cutover.PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return call(ctx, side, f)
}

// call calls f. A ValueFunc is called as the function it is rather than
// through its Call method, which would copy a large result once more.
func call[R any, F Func[R]](ctx context.Context, side cutover.Side, f F) (R, error) {
	if vf, ok := any(f).(ValueFunc[R]); ok {
		return vf(ctx, side)
	}
	return f.Call(ctx, side)
}

// Classify says how a call on ctx ended with err, where caller is the
// context whose end means the caller left.
func Classify(ctx, caller context.Context, err error) telemetry.Outcome {
	switch {
	case err == nil:
		return telemetry.OK
	case errors.Is(err, breaker.ErrOpen):
		return telemetry.Refused
	case isPanic(err):
		return telemetry.Panic
	case caller.Err() != nil && errors.Is(err, caller.Err()):
		return telemetry.Canceled
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return telemetry.Timeout
	}
	return telemetry.Error
}

func isPanic(err error) bool {
	var pe *cutover.PanicError
	return errors.As(err, &pe)
}

// Fallback is the fallback rule of dualwrite and shadowread. In live and
// rampdown the new store is authoritative and the old one is still fully
// written, so an authoritative call to the new store that ended with o and
// err is answered by the old store instead when the breaker refused it, or
// when it failed with an error that counts against the store: not the
// caller's own cancellation, and a failure under the breaker's
// Settings.IsFailure if there is a breaker. It reports whether to fall back
// and the reason to count the fallback under. In every other stage, and for
// a call that succeeded, it reports false: in complete there is no fallback.
func (r *Recorder) Fallback(ctx context.Context, stage cutover.Stage, o telemetry.Outcome, err error) (FallbackReason, bool) {
	if err == nil {
		return 0, false // small enough to inline: a call that succeeded pays nothing
	}
	return r.fallback(ctx, stage, o, err)
}

func (r *Recorder) fallback(ctx context.Context, stage cutover.Stage, o telemetry.Outcome, err error) (FallbackReason, bool) {
	if stage != cutover.Live && stage != cutover.Rampdown {
		return 0, false
	}
	switch o {
	case telemetry.Refused:
		return FallbackRefused, true
	case telemetry.Canceled:
		return 0, false
	}
	if r.Breaker != nil && !r.Breaker.IsFailure(ctx, err) {
		return 0, false
	}
	return FallbackFailed, true
}

// FallbackReason says why a call fell back to the old store; it is
// cutover.FallbackReason, the reason attribute of the dualwrite and
// shadowread fallback counters. The zero value is [FallbackRefused]. It is
// a plain value, safe for concurrent use.
type FallbackReason = cutover.FallbackReason

// The reasons of a fallback.
const (
	FallbackRefused    = cutover.FallbackRefused // the new store's breaker refused the call
	FallbackFailed     = cutover.FallbackFailed  // the call to the new store failed
	NumFallbackReasons = FallbackFailed + 1      // the number of reasons
)

// observe tells the observer of one call.
func (r *Recorder) observe(ctx context.Context, stage cutover.Stage, side cutover.Side, role telemetry.Role, o telemetry.Outcome, d time.Duration) {
	r.Observer.ObserveCall(ctx, cutover.CallEvent{Op: r.op, Stage: stage, Side: side, Role: role, Outcome: o, Duration: d})
}

// FellBack tells the observer, if any, that the old store answered in
// place of the new one for the reason why.
func (r *Recorder) FellBack(ctx context.Context, stage cutover.Stage, why FallbackReason) {
	if r.Observer != nil {
		r.Observer.ObserveFallback(ctx, cutover.FallbackEvent{Op: r.op, Stage: stage, Reason: why})
	}
}

// Compared tells the observer, if any, how a shadow comparison ended.
func (r *Recorder) Compared(ctx context.Context, stage cutover.Stage, result cutover.ComparisonResult) {
	if r.Observer != nil {
		r.Observer.ObserveComparison(ctx, cutover.ComparisonEvent{Op: r.op, Stage: stage, Result: result})
	}
}
