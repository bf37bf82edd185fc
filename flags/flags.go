// Package flags resolves the [cutover.Stage] of each request from an
// OpenFeature string flag, and the share of shadow reads to compare from an
// optional numeric flag.
//
// The stage flag holds one of the stage names "off", "dualwrite", "shadow",
// "live", "rampdown" or "complete". Any provider works, so a migration moves
// forward or back, for everyone or for a cohort of users, by changing that
// flag in the flag system the service already runs. A flag that cannot be
// read or holds anything else resolves to a fallback stage (default
// [cutover.Off]); that is counted and logged, and never fails the request.
//
// Every resolution is counted in the cutover.flags.resolutions counter with
// the flag key, the resolved stage and a reason: "flag" (the flag's value was
// used), "error" (the provider failed or the flag does not exist),
// "unknown_value" (the value is not a stage), "timeout" (see [WithTimeout])
// or "clamped" (see [WithBound]; a clamp is counted as "clamped" even when
// the stage it changed was a fallback, whose cause is still logged). The
// sample rate flag of [WithSampleRateFlag] is counted in
// cutover.flags.sample_rate_resolutions, with the flag key and a reason:
// "flag", "error", "out_of_range" or "timeout".
//
// Stage resolutions are counted with OpenTelemetry's feature flag
// attributes too: feature_flag.key, the flag key;
// feature_flag.result.variant, the name of the stage resolved; and
// feature_flag.result.reason, how the flag system determined the value.
// That is the reason the provider gave, as the semantic conventions name
// OpenFeature's reasons ("static", "default", "targeting_match", "split",
// "cached", "disabled", "stale", "error", and "unknown" for none or a
// provider's own), when the flag's value was used, and when it was
// clamped, since a clamp changes the stage and not how the flag was
// evaluated; it is "error" whenever the fallback was used instead: for the
// reasons "error", "unknown_value" and "timeout", and for a bound that
// returned no stage.
package flags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// scope is the instrumentation scope of the package's meters.
const scope = "github.com/cutover-go/cutover/flags"

// Log lines for fallbacks and clamps are limited per Resolver to a burst of
// logBurst and then one every logEvery.
const (
	logBurst = 10
	logEvery = 10 * time.Second
)

// Client is the part of an OpenFeature client that a [Resolver] uses.
// *openfeature.Client and openfeature.IClient satisfy it. Implementations
// must be safe for concurrent use. The zero value, a nil Client, is not
// usable: [New] refuses it, and a nil pointer in the interface too.
type Client interface {
	StringValueDetails(ctx context.Context, flag string, defaultValue string, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.StringEvaluationDetails, error)
	FloatValueDetails(ctx context.Context, flag string, defaultValue float64, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.FloatEvaluationDetails, error)
}

// reason says how a resolution ended; it indexes the precomputed metric
// attribute sets.
type reason uint8

const (
	reasonFlag         reason = iota // the flag's value was used
	reasonError                      // the provider failed or the flag is missing
	reasonUnknownValue               // the value is not a stage
	reasonTimeout                    // WithTimeout expired first
	reasonClamped                    // WithBound changed the stage
	numReasons
)

var reasonNames = [numReasons]string{"flag", "error", "unknown_value", "timeout", "clamped"}

func (r reason) String() string { return reasonNames[r] }

// rateReasonOutOfRange marks a sample rate outside [0, 1]. It shares the
// first values of reason and is used only for the sample rate counter.
const rateReasonOutOfRange = reasonUnknownValue

var rateReasonNames = [numReasons]string{"flag", "error", "out_of_range", "timeout", "clamped"}

