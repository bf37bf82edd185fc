// Package shadowread reads from the authoritative store, returns exactly
// what it answered, and compares that answer with the other store's, so
// that every difference between the stores is seen before reads move.
//
// In shadow the old store answers and the new one is compared; in live the
// new store answers and the old one is compared. The comparison runs on its
// own goroutine by default, after the caller has its answer, on a context
// the caller's cancellation does not reach and under a timeout of its own:
// a slow or broken other store never slows or fails the caller. At most
// [DefaultMaxConcurrent] comparisons run at once per reader; more are dropped
// and counted, never queued. A sample rate bounds the extra load.
//
// Before a difference counts as a mismatch the authoritative store is read
// once more: if its answer changed, a write raced the comparison, and the
// read is counted as a race instead. A mismatch is counted, logged (at most
// a few lines per second), reported to a callback with a capped diff naming
// the differing fields, and its key recorded in the repair log if one is
// given.
//
// In live and rampdown the new store answers; if it fails, panics, or its
// breaker refuses the call, the old store answers instead and nothing is
// compared. A panic of the compared store is a failed comparison. Only the
// panic of the store the caller would read without the library, the old
// store in off, dualwrite and shadow and the new store in complete, goes
// on to the caller unchanged (after the new store's breaker has counted
// it); see cutover.PanicError.
// In off, dualwrite and complete a [Reader] reads one store and adds no span.
// In the other stages a read gets a span, with a child per store call, when
// the caller's context carries a recording span.
//
// Options carry the payload type of the reader they configure, so that a
// compare, normalize or mismatch function for another type is a compile
// error rather than a surprise at start-up. Options whose function names
// the type give it to [New]; the others take it as a type argument:
//
//	gets, err := shadowread.New("users.get", stages,
//		shadowread.WithCompare(func(old, new User) bool { return old.ID == new.ID && old.Email == new.Email }),
//		shadowread.WithTimeout[User](500*time.Millisecond),
//		shadowread.WithRepairLog[User](repairs))
//
// # Bounded comparisons
//
// The cost of a comparison is bounded whatever the stores return: the
// default comparison and the diff follow at most [DefaultCompareDepth]
// levels of nesting and do at most [DefaultCompareWork] units of work (see
// [WithCompareLimits]). A comparison that reaches a limit before it finds a
// difference cannot tell whether the stores agree; it is counted with
// reason too_large and logged with where it stopped, never a crash, and is
// neither a mismatch nor recorded for repair.
//
// # What a mismatch shows
//
// A mismatch is logged with its diff, and the same diff is handed to the
// mismatch function as [Mismatch.Diff]; the diff goes nowhere else. Spans
// carry the operation, the stage and each store call's outcome (with the
// store's error, as for every store call), metrics the operation and the
// reasons, and a repair-log entry the key, never the diff nor a value
// (its Err is nil). The entity key itself is logged and recorded: it is
// what repair needs.
//
// The diff shows values, since they are what tells a truncated timestamp
// from a stale row, except sensitive ones: struct fields tagged
// `cutover:"sensitive"` and the values below the paths of [WithSensitive]
// are shown as keyed hashes, "<redacted:1a2b3c4d>", alike for equal values
// and different for different ones. Marking the few fields that hold
// personal data once, on the type, keeps them out of the logs of every
// reader of it and leaves the rest of the diff as useful as before; a
// default of no values would make every mismatch a search through both
// stores. Where no value may reach the logs at all, or the sensitive
// fields cannot all be marked, [WithoutDiffValues] shows paths and kinds of
// difference only. When the stores' errors differ, the diff quotes them,
// unless WithoutDiffValues is given. The mismatch function gets the
// stores' answers themselves in Mismatch.Old and Mismatch.New.
package shadowread

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/diff"
	"github.com/cutover-go/cutover/internal/storecall"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// recordTimeout bounds the recording of one mismatched key in the repair
// log, apart from the comparison's timeout.
const recordTimeout = 5 * time.Second

// Defaults of a [Reader].
const (
	DefaultTimeout       = 2 * time.Second // bound on one comparison's read of the other store
	DefaultMaxConcurrent = 64              // comparisons running at once; more are dropped
)

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options, and by [ErrNilFunc]. Each such error names what was
// wrong, as in "shadowread: invalid input: nil stage source".
var ErrInvalidInput = errors.New("shadowread: invalid input")

