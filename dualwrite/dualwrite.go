// Package dualwrite writes to the old and the new store in the order the
// stage of each request gives, so that both stay complete while a migration
// is under way and either can serve reads.
//
// In dualwrite and shadow the old store is written first and is
// authoritative; in live and rampdown the new one is. The authoritative
// write's failure is returned and the secondary is not attempted. If the
// caller's context was canceled or ran out during the authoritative write,
// its outcome is unknown (it may have committed), so its key is recorded
// too, with reason cutover.Ambiguous, for repair of the secondary; the
// caller still gets the error. A failed, timed out, panicking or skipped
// secondary write never fails the request by default and is never lost:
// its key goes to the repair log, a metric and a log line, and a repairer
// later copies the authoritative row over.
//
// When the new store is authoritative and fails, or its breaker refuses the
// call, the write goes to the old store instead (still complete in live and
// rampdown) and the key is recorded for repair of the new one.
//
// A panic of a store call is a failure like any other, recovered into a
// *cutover.PanicError, except where the store is the one the caller would
// write without the library: the old store while it is authoritative (off,
// dualwrite, shadow) and the new store in complete. There the panic goes on
// to the caller unchanged, after the new store's breaker has counted it.
// So a secondary write that panics is recorded like one that failed, and
// in live and rampdown a panicking new store falls back to the old one:
// no store's panic reaches the caller before complete.
//
// In off and complete only one store is written, and a [Writer] is a
// pass-through that adds no span. In the other stages a write gets a span,
// with a child per store call, when the caller's context carries a
// recording span; requests that are not traced pay nothing for tracing.
package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/hlc"
	"github.com/cutover-go/cutover/internal/storecall"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// Policy says what a failed secondary write does to the caller. The zero
// value is [Continue]. A Policy is a plain value, safe for concurrent use.
type Policy uint8

const (
	// Continue records the key for repair and lets the call succeed. It is
	// the default: the authoritative store has the write.
	Continue Policy = iota
	// Fail records the key for repair and returns a *SecondaryError, for
	// callers that would rather retry than leave the stores apart.
	Fail
)

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options, and by [ErrNilFunc]. Each such error names what was
// wrong, as in "dualwrite: invalid input: nil stage source".
var ErrInvalidInput = errors.New("dualwrite: invalid input")

// ErrNilFunc is returned by [Writer.Write] and [Call] when the write
// function is nil; no store is called. It wraps [ErrInvalidInput].
var ErrNilFunc = fmt.Errorf("%w: nil write function", ErrInvalidInput)

// DefaultTimeout bounds a secondary write when no [WithTimeout] is given.
const DefaultTimeout = 2 * time.Second

// DefaultRecordTimeout bounds the recording of one key in the repair log
// when no [WithRecordTimeout] is given.
const DefaultRecordTimeout = 5 * time.Second

// SecondaryError reports a secondary write that failed, or a repair-log
// entry that could not be recorded. The authoritative write succeeded unless
// Reason is cutover.AuthoritativeFailed, or cutover.Ambiguous (its outcome
// is unknown). The zero value describes no write;
// the library returns only filled ones and does not change them afterwards,
// so one is safe for concurrent use by readers.
type SecondaryError struct {
	Op        string         // the writer's operation name
	Key       string         // the entity key
	Target    cutover.Side   // the store that may now be behind
	Reason    cutover.Reason // why the stores may differ
	Err       error          // the failure of the write, or of the call that was skipped
	RecordErr error          // non-nil if the repair log refused the entry: repair by hand
}

// Error describes the failure.
func (e *SecondaryError) Error() string {
	msg := fmt.Sprintf("dualwrite: %s %q: %s store needs repair (%s): %v", e.Op, e.Key, e.Target, e.Reason, e.Err)
	if e.RecordErr != nil {
		msg += fmt.Sprintf("; repair log failed too: %v", e.RecordErr)
	}
	return msg
}

// Unwrap returns the write's error and, if any, the repair log's.
func (e *SecondaryError) Unwrap() []error {
	if e.RecordErr == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.RecordErr}
}