// Resolver resolves the stage of a request from an OpenFeature flag. It
// implements [cutover.StageSource]. Create it with [New]; the zero value is
// not usable. A Resolver is safe for concurrent use and holds no state that
// changes per call apart from its log limiters.
type Resolver struct {
	client Client
	flag   string

	fallback     cutover.Stage
	fallbackName string
	bound        func(ctx context.Context, requested cutover.Stage) cutover.Stage
	timeout      time.Duration
	evalCtx      func(ctx context.Context) openfeature.EvaluationContext
	rateFlag     string
	rateFallback float64

	resolutions metric.Int64Counter
	// stageOpts[stage][reason][flagReason] is the add option, with its
	// attribute set, for one resolution; built once so that Stage
	// allocates nothing. The entries of a reason that counts every
	// resolution as an error (see flagReasonFor) share one option.
	stageOpts [len(cutover.Stages)][numReasons][numFlagReasons][]metric.AddOption

	rates    metric.Int64Counter
	rateOpts [numReasons][]metric.AddOption

	logger       *slog.Logger
	fallbackLogs *telemetry.Limiter
	clampLogs    *telemetry.Limiter
}

var _ cutover.StageSource = (*Resolver)(nil)

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options. Each such error names what was wrong, as in
// "flags: invalid input: nil client".
var ErrInvalidInput = errors.New("flags: invalid input")