// ErrNilFunc is returned by [Reader.Read] when the read function is nil;
// no store is called. It wraps [ErrInvalidInput].
var ErrNilFunc = fmt.Errorf("%w: nil read function", ErrInvalidInput)

// Mismatch describes one read for which the two stores answered differently.
// The zero value describes no read; the library hands each filled one to
// the mismatch function once and does not touch it afterwards, so the
// function may keep it, and it is safe for concurrent use by readers as far
// as the values of type T are.
type Mismatch[T any] struct {
	Op            string        // the reader's operation name
	Key           string        // the entity key of the read
	Stage         cutover.Stage // the stage the read ran in
	Authoritative cutover.Side  // the store whose answer the caller got
	Old, New      T             // the values each store returned, after normalising
	OldErr        error         // the old store's error
	NewErr        error         // the new store's error

	// Diff is a capped, human-readable list of the differences, with
	// sensitive values hidden as the reader's options say: the text the
	// mismatch log line carries. Old, New and the errors are the stores'
	// answers themselves, sensitive fields included; whatever the mismatch
	// function does with them is up to it.
	Diff string
}

// Option configures a [Reader] of payload type T. Options are immutable
// values made by the With functions of this package, safe to share between
// calls to [New] and safe for concurrent use; an invalid one, or the zero
// value, a nil Option, makes New fail. When two options set the same thing,
// the later one wins.
//
// Options carry the reader's payload type, so that a compare, normalize or
// mismatch function for another type does not compile. The options whose
// arguments name T, such as [WithCompare], give it to New; the others take
// it as a type argument, as in WithTimeout[User](time.Second).
type Option[T any] interface{ apply(*config[T]) }

type optionFunc[T any] func(*config[T])

func (f optionFunc[T]) apply(c *config[T]) { f(c) }

type config[T any] struct {
	breaker       *breaker.Breaker
	repairs       cutover.RepairLog
	rate          float64
	sampler       func(context.Context) float64
	timeout       time.Duration
	maxConcurrent int
	sync          bool
	diff          diff.Options
	compare       func(old, new T) bool
	normalize     func(T) T
	onMismatch    func(context.Context, *Mismatch[T])
	compareErrors func(old, new error) bool
	isFailure     func(err error) bool
	providers     telemetry.Providers
	observer      cutover.Observer
	errs          validate.Errors
}

// WithBreaker guards every call to the new store with b. Without it the new
// store is called whatever its recent failures. A nil b makes [New] fail.
func WithBreaker[T any](b *breaker.Breaker) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.breaker = b; c.errs.NotNil(b, "WithBreaker: nil breaker") })
}

// WithRepairLog records the key of every mismatch in l, for repair of the
// store that was not authoritative. Without it mismatches are counted,
// logged and reported, but not recorded. A nil l, or an interface holding
// a nil pointer, makes [New] fail.
func WithRepairLog[T any](l cutover.RepairLog) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.repairs = l; c.errs.NotNil(l, "WithRepairLog: nil repair log") })
}

// WithSampleRate compares only a fraction rate, in [0, 1], of the reads that
// the stage would compare. The default is 1, every read.
func WithSampleRate[T any](rate float64) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.rate = rate })
}

// WithSampler asks f for the sample rate of each read that the stage would
// compare, such as the SampleRate method of a flags.Resolver. It replaces
// [WithSampleRate]; rates outside [0, 1] are clamped. A nil f makes [New]
// fail.
func WithSampler[T any](f func(ctx context.Context) float64) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.sampler = f; c.errs.NotNil(f, "WithSampler: nil function") })
}

// WithTimeout bounds the other store's read in each comparison. The time
// runs from the first time the read function looks at its context (a
// database driver does so before it takes a connection), so a store that
// never looks reads no clock. The default is [DefaultTimeout].
func WithTimeout[T any](d time.Duration) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.timeout = d })
}

// WithMaxConcurrent bounds the comparisons running at once; a read that finds
// them all busy is not compared and is counted as dropped. The default is
// [DefaultMaxConcurrent].
func WithMaxConcurrent[T any](n int) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.maxConcurrent = n })
}

