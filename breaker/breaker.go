// Package breaker guards calls to the new store with a circuit breaker
// (github.com/sony/gobreaker/v2), so that a failing new store is left alone
// while it recovers instead of being hammered by every request.
//
// A [Breaker] only decides whether a call may go ahead and learns from its
// outcome. What happens to a refused or failed call depends on the stage,
// and the dualwrite and shadowread packages do it when given a breaker
// through their WithBreaker options:
//
//   - In live and rampdown the new store is authoritative. A read it fails
//     or the breaker refuses is answered by the old store, which is still
//     fully written in those stages; a write goes to the old store instead,
//     with the key recorded for repair of the new one.
//   - In dualwrite and shadow the new store is secondary. While the breaker
//     is open its calls are skipped and counted, and skipped writes are
//     recorded for repair.
//   - In complete there is no fallback: a refused call returns an error
//     wrapping [ErrOpen].
//
// A call that ends because the caller's own context was canceled or ran out
// is neither a success nor a failure: the caller left, the store did not
// fail. A call that panics is a failure, whatever Settings.IsFailure says,
// and [Breaker.Do] and the dualwrite and shadowread calls complete its
// ticket before the panic goes on, so that a panicking probe cannot leave
// the breaker half-open for good.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// ErrOpen is wrapped by the error of a call the breaker refused, because it
// is open or because it is half-open and already probing.
var ErrOpen = errors.New("breaker: open")

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options. Each such error names what was wrong, as in
// "breaker: invalid input: empty name".
var ErrInvalidInput = errors.New("breaker: invalid input")

// ErrNilFunc is returned by [Breaker.Do] when the function is nil; the
// breaker is not asked and nothing is counted. It wraps [ErrInvalidInput].
var ErrNilFunc = fmt.Errorf("%w: nil function", ErrInvalidInput)

// State is the state of a breaker: closed (calls go through), open (calls
// are refused) or half-open (a few calls probe whether the store is back).
// The zero value is [Closed]. A State is a plain value, safe for concurrent
// use.
type State = gobreaker.State

// The breaker states.
const (
	Closed   = gobreaker.StateClosed
	HalfOpen = gobreaker.StateHalfOpen
	Open     = gobreaker.StateOpen
)

// Counts are the numbers of calls and their outcomes that a breaker keeps
// for its current period. The zero value is a period with no calls.
// [Breaker.Counts] returns a copy, a plain value safe for concurrent use.
type Counts = gobreaker.Counts

// Settings tune when a breaker opens and how it recovers. Each zero field
// takes the default it names, so the zero value is the default breaker.
// [WithSettings] copies it; its functions are then called from every
// goroutine that uses the breaker, and must be safe for concurrent use.
type Settings struct {
	// MaxRequests is the number of calls let through while half-open; the
	// breaker closes after that many successes. Zero means 1.
	MaxRequests uint32
	// Interval is the period after which a closed breaker forgets its
	// counts. Zero means never.
	Interval time.Duration
	// Timeout is how long the breaker stays open before it lets a probe
	// through. Zero means 30 seconds.
	Timeout time.Duration
	// ReadyToTrip decides, after each failure while closed, whether to open.
	// Nil means after more than 5 consecutive failures.
	ReadyToTrip func(counts Counts) bool
	// IsFailure decides whether an error the store returned counts against
	// it. Nil means every error does (except the caller's own cancellation,
	// which never counts). Return false for answers such as "not found" or
	// a constraint violation, which say nothing about the store's health.
	// It is not asked about a panic, a *cutover.PanicError, which always
	// counts.
	IsFailure func(err error) bool
}

// Option configures a [Breaker]. Options are immutable values made by the
// With functions of this package, safe to share between calls to [New]
// and safe for concurrent use; an invalid one, or the zero value, a nil
// Option, makes New fail. When two options set the same thing, the later
// one wins.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	settings  Settings
	providers telemetry.Providers
	errs      validate.Errors
}