// New returns a Resolver that reads the stage from the string flag named
// flag through client. A nil client (or an interface holding a nil
// pointer), an empty flag key, a nil Option or an invalid one makes it fail
// with an error wrapping [ErrInvalidInput] that names every problem; it
// never panics. The counters are created here, once.
func New(client Client, flag string, opts ...Option) (*Resolver, error) {
	if validate.Nil(client) {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidInput)
	}
	if flag == "" {
		return nil, fmt.Errorf("%w: empty flag key", ErrInvalidInput)
	}
	var cfg config
	validate.Apply(&cfg.errs, opts, func(o Option) { o.apply(&cfg) })
	if err := cfg.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: flag %q: %w", ErrInvalidInput, flag, err)
	}

	meter, _, logger := cfg.providers.Resolve(scope)
	r := &Resolver{
		client:       client,
		flag:         flag,
		fallback:     cfg.fallback,
		fallbackName: cfg.fallback.String(),
		bound:        cfg.bound,
		timeout:      cfg.timeout,
		evalCtx:      cfg.evalCtx,
		rateFlag:     cfg.rateFlag,
		rateFallback: cfg.rateFallback,
		logger:       logger,
		fallbackLogs: telemetry.NewLimiter(logEvery, logBurst, cfg.now),
		clampLogs:    telemetry.NewLimiter(logEvery, logBurst, cfg.now),
	}

	var err error
	r.resolutions, err = meter.Int64Counter("cutover.flags.resolutions",
		metric.WithUnit("{resolution}"),
		metric.WithDescription("Stage resolutions from a feature flag, by resolved stage and reason."))
	if err != nil {
		return nil, fmt.Errorf("flags: create resolutions counter: %w", err)
	}
	for _, s := range cutover.Stages {
		for rs := range numReasons {
			opts := &r.stageOpts[s][rs]
			for fr := range numFlagReasons {
				if flagReasonFor(rs, fr) == fr {
					set := attribute.NewSet(append(stageAttrs(flag, s.String(), rs, fr),
						telemetry.KeyFlag.String(flag),
						telemetry.KeyStage.String(s.String()),
						telemetry.KeyReason.String(rs.String()),
					)...)
					opts[fr] = []metric.AddOption{metric.WithAttributeSet(set)}
				}
			}
			for fr := range numFlagReasons {
				opts[fr] = opts[flagReasonFor(rs, fr)] // itself, or the one error option
			}
		}
	}

	if r.rateFlag != "" {
		r.rates, err = meter.Int64Counter("cutover.flags.sample_rate_resolutions",
			metric.WithUnit("{resolution}"),
			metric.WithDescription("Shadow-read sample rate resolutions from a feature flag, by reason."))
		if err != nil {
			return nil, fmt.Errorf("flags: create sample rate counter: %w", err)
		}
		for rs := range numReasons {
			set := attribute.NewSet(
				telemetry.KeyFlag.String(r.rateFlag),
				telemetry.KeyReason.String(rateReasonNames[rs]),
			)
			r.rateOpts[rs] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	return r, nil
}

// Flag returns the key of the stage flag.
func (r *Resolver) Flag() string { return r.flag }

// Stage returns the stage of the request that ctx belongs to. It evaluates
// the flag with the evaluation context from [WithEvaluationContext] (or the
// empty one, to which the SDK adds the transaction context carried by ctx),
// then applies the [WithBound] function. It never fails: a provider error, a
// missing flag, a value that is not a stage or a timeout gives the fallback
// stage, counted and logged (at most a few lines per interval).
func (r *Resolver) Stage(ctx context.Context) cutover.Stage {
	var (
		res stageResult
		rs  reason
		err error
	)
	if r.timeout > 0 {
		res, rs, err = r.stageWithTimeout(ctx)
	} else {
		res, rs, err = r.evalStage(ctx, r.evaluationContext(ctx))
	}
	if err != nil {
		r.logFallback(ctx, r.flag, rs.String(), r.fallbackName, err)
	}
	s := res.stage
	if r.bound != nil {
		s, rs = r.applyBound(ctx, s, rs)
	}
	r.resolutions.Add(ctx, 1, r.stageOpts[s][rs][res.reason]...)
	return s
}

// stageResult is what an evaluation of the stage flag gave: the stage, and
// the reason the provider gave for the flag's value.
type stageResult struct {
	stage  cutover.Stage
	reason flagReason
}

// SampleRate returns the share of shadow reads to compare for the request
// that ctx belongs to, in [0, 1]. Without [WithSampleRateFlag] it returns 1
// (compare every read) and evaluates nothing. Otherwise it evaluates that
// flag like [Resolver.Stage] does; an error, a timeout or a value outside
// [0, 1] (or NaN) gives the fallback rate, counted and logged.
func (r *Resolver) SampleRate(ctx context.Context) float64 {
	if r.rateFlag == "" {
		return 1
	}
	var (
		v   float64
		rs  reason
		err error
	)
	if r.timeout > 0 {
		v, rs, err = r.rateWithTimeout(ctx)
	} else {
		v, rs, err = r.evalRate(ctx, r.evaluationContext(ctx))
	}
	if err != nil {
		r.logFallback(ctx, r.rateFlag, rateReasonNames[rs], fmt.Sprint(r.rateFallback), err)
	}
	r.rates.Add(ctx, 1, r.rateOpts[rs]...)
	return v
}

func (r *Resolver) evaluationContext(ctx context.Context) openfeature.EvaluationContext {
	if r.evalCtx == nil {
		return openfeature.EvaluationContext{}
	}
	return r.evalCtx(ctx)
}

// evalStage evaluates the stage flag on the calling goroutine. A non-nil
// error comes with the fallback stage and the reason for it.
func (r *Resolver) evalStage(ctx context.Context, ec openfeature.EvaluationContext) (res stageResult, rs reason, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, rs, err = r.fallbackResult(), reasonError, fmt.Errorf("flags: evaluate %q: provider panic: %v", r.flag, p)
		}
	}()
	d, err := r.client.StringValueDetails(ctx, r.flag, r.fallbackName, ec)
	if err != nil {
		return r.fallbackResult(), reasonError, fmt.Errorf("flags: evaluate %q: %w", r.flag, err)
	}
	s, err := cutover.ParseStage(d.Value)
	if err != nil {
		return r.fallbackResult(), reasonUnknownValue, fmt.Errorf("flags: evaluate %q: %w", r.flag, err)
	}
	return stageResult{s, flagReasonOf(d.Reason)}, reasonFlag, nil
}

// fallbackResult is the result of an evaluation that gives the fallback
// stage.
func (r *Resolver) fallbackResult() stageResult { return stageResult{r.fallback, flagError} }