// WithSynchronous compares before returning to the caller instead of on a
// goroutine of its own. The caller still gets the authoritative answer
// unchanged, but waits for the other store (up to the timeout). Meant for
// tests and for offline checks.
func WithSynchronous[T any]() Option[T] {
	return optionFunc[T](func(c *config[T]) { c.sync = true })
}

// WithIgnore leaves the given fields out of the default comparison and of
// the diff. A path names struct fields and map keys from the value's root,
// separated by dots, with * matching any one element: "UpdatedAt",
// "Address.Zip", "Items.*.Etag".
func WithIgnore[T any](paths ...string) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.diff.Ignore = append(c.diff.Ignore, paths...) })
}

// WithDiffLimits caps the mismatch diff at maxDiffs differences and maxBytes
// bytes. Zero keeps the default of 10 differences and 2 KiB.
func WithDiffLimits[T any](maxDiffs, maxBytes int) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.diff.MaxDiffs, c.diff.MaxBytes = maxDiffs, maxBytes })
}

// WithCompare replaces the default comparison, deep equality less the
// ignored fields, with f, which reports whether the old and new values are
// equivalent. f gives the reader's payload type to [New]; a function of
// another type does not compile. A nil f makes New fail.
func WithCompare[T any](f func(old, new T) bool) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.compare = f; c.errs.NotNil(f, "WithCompare: nil function") })
}

// WithNormalize applies f to both values before comparing them, for example
// to sort a slice or truncate timestamps to what both stores keep. Without
// it values are compared as read. f gives the reader's payload type to
// [New]; a function of another type does not compile. A nil f makes New
// fail.
func WithNormalize[T any](f func(T) T) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.normalize = f; c.errs.NotNil(f, "WithNormalize: nil function") })
}

// WithCompareErrors replaces the default comparison of the two stores'
// errors. f is called when at least one store failed and reports whether
// the outcomes are equivalent. By default two errors are equivalent when
// one matches the other with errors.Is or their messages are equal, and an
// error never matches a success. A nil f makes [New] fail.
func WithCompareErrors[T any](f func(old, new error) bool) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.compareErrors = f; c.errs.NotNil(f, "WithCompareErrors: nil function") })
}

// WithFailures tells a store that failed to answer from one that answered
// differently. f reports whether err, returned by the compared store, is a
// failure, such as a lost connection, rather than an answer, such as "not
// found". A failure is counted as a comparison error, neither a match nor a
// mismatch, and is not recorded for repair. By default only timeouts and
// panics are failures, and every returned error is compared with
// [WithCompareErrors] rules: a new store that errs where the old one has a
// row is a mismatch. A nil f makes [New] fail.
func WithFailures[T any](f func(err error) bool) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.isFailure = f; c.errs.NotNil(f, "WithFailures: nil function") })
}

// WithOnMismatch calls f with every mismatch, on the goroutine of the
// comparison. A panic in f is recovered and logged. Without it mismatches
// are counted, logged and recorded only. f gives the reader's payload type
// to [New]; a function of another type does not compile. A nil f makes New
// fail.
func WithOnMismatch[T any](f func(ctx context.Context, m *Mismatch[T])) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.onMismatch = f; c.errs.NotNil(f, "WithOnMismatch: nil function") })
}

// WithObserver tells o of every store call the reader makes (with its
// role, outcome and latency), of every fallback to the old store and of
// every comparison's result, on the goroutine that made the call or the
// comparison. A [cutover.LatencyObserver] that uses no latency gets none,
// and the reader reads no clock for it. Without it no observer is called
// and a read pays nothing for the hook. A nil o makes [New] fail.
func WithObserver[T any](o cutover.Observer) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.observer = o; c.errs.NotNil(o, "WithObserver: nil observer") })
}

// WithMeterProvider sets the meter provider. Without it the global one,
// otel.GetMeterProvider, is read when [New] runs. A nil mp makes New fail.
func WithMeterProvider[T any](mp metric.MeterProvider) Option[T] {
	return providers[T](telemetry.Meter(mp))
}