// WithSettings sets the thresholds of the breaker. Without it, or for each
// zero field, the defaults that [Settings] names apply.
func WithSettings(s Settings) Option { return optionFunc(func(c *config) { c.settings = s }) }

// WithMeterProvider sets the meter provider. Without it the global one,
// otel.GetMeterProvider, is read when [New] runs. A nil mp makes New fail.
func WithMeterProvider(mp metric.MeterProvider) Option { return providers(telemetry.Meter(mp)) }

// WithLogger sets the logger of state changes. Without it slog.Default() is
// read when [New] runs. A nil l makes New fail.
func WithLogger(l *slog.Logger) Option { return providers(telemetry.Logger(l)) }

func providers(s telemetry.Setting) Option {
	return optionFunc(func(c *config) { c.errs.Add(s(&c.providers)) })
}

// Breaker is a circuit breaker around one new store. Create it with [New];
// the zero value is not usable. It is safe for concurrent use; share one
// breaker among every operation that calls the same store.
type Breaker struct {
	name      string
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	isFailure func(error) bool
	refused   error // returned, without allocating, for refused calls
	rejected  *telemetry.Counter[rejection]
}

// errCallerGone marks an outcome that must not count for or against the
// store: the caller's context ended the call.
var errCallerGone = errors.New("breaker: caller gone")

// New returns a closed breaker named name (such as "users-db"), which names
// it in metrics and logs.
//
// An empty name, a nil Option or an invalid one makes New fail with an
// error wrapping [ErrInvalidInput] that names every problem; it never
// panics.
func New(name string, opts ...Option) (*Breaker, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty name", ErrInvalidInput)
	}
	var c config
	validate.Apply(&c.errs, opts, func(o Option) { o.apply(&c) })
	s := c.settings
	if s.Interval < 0 || s.Timeout < 0 {
		c.errs.Addf("negative interval or timeout in settings (%v, %v)", s.Interval, s.Timeout)
	}
	if err := c.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	meter, _, logger := c.providers.Resolve("github.com/cutover-go/cutover/breaker")
	base := []attribute.KeyValue{telemetry.KeyBreaker.String(name)}
	b := &Breaker{
		name:      name,
		isFailure: s.IsFailure,
		refused:   fmt.Errorf("%w: %s", ErrOpen, name),
	}
	var err error
	b.rejected, err = telemetry.NewCounter(meter, "cutover.breaker.rejections",
		"Calls to the new store that the breaker refused.", "{call}", base, telemetry.KeyReason, numRejections)
	if err != nil {
		return nil, fmt.Errorf("breaker: %w", err)
	}
	transitions, err := telemetry.NewCounter(meter, "cutover.breaker.transitions",
		"State changes of the breaker, by the state entered.", "{transition}", base, attribute.Key("cutover.breaker.state"), numStates)
	if err != nil {
		return nil, fmt.Errorf("breaker: %w", err)
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: s.MaxRequests,
		Interval:    s.Interval,
		Timeout:     s.Timeout,
		ReadyToTrip: s.ReadyToTrip,
		IsExcluded:  func(err error) bool { return err == errCallerGone },
		OnStateChange: func(name string, from, to gobreaker.State) {
			transitions.Add(context.Background(), stateOf(to))
			level := slog.LevelInfo
			if to == Open {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "cutover: breaker state changed",
				"breaker", name, "from", from.String(), "to", to.String())
		},
	})
	state := attribute.NewSet(base...)
	gauge, err := meter.Int64ObservableGauge("cutover.breaker.state",
		metric.WithDescription("State of the breaker: 0 closed, 1 half-open, 2 open."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(b.cb.State()), metric.WithAttributeSet(state))
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("breaker: %w", err)
	}
	_ = gauge
	return b, nil
}

// Name returns the name given to [New].
func (b *Breaker) Name() string { return b.name }

// State returns the current state.
func (b *Breaker) State() State { return b.cb.State() }