// Option configures a [Writer]. Options are immutable values made by the
// With functions of this package, safe to share between calls to [New]
// and safe for concurrent use; an invalid one, or the zero value, a nil
// Option, makes New fail. When two options set the same thing, the later
// one wins.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	breaker       *breaker.Breaker
	clock         *hlc.Clock
	policy        Policy
	concurrent    bool
	timeout       time.Duration
	recordTimeout time.Duration
	providers     telemetry.Providers
	observer      cutover.Observer
	errs          validate.Errors
}

// WithBreaker guards every call to the new store with b. Without it the new
// store is called whatever its recent failures. A nil b makes [New] fail.
func WithBreaker(b *breaker.Breaker) Option {
	return optionFunc(func(c *config) { c.breaker = b; c.errs.NotNil(b, "WithBreaker: nil breaker") })
}

// WithObserver tells o of every store call the writer makes (with its
// role, outcome and latency) and of every fallback to the old store, on
// the goroutine that made the call. A [cutover.LatencyObserver] that uses
// no latency gets none, and the writer reads no clock for it. Without it
// no observer is called and a write pays nothing for the hook. A nil o
// makes [New] fail.
func WithObserver(o cutover.Observer) Option {
	return optionFunc(func(c *config) { c.observer = o; c.errs.NotNil(o, "WithObserver: nil observer") })
}

// WithPolicy sets what a failed secondary write does to the caller. The
// default is [Continue].
func WithPolicy(p Policy) Option { return optionFunc(func(c *config) { c.policy = p }) }

// WithConcurrentWrites writes both stores at the same time instead of one
// after the other. The call then takes as long as the slower write (bounded
// by the secondary timeout), and an authoritative failure after a secondary
// success is recorded for repair too, since the stores now differ. So is an
// authoritative panic (the old store's, in dualwrite and shadow): the key is
// recorded before the panic goes on to the caller.
func WithConcurrentWrites() Option { return optionFunc(func(c *config) { c.concurrent = true }) }

// WithTimeout bounds each secondary write, which runs on a context that the
// caller's cancellation does not reach. The time runs from the first time
// the store function looks at that context (a database driver does so
// before it takes a connection), so a store that never looks reads no
// clock. The default is [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

// WithRecordTimeout bounds the recording of one key in the repair log,
// which runs on a context that the caller's cancellation does not reach.
// It is separate from the secondary timeout: a repair log slower than the
// secondary store must still get the key. The default is
// [DefaultRecordTimeout].
func WithRecordTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.recordTimeout = d })
}

// WithMeterProvider sets the meter provider. Without it the global one,
// otel.GetMeterProvider, is read when [New] runs. A nil mp makes New fail.
func WithMeterProvider(mp metric.MeterProvider) Option { return providers(telemetry.Meter(mp)) }

// WithTracerProvider sets the tracer provider. Without it the global one,
// otel.GetTracerProvider, is read when [New] runs. A nil tp makes New fail.
func WithTracerProvider(tp trace.TracerProvider) Option { return providers(telemetry.Tracer(tp)) }

// WithLogger sets the logger. Without it slog.Default() is read when [New]
// runs. A nil l makes New fail.
func WithLogger(l *slog.Logger) Option { return providers(telemetry.Logger(l)) }

func providers(s telemetry.Setting) Option {
	return optionFunc(func(c *config) { c.errs.Add(s(&c.providers)) })
}

// Writer writes one operation, such as "users.save", to both stores. Create
// it with [New]; the zero value is not usable. It is safe for concurrent use.
type Writer struct {
	op         string
	stages     cutover.StageSource
	repairs    cutover.RepairLog
	policy     Policy
	concurrent bool
	clock      *hlc.Clock
	timeout    time.Duration
	recTimeout time.Duration
	rec        *storecall.Recorder
	logger     *slog.Logger
	logs       *telemetry.Limiter
	spanName   string
	spanAttrs  [len(cutover.Stages)]trace.SpanStartOption
	repaired   *telemetry.Counter[repairReason]
	unrecorded *telemetry.Counter[recordFailure]
	fallbacks  *telemetry.Counter[storecall.FallbackReason]
}