// WithTracerProvider sets the tracer provider. Without it the global one,
// otel.GetTracerProvider, is read when [New] runs. A nil tp makes New fail.
func WithTracerProvider[T any](tp trace.TracerProvider) Option[T] {
	return providers[T](telemetry.Tracer(tp))
}

// WithLogger sets the logger. Without it slog.Default() is read when [New]
// runs. A nil l makes New fail.
func WithLogger[T any](l *slog.Logger) Option[T] { return providers[T](telemetry.Logger(l)) }

func providers[T any](s telemetry.Setting) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.errs.Add(s(&c.providers)) })
}

// Reader reads one operation, such as "users.get", returning values of type
// T. Create it with [New]; the zero value is not usable. It is safe for
// concurrent use.
type Reader[T any] struct {
	op            string
	stages        cutover.StageSource
	repairs       cutover.RepairLog
	rate          float64
	sampler       func(context.Context) float64
	timeout       time.Duration
	sync          bool
	sem           chan struct{}
	comparer      *diff.Comparer
	same          *diff.Fast[T] // diff.FastEqual of comparer; may be nil
	compare       func(old, new T) bool
	normalize     func(T) T
	onMismatch    func(context.Context, *Mismatch[T])
	compareErrors func(old, new error) bool
	isFailure     func(err error) bool

	rec       *storecall.Recorder
	logger    *slog.Logger
	logs      *telemetry.Limiter
	spanName  string
	spanAttrs [len(cutover.Stages)]trace.SpanStartOption
	results   *telemetry.Counter[result]
	mismatch  *telemetry.Counter[mismatchReason]
	dropped   *telemetry.Counter[droppedReason]
	fallbacks *telemetry.Counter[storecall.FallbackReason]
	skipped   *telemetry.Counter[skippedReason]

	mu      sync.Mutex
	pending int
	idle    chan struct{} // made by a waiting Drain; closed when pending drops to zero
}

// result is how a comparison ended, the reason of the comparisons counter.
type result uint8

const (
	resultMatch result = iota
	resultMismatch
	resultError
	resultRace
	resultTooLarge
	numResults
)

// counted counts a comparison of a read in stage that ended with res, and
// tells the observer, if any. The results are numbered as
// cutover.ComparisonResult's; TestObserver holds them so.
func (r *Reader[T]) counted(ctx context.Context, stage cutover.Stage, res result) {
	r.results.Add(ctx, res)
	r.rec.Compared(ctx, stage, cutover.ComparisonResult(res))
}

func (r result) String() string {
	return [numResults]string{"match", "mismatch", "error", "race", "too_large"}[r]
}

// The reasons of the counters that have only one, as attribute values.
type (
	mismatchReason uint8
	droppedReason  uint8
	skippedReason  uint8
)

const (
	mismatched  mismatchReason = 0
	poolFull    droppedReason  = 0
	breakerOpen skippedReason  = 0
)

func (mismatchReason) String() string { return "mismatch" }
func (droppedReason) String() string  { return "full" }
func (skippedReason) String() string  { return "breaker_open" }