// Counts returns the counts of the current period: requests, successes and
// failures, total and consecutive.
func (b *Breaker) Counts() Counts { return b.cb.Counts() }

// Ticket is the permission to make one call, given by [Breaker.Allow].
// Report the outcome with [Ticket.Done] exactly once, from any goroutine;
// a Ticket is for one call and is not safe for concurrent use. The zero
// value is a ticket for no call: its Done does nothing.
type Ticket struct {
	b    *Breaker
	done func(error)
}

// Allow asks whether a call may go ahead now. If not, it returns an error
// wrapping [ErrOpen] and counts the refusal; the store must not be called.
func (b *Breaker) Allow() (Ticket, error) {
	done, err := b.cb.Allow()
	if err != nil {
		reason := rejectedOpen
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			reason = rejectedTooMany
		}
		b.rejected.Add(context.Background(), reason)
		return Ticket{}, b.refused
	}
	return Ticket{b: b, done: done}, nil
}

// Done reports how the call ended: err is what the store returned and ctx
// is the caller's context. An error caused by ctx being canceled or past its
// deadline does not count: the caller left, the store did not fail. For a
// call that runs detached from the caller under a timeout of its own, pass a
// context that is never done, such as context.WithoutCancel(ctx), so that
// running out of that timeout counts as the store's failure. For a call that
// panicked, pass a *cutover.PanicError (wrapped or not): a panic always
// counts as a failure. Call Done on every path, a panicking one included
// (from a deferred function): a ticket never done keeps a half-open breaker
// waiting for its probe, refusing every other call.
func (t Ticket) Done(ctx context.Context, err error) {
	if t.done == nil {
		return
	}
	t.done(t.b.classify(ctx, err))
}

func (b *Breaker) classify(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case isPanic(err):
		return err // a panic is the store's failure, whatever else is true
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return errCallerGone
	case b.isFailure != nil && !b.isFailure(err):
		return nil
	}
	return err
}

// isPanic reports whether err is, or wraps, a *cutover.PanicError. It is
// called only for errors, so that a call that succeeded allocates nothing.
func isPanic(err error) bool {
	var pe *cutover.PanicError
	return errors.As(err, &pe)
}

// IsFailure reports whether err, returned by a call on ctx, counts as a
// failure of the store under this breaker's settings: a panic (a
// *cutover.PanicError), or an error that is not the caller's own
// cancellation and is a failure by Settings.IsFailure.
func (b *Breaker) IsFailure(ctx context.Context, err error) bool {
	c := b.classify(ctx, err)
	return c != nil && c != errCallerGone
}

// Do calls fn if the breaker allows it, and reports fn's outcome. A refused
// call returns an error wrapping [ErrOpen] without calling fn; a nil fn
// returns [ErrNilFunc]. If fn panics, the call counts as a failure and the
// panic goes on to Do's caller unchanged.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return ErrNilFunc
	}
	t, err := b.Allow()
	if err != nil {
		return err
	}
	returned := false
	defer func() {
		if !returned { // fn panicked, or called runtime.Goexit
			t.Done(ctx, errPanicked)
		}
	}()
	err = fn(ctx)
	returned = true
	t.Done(ctx, err)
	return err
}

// errPanicked is the outcome that [Breaker.Do] reports for a function that
// panicked; the panic itself goes on to the caller.
var errPanicked = &cutover.PanicError{Value: "breaker: the guarded call panicked"}

// rejection says why the breaker refused a call.
type rejection uint8

const (
	rejectedOpen    rejection = iota // the breaker is open
	rejectedTooMany                  // half-open, and its probes are all out
	numRejections
)

func (r rejection) String() string { return [numRejections]string{"open", "too_many_requests"}[r] }

// stateOf is a State as the transitions counter's attribute.
type stateOf uint8

const numStates = stateOf(Open) + 1

func (s stateOf) String() string { return State(s).String() }