// evalRate evaluates the sample rate flag on the calling goroutine.
func (r *Resolver) evalRate(ctx context.Context, ec openfeature.EvaluationContext) (v float64, rs reason, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, rs, err = r.rateFallback, reasonError, fmt.Errorf("flags: evaluate %q: provider panic: %v", r.rateFlag, p)
		}
	}()
	d, err := r.client.FloatValueDetails(ctx, r.rateFlag, r.rateFallback, ec)
	if err != nil {
		return r.rateFallback, reasonError, fmt.Errorf("flags: evaluate %q: %w", r.rateFlag, err)
	}
	if !validRate(d.Value) {
		return r.rateFallback, rateReasonOutOfRange, fmt.Errorf("flags: evaluate %q: sample rate %v outside [0, 1]", r.rateFlag, d.Value)
	}
	return d.Value, reasonFlag, nil
}

func (r *Resolver) stageWithTimeout(ctx context.Context) (stageResult, reason, error) {
	ec := r.evaluationContext(ctx)
	return withTimeout(ctx, r.timeout, r.flag, r.fallbackResult(), func(ctx context.Context) (stageResult, reason, error) {
		return r.evalStage(ctx, ec)
	})
}

func (r *Resolver) rateWithTimeout(ctx context.Context) (float64, reason, error) {
	ec := r.evaluationContext(ctx)
	return withTimeout(ctx, r.timeout, r.rateFlag, r.rateFallback, func(ctx context.Context) (float64, reason, error) {
		return r.evalRate(ctx, ec)
	})
}

type outcome[T any] struct {
	v   T
	rs  reason
	err error
}

// withTimeout runs eval on its own goroutine under a context that expires
// after d, and gives fallback with reasonTimeout if it has not answered by
// then. The goroutine is left to finish on its own; its answer then goes to
// a buffered channel nobody reads.
func withTimeout[T any](ctx context.Context, d time.Duration, flag string, fallback T, eval func(context.Context) (T, reason, error)) (T, reason, error) {
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan outcome[T], 1)
	go func() {
		v, rs, err := eval(tctx)
		done <- outcome[T]{v, rs, err}
	}()
	var o outcome[T]
	select {
	case o = <-done:
	case <-tctx.Done():
		select {
		case o = <-done: // answered just in time
		default:
			o = outcome[T]{fallback, reasonError, fmt.Errorf("flags: evaluate %q: %w", flag, tctx.Err())}
		}
	}
	if o.err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		o.v, o.rs = fallback, reasonTimeout
	}
	return o.v, o.rs, o.err
}

// applyBound runs the bound function on s and returns the stage to use and
// the reason to count it under.
func (r *Resolver) applyBound(ctx context.Context, s cutover.Stage, rs reason) (cutover.Stage, reason) {
	b := r.bound(ctx, s)
	switch {
	case b == s:
		return s, rs
	case !b.Valid():
		r.logFallback(ctx, r.flag, reasonError.String(), r.fallbackName,
			fmt.Errorf("flags: bound of %q: returned %v for %v: %w", r.flag, b, s, cutover.ErrUnknownStage))
		return r.fallback, reasonError
	}
	if ok, suppressed := r.clampLogs.Allow(); ok {
		attrs := []slog.Attr{
			slog.String(string(telemetry.KeyFlag), r.flag),
			slog.String("cutover.requested_stage", s.String()),
			slog.String(string(telemetry.KeyStage), b.String()),
		}
		if rs != reasonFlag {
			attrs = append(attrs, slog.String("cutover.requested_reason", rs.String()))
		}
		if suppressed > 0 {
			attrs = append(attrs, slog.Int64("suppressed", suppressed))
		}
		r.logger.LogAttrs(ctx, slog.LevelInfo, "flags: stage clamped", attrs...)
	}
	return b, reasonClamped
}

// logFallback logs that flag resolved to its fallback, unless the limiter
// holds the line back; the next line that goes through says how many were.
func (r *Resolver) logFallback(ctx context.Context, flag, why, fallback string, err error) {
	ok, suppressed := r.fallbackLogs.Allow()
	if !ok {
		return
	}
	attrs := []slog.Attr{
		slog.String(string(telemetry.KeyFlag), flag),
		slog.String(string(telemetry.KeyReason), why),
		slog.String("fallback", fallback),
		slog.String("error", err.Error()),
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	r.logger.LogAttrs(ctx, slog.LevelWarn, "flags: flag unusable, using fallback", attrs...)
}