// New returns a reader for the operation op, which names it in metrics,
// spans, logs, mismatches and repair-log entries. stages gives the stage of
// each read.
//
// An empty op, a nil stages (or an interface holding a nil pointer), a nil
// Option or an invalid one makes New fail with an error wrapping
// [ErrInvalidInput] that names every problem; it never panics.
func New[T any](op string, stages cutover.StageSource, opts ...Option[T]) (*Reader[T], error) {
	switch {
	case op == "":
		return nil, fmt.Errorf("%w: empty operation name", ErrInvalidInput)
	case validate.Nil(stages):
		return nil, fmt.Errorf("%w: nil stage source", ErrInvalidInput)
	}
	c := config[T]{rate: 1, timeout: DefaultTimeout, maxConcurrent: DefaultMaxConcurrent, compareErrors: sameError}
	validate.Apply(&c.errs, opts, func(o Option[T]) { o.apply(&c) })
	if c.rate < 0 || c.rate > 1 || c.rate != c.rate {
		c.errs.Addf("sample rate %v outside [0, 1]", c.rate)
	}
	if c.timeout <= 0 {
		c.errs.Addf("timeout must be positive, got %v", c.timeout)
	}
	if c.maxConcurrent <= 0 {
		c.errs.Addf("max concurrent comparisons must be positive, got %d", c.maxConcurrent)
	}
	comparer, err := diff.Compile(c.diff)
	if err != nil {
		c.errs.Addf("%w", err)
	}
	if err := c.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	r := &Reader[T]{
		op: op, stages: stages, repairs: c.repairs, rate: c.rate, sampler: c.sampler,
		timeout: c.timeout, sync: c.sync, sem: make(chan struct{}, c.maxConcurrent),
		comparer: comparer, same: diff.FastEqual[T](comparer), compare: c.compare, normalize: c.normalize, onMismatch: c.onMismatch,
		compareErrors: c.compareErrors, isFailure: c.isFailure, spanName: "shadowread " + op,
	}
	meter, tracer, logger := c.providers.Resolve("github.com/cutover-go/cutover/shadowread")
	r.logger = logger
	r.logs = telemetry.NewLimiter(time.Second, 5, nil)
	for i, s := range cutover.Stages {
		r.spanAttrs[i] = trace.WithAttributes(telemetry.KeyOperation.String(op), telemetry.KeyStage.String(s.String()))
	}
	calls, err := telemetry.NewCalls(meter, "cutover.shadowread.duration",
		"Duration of reads from each store, by role and outcome.", op)
	if err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	r.rec = storecall.NewRecorder(op, calls, tracer, c.breaker)
	r.rec.SetObserver(c.observer)
	base := []attribute.KeyValue{telemetry.KeyOperation.String(op)}
	if r.results, err = telemetry.NewCounter(meter, "cutover.shadowread.comparisons",
		"Comparisons of the two stores' answers, by result.", "{comparison}", base, telemetry.KeyReason, numResults); err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	if r.mismatch, err = telemetry.NewCounter(meter, "cutover.shadowread.mismatches",
		"Reads for which the two stores answered differently.", "{mismatch}", base, telemetry.KeyReason, mismatched+1); err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	if r.dropped, err = telemetry.NewCounter(meter, "cutover.shadowread.dropped",
		"Comparisons not made because too many were running.", "{comparison}", base, telemetry.KeyReason, poolFull+1); err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	if r.fallbacks, err = telemetry.NewCounter(meter, "cutover.shadowread.fallbacks",
		"Reads the old store answered because the authoritative new store failed or was refused.", "{read}", base, telemetry.KeyReason, storecall.NumFallbackReasons); err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	if r.skipped, err = telemetry.NewCounter(meter, "cutover.shadowread.skipped",
		"Comparisons not made because the new store's breaker was open.", "{comparison}", base, telemetry.KeyReason, breakerOpen+1); err != nil {
		return nil, fmt.Errorf("shadowread: %w", err)
	}
	return r, nil
}

func sameError(old, new error) bool {
	if old == nil || new == nil {
		return old == new
	}
	return errors.Is(old, new) || errors.Is(new, old) || old.Error() == new.Error()
}

// Op returns the operation name given to [New].
func (r *Reader[T]) Op() string { return r.op }

// Read reads the entity key from the store that the stage of this call
// selects, calling read with the side to read, and returns exactly what that
// store returned. In shadow and live it also schedules a comparison with
// the other store.
func (r *Reader[T]) Read(ctx context.Context, key string, read func(ctx context.Context, side cutover.Side) (T, error)) (T, error) {
	if read == nil {
		var zero T
		return zero, ErrNilFunc
	}
	stage := r.stages.Stage(ctx)
	if !stage.Valid() {
		stage = cutover.Off
	}
	f := storecall.ValueFunc[T](read)
	auth := stage.Authoritative()
	if stage == cutover.Off || stage == cutover.DualWrite || stage == cutover.Complete {
		v, _, err := storecall.Call(ctx, ctx, r.rec, stage, auth, telemetry.Authoritative, false, f)
		return v, err
	}
	ctx, span := r.rec.Start(ctx, r.spanName, r.spanAttrs[stage])
	defer span.End()
	v, o, err := storecall.Call(ctx, ctx, r.rec, stage, auth, telemetry.Authoritative, span.IsRecording(), f)
	if why, ok := r.rec.Fallback(ctx, stage, o, err); ok {
		r.fallbacks.Add(ctx, why)
		r.rec.FellBack(ctx, stage, why)
		v, _, err = storecall.Call(ctx, ctx, r.rec, stage, cutover.Old, telemetry.Fallback, true, f)
		return v, err
	}
	// A read the caller abandoned has no answer worth comparing.
	if stage.Compares() && o != telemetry.Canceled && r.sampled(ctx) {
		r.schedule(ctx, stage, key, &v, err, f)
	}
	return v, err
}