// repairReason is a cutover.Reason as the repairs counter's attribute.
type repairReason uint8

const (
	repairSecondaryFailed repairReason = iota
	repairAuthoritativeFailed
	repairSkipped
	repairFallback
	repairAmbiguous
	numRepairReasons
)

var repairReasons = [numRepairReasons]cutover.Reason{cutover.SecondaryFailed, cutover.AuthoritativeFailed, cutover.Skipped, cutover.Fallback, cutover.Ambiguous}

func (r repairReason) String() string { return string(repairReasons[r]) }

func repairReasonOf(r cutover.Reason) repairReason {
	for i, s := range repairReasons {
		if r == s {
			return repairReason(i)
		}
	}
	return repairSecondaryFailed
}

// recordFailure is the one reason of the repair_errors counter.
type recordFailure uint8

const (
	recordFailed recordFailure = iota
	numRecordFailures
)

func (recordFailure) String() string { return "record_failed" }

// New returns a writer for the operation op, which names it in metrics,
// spans, logs and repair-log entries. stages gives the stage of each call;
// repairs receives the key of every write that left the stores apart.
//
// An empty op, a nil stages or repairs (or an interface holding a nil
// pointer), a nil Option or an invalid one makes New fail with an error
// wrapping [ErrInvalidInput] that names every problem; it never panics.
func New(op string, stages cutover.StageSource, repairs cutover.RepairLog, opts ...Option) (*Writer, error) {
	switch {
	case op == "":
		return nil, fmt.Errorf("%w: empty operation name", ErrInvalidInput)
	case validate.Nil(stages):
		return nil, fmt.Errorf("%w: nil stage source", ErrInvalidInput)
	case validate.Nil(repairs):
		return nil, fmt.Errorf("%w: nil repair log: failed secondary writes must be recorded somewhere", ErrInvalidInput)
	}
	c := config{clock: clock, timeout: DefaultTimeout, recordTimeout: DefaultRecordTimeout}
	validate.Apply(&c.errs, opts, func(o Option) { o.apply(&c) })
	if c.timeout <= 0 {
		c.errs.Addf("secondary timeout must be positive, got %v", c.timeout)
	}
	if c.recordTimeout <= 0 {
		c.errs.Addf("record timeout must be positive, got %v", c.recordTimeout)
	}
	if c.policy > Fail {
		c.errs.Addf("unknown policy %d", c.policy)
	}
	if err := c.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	meter, tracer, logger := c.providers.Resolve("github.com/cutover-go/cutover/dualwrite")
	calls, err := telemetry.NewCalls(meter, "cutover.dualwrite.duration",
		"Duration of writes to each store, by role and outcome.", op)
	if err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	base := []attribute.KeyValue{telemetry.KeyOperation.String(op)}
	w := &Writer{
		op: op, stages: stages, repairs: repairs, policy: c.policy, concurrent: c.concurrent,
		clock: c.clock, timeout: c.timeout, recTimeout: c.recordTimeout, logger: logger,
		rec:      storecall.NewRecorder(op, calls, tracer, c.breaker),
		logs:     telemetry.NewLimiter(10*time.Second, 10, nil),
		spanName: "dualwrite " + op,
	}
	w.rec.SetObserver(c.observer)
	for i, s := range cutover.Stages {
		w.spanAttrs[i] = trace.WithAttributes(telemetry.KeyOperation.String(op), telemetry.KeyStage.String(s.String()))
	}
	if w.repaired, err = telemetry.NewCounter(meter, "cutover.dualwrite.repairs",
		"Keys recorded in the repair log because a write left the stores apart.", "{key}", base, telemetry.KeyReason, numRepairReasons); err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	if w.unrecorded, err = telemetry.NewCounter(meter, "cutover.dualwrite.repair_errors",
		"Keys the repair log failed to record; each failed its call.", "{key}", base, telemetry.KeyReason, numRecordFailures); err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	if w.fallbacks, err = telemetry.NewCounter(meter, "cutover.dualwrite.fallbacks",
		"Writes that went to the old store because the authoritative new store failed or was refused.", "{write}", base, telemetry.KeyReason, storecall.NumFallbackReasons); err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	return w, nil
}