func (r *Reader[T]) sampled(ctx context.Context) bool {
	rate := r.rate
	if r.sampler != nil {
		rate = r.sampler(ctx)
	}
	switch {
	case rate >= 1:
		return true
	case rate > 0:
		return rand.Float64() < rate
	}
	return false
}

// schedule runs the comparison of the authoritative answer, *v and err,
// with the other store, on its own goroutine unless the reader is
// synchronous.
func (r *Reader[T]) schedule(ctx context.Context, stage cutover.Stage, key string, v *T, err error, f storecall.ValueFunc[T]) {
	if r.sync {
		r.compareWith(ctx, stage, key, v, err, f)
		return
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.dropped.Add(ctx, poolFull)
		return
	}
	r.begin()
	authV := *v // the caller's copy is gone once Read returns
	go func() {
		defer r.end()
		v := authV
		r.compareWith(ctx, stage, key, &v, err, f)
	}()
}

func (r *Reader[T]) begin() {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
}

func (r *Reader[T]) end() {
	<-r.sem
	r.mu.Lock()
	r.pending--
	if r.pending == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
	r.mu.Unlock()
}

// Drain waits until no comparison is running, or until ctx is done. Call it
// at shutdown, after the last Read, so that pending comparisons are counted
// and reported before the process exits.
func (r *Reader[T]) Drain(ctx context.Context) error {
	r.mu.Lock()
	if r.pending == 0 {
		r.mu.Unlock()
		return nil
	}
	if r.idle == nil { // the channel is made only for a Drain that must wait
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shadowread: drain %s: %w", r.op, context.Cause(ctx))
	}
}

// compareWith reads the other store and compares its answer with the
// authoritative one, *authV and authErr. Nothing it does reaches the
// caller.
func (r *Reader[T]) compareWith(ctx context.Context, stage cutover.Stage, key string, authV *T, authErr error, f storecall.ValueFunc[T]) {
	traced := trace.SpanFromContext(ctx).IsRecording() // once for both reads of the store calls
	dctx := storecall.Detach(ctx, r.timeout)
	defer dctx.Release()
	ctx = dctx
	auth := stage.Authoritative()
	other := auth.Other()
	otherV, o, otherErr := storecall.Call(ctx, context.Background(), r.rec, stage, other, telemetry.Shadow, traced, f)
	switch o {
	case telemetry.Refused:
		r.skipped.Add(ctx, breakerOpen)
		return
	case telemetry.Error:
		if r.isFailure == nil || !r.isFailure(otherErr) {
			break // an answer, to compare with the authoritative one
		}
		fallthrough
	case telemetry.Timeout, telemetry.Panic:
		r.counted(ctx, stage, resultError)
		r.logLimited(ctx, slog.LevelWarn, "cutover: shadow read failed", "op", r.op, "key", key,
			"store", other.String(), "outcome", o.String(), "err", otherErr)
		return
	}
	if r.plainlyEqual(authV, authErr, &otherV, otherErr) {
		r.counted(ctx, stage, resultMatch)
		return
	}
	// m stays on this goroutine's stack unless the reads mismatch and the
	// mismatch function gets a copy.
	m := Mismatch[T]{Op: r.op, Key: key, Stage: stage, Authoritative: auth}
	if auth == cutover.Old {
		m.Old, m.OldErr, m.New, m.NewErr = *authV, authErr, otherV, otherErr
	} else {
		m.Old, m.OldErr, m.New, m.NewErr = otherV, otherErr, *authV, authErr
	}
	equal, err := r.equal(&m)
	switch {
	case err != nil:
		r.unanswered(ctx, key, &m, err)
		return
	case equal:
		r.counted(ctx, stage, resultMatch)
		return
	case r.changed(ctx, stage, auth, authV, authErr, traced, f):
		r.counted(ctx, stage, resultRace)
		return
	}
	r.counted(ctx, stage, resultMismatch)
	r.mismatch.Add(ctx, mismatched)
	r.logLimited(ctx, slog.LevelWarn, "cutover: shadow read mismatch", "op", r.op, "key", key,
		"stage", stage.String(), "diff", m.Diff)
	if r.repairs != nil {
		rep := cutover.Repair{Op: r.op, Key: key, Target: other, Stage: stage, Reason: cutover.Mismatch, Time: time.Now()}
		// The comparison's own timeout may be nearly spent: the key gets
		// a budget of its own.
		rctx := storecall.Detach(ctx, recordTimeout)
		err := r.repairs.Record(rctx, rep)
		rctx.Release()
		if err != nil {
			r.logger.ErrorContext(ctx, "cutover: repair log failed for a shadow mismatch",
				"op", r.op, "key", key, "store", other.String(), "err", err)
		}
	}
	if r.onMismatch != nil {
		reported := m
		r.report(ctx, &reported)
	}
}

// changed reads the authoritative store again and reports whether its
// answer differs from v and err, the one the caller got: then a write
// landed between the two reads of the comparison, and the difference says
// nothing about the stores. A failed second read reports false, so that the
// mismatch is reported rather than explained away.
func (r *Reader[T]) changed(ctx context.Context, stage cutover.Stage, auth cutover.Side, v *T, err error, traced bool, f storecall.ValueFunc[T]) bool {
	again, o, againErr := storecall.Call(ctx, context.Background(), r.rec, stage, auth, telemetry.Shadow, traced, f)
	if o != telemetry.OK && o != telemetry.Error {
		return false
	}
	same, cmpErr := r.equal(&Mismatch[T]{Old: *v, OldErr: err, New: again, NewErr: againErr})
	return cmpErr == nil && !same
}

// plainlyEqual reports whether the two answers, *a with aErr and *b with
// bErr, are equal under the default comparison with nothing to normalise
// and no errors, and == shows it at once (see diff.FastEqual). false means
// that equal must decide.
func (r *Reader[T]) plainlyEqual(a *T, aErr error, b *T, bErr error) bool {
	return r.same != nil && r.compare == nil && r.normalize == nil && aErr == nil && bErr == nil && r.same.Equal(a, b)
}

// equal normalises and compares the two answers in m, filling m.Diff when
// they differ. A panic in a user function comes back as an error, and so
// does a default comparison stopped by its limits (a *diff.LimitError,
// with m.Diff filled).
func (r *Reader[T]) equal(m *Mismatch[T]) (equal bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("shadowread: compare panicked: %v", p)
		}
	}()
	if m.OldErr != nil || m.NewErr != nil {
		if r.compareErrors(m.OldErr, m.NewErr) {
			return true, nil
		}
		m.Diff = r.errorDiff(m.OldErr, m.NewErr)
		return false, nil
	}
	if r.normalize != nil {
		m.Old, m.New = r.normalize(m.Old), r.normalize(m.New)
	}
	if r.compare == nil {
		if r.same != nil && r.same.Equal(&m.Old, &m.New) {
			return true, nil // equal under ==, at no cost in allocations
		}
		m.Diff, err = r.comparer.Compare(m.Old, m.New)
		return m.Diff == "", err
	}
	if equal = r.compare(m.Old, m.New); !equal {
		m.Diff = r.comparer.Diff(m.Old, m.New)
		if m.Diff == "" {
			m.Diff = "values differ under the reader's compare function"
		}
	}
	return equal, nil
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", err.Error())
}

func (r *Reader[T]) report(ctx context.Context, m *Mismatch[T]) {
	defer func() {
		if p := recover(); p != nil {
			r.logger.ErrorContext(ctx, "cutover: mismatch callback panicked", "op", r.op, "panic", p)
		}
	}()
	r.onMismatch(ctx, m)
}

func (r *Reader[T]) logLimited(ctx context.Context, level slog.Level, msg string, args ...any) {
	if ok, suppressed := r.logs.Allow(); ok {
		r.logger.Log(ctx, level, msg, append(args, "suppressed", suppressed)...)
	}
}