// Op returns the operation name given to [New].
func (w *Writer) Op() string { return w.op }

// Write writes the entity key to the stores that the stage of this call
// selects, calling write once per store with the side to write. It returns
// the authoritative store's error, or nil; see the package documentation
// for what happens to secondary failures.
func (w *Writer) Write(ctx context.Context, key string, write func(ctx context.Context, side cutover.Side) error) error {
	if write == nil {
		return ErrNilFunc
	}
	_, err := run(ctx, w, key, storecall.ErrFunc(write))
	return err
}

// Call is [Writer.Write] for writes that return a result, such as a
// generated id: it returns the authoritative store's result.
func Call[R any](ctx context.Context, w *Writer, key string, write func(ctx context.Context, side cutover.Side) (R, error)) (R, error) {
	if write == nil {
		var zero R
		return zero, ErrNilFunc
	}
	return run(ctx, w, key, storecall.ValueFunc[R](write))
}

func run[R any, F storecall.Func[R]](ctx context.Context, w *Writer, key string, f F) (R, error) {
	stage := w.stages.Stage(ctx)
	if !stage.Valid() {
		stage = cutover.Off
	}
	auth := stage.Authoritative()
	sec, dual := stage.Secondary()
	if !dual {
		v, _, err := storecall.Call(ctx, ctx, w.rec, stage, auth, telemetry.Authoritative, false, f)
		return v, err
	}
	ctx, span := w.rec.Start(ctx, w.spanName, w.spanAttrs[stage])
	defer span.End()
	traced := span.IsRecording() // the store calls' spans are its children
	if w.concurrent {
		return concurrent(ctx, w, stage, key, traced, f)
	}
	v, o, err := storecall.Call(ctx, ctx, w.rec, stage, auth, telemetry.Authoritative, traced, f)
	if err != nil {
		if why, ok := w.rec.Fallback(ctx, stage, o, err); ok {
			return fallback(ctx, w, stage, key, why, err, f)
		}
		return v, w.authoritativeFailed(ctx, stage, key, sec, o, err, false)
	}
	dctx := storecall.Detach(ctx, w.timeout)
	_, o, err = storecall.Call(dctx, context.Background(), w.rec, stage, sec, telemetry.Secondary, traced, f)
	dctx.Release()
	if err != nil {
		return v, w.secondaryFailed(ctx, stage, key, sec, o, err)
	}
	return v, nil
}

// fallback writes the old store in place of the new one, which failed with
// cause, and records the key for repair of the new store.
func fallback[R any, F storecall.Func[R]](ctx context.Context, w *Writer, stage cutover.Stage, key string, why storecall.FallbackReason, cause error, f F) (R, error) {
	w.fallbacks.Add(ctx, why)
	w.rec.FellBack(ctx, stage, why)
	v, _, err := storecall.Call(ctx, ctx, w.rec, stage, cutover.Old, telemetry.Fallback, true, f)
	if err != nil {
		return v, err
	}
	if rerr := w.record(ctx, stage, key, cutover.New, cutover.Fallback, cause); rerr != nil {
		return v, rerr
	}
	return v, nil
}

type result[R any] struct {
	v   R
	o   telemetry.Outcome
	err error
}

// concurrent writes the secondary store on its own goroutine while the
// caller's goroutine writes the authoritative one.
func concurrent[R any, F storecall.Func[R]](ctx context.Context, w *Writer, stage cutover.Stage, key string, traced bool, f F) (R, error) {
	auth := stage.Authoritative()
	sec := auth.Other()
	done := make(chan result[R], 1)
	go func() {
		dctx := storecall.Detach(ctx, w.timeout)
		v, o, err := storecall.Call(dctx, context.Background(), w.rec, stage, sec, telemetry.Secondary, traced, f)
		dctx.Release()
		done <- result[R]{v, o, err}
	}()
	returned := false
	defer func() {
		if returned {
			return
		}
		// The authoritative write panicked: the old store's, whose panic
		// goes on to the caller. If the secondary write succeeded, only the
		// secondary has the write; record that before the panic goes on.
		p := recover()
		if s := <-done; s.err == nil {
			pe := &cutover.PanicError{Value: p, Stack: debug.Stack()}
			_ = w.record(ctx, stage, key, sec, cutover.AuthoritativeFailed, pe) // a failure to record is logged and counted
		}
		if p != nil {
			panic(p)
		}
	}()
	v, o, err := storecall.Call(ctx, ctx, w.rec, stage, auth, telemetry.Authoritative, traced, f)
	returned = true
	s := <-done
	if err == nil {
		if s.err == nil {
			return v, nil
		}
		return v, w.secondaryFailed(ctx, stage, key, sec, s.o, s.err)
	}
	if why, ok := w.rec.Fallback(ctx, stage, o, err); ok {
		// The old store, written alongside, answers in place of the new one.
		w.fallbacks.Add(ctx, why)
		w.rec.FellBack(ctx, stage, why)
		if s.err != nil {
			return s.v, s.err
		}
		return s.v, w.record(ctx, stage, key, cutover.New, cutover.Fallback, err)
	}
	return v, w.authoritativeFailed(ctx, stage, key, sec, o, err, s.err == nil)
}

// authoritativeFailed records, if the stores may now differ, the key of an
// authoritative write that ended with o and err and did not fall back, for
// repair of the secondary sec, and returns what the caller gets: err, joined
// with the repair log's error if that failed too. secondaryWrote says that
// the secondary write, made alongside, succeeded.
func (w *Writer) authoritativeFailed(ctx context.Context, stage cutover.Stage, key string, sec cutover.Side, o telemetry.Outcome, err error, secondaryWrote bool) error {
	var reason cutover.Reason
	switch {
	case o == telemetry.Canceled || o == telemetry.Timeout:
		// The caller's context ended the write: it may have committed
		// all the same, so the secondary may lack it, or hold it alone.
		reason = cutover.Ambiguous
	case secondaryWrote:
		// Only the secondary has the write: bring it back to the authoritative.
		reason = cutover.AuthoritativeFailed
	default:
		return err
	}
	if rerr := w.record(ctx, stage, key, sec, reason, err); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// secondaryFailed records a secondary write that ended with o and err, and
// says what the caller gets under the writer's policy.
func (w *Writer) secondaryFailed(ctx context.Context, stage cutover.Stage, key string, target cutover.Side, o telemetry.Outcome, err error) error {
	reason := cutover.SecondaryFailed
	if o == telemetry.Refused {
		reason = cutover.Skipped
	}
	if ok, suppressed := w.logs.Allow(); ok {
		w.logger.WarnContext(ctx, "cutover: secondary write failed; key recorded for repair",
			"op", w.op, "key", key, "store", target.String(), "stage", stage.String(),
			"outcome", o.String(), "err", err, "suppressed", suppressed)
	}
	rerr := w.record(ctx, stage, key, target, reason, err)
	if rerr == nil && w.policy == Continue {
		return nil
	}
	if rerr != nil {
		return rerr
	}
	return &SecondaryError{Op: w.op, Key: key, Target: target, Reason: reason, Err: err}
}

// record puts the key in the repair log. A log that fails turns into a
// *SecondaryError for the caller: the key must not be dropped unseen.
func (w *Writer) record(ctx context.Context, stage cutover.Stage, key string, target cutover.Side, reason cutover.Reason, cause error) error {
	rctx := storecall.Detach(ctx, w.recTimeout)
	defer rctx.Release()
	r := cutover.Repair{Op: w.op, Key: key, Target: target, Stage: stage, Reason: reason, Err: cause, Time: time.Now()}
	if err := w.repairs.Record(rctx, r); err != nil {
		w.unrecorded.Add(ctx, recordFailed)
		w.logger.ErrorContext(ctx, "cutover: repair log failed; the call fails so the key is not lost",
			"op", w.op, "key", key, "store", target.String(), "reason", string(reason), "err", err)
		return &SecondaryError{Op: w.op, Key: key, Target: target, Reason: reason, Err: cause, RecordErr: err}
	}
	w.repaired.Add(ctx, repairReasonOf(reason))
	return nil
}
