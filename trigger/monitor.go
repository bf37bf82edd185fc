package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/validate"
)

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options. Each such error names what was wrong, as in
// "trigger: invalid input: nil demote function".
var ErrInvalidInput = errors.New("trigger: invalid input")

// Defaults of the monitor's settings.
const (
	DefaultResolution    = 10 * time.Second // the width of a bucket
	DefaultInterval      = time.Second      // how often Run evaluates
	DefaultActionTimeout = 10 * time.Second // bounds one call of an action
)

// Option configures a [Monitor]. Options are immutable values made by the
// With functions of this package, safe to share between calls to [New] and
// safe for concurrent use; an invalid one, or the zero value, a nil Option,
// makes New fail. When two options set the same thing, the later one wins.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	rules         []Rule
	alarm         AlarmFunc
	history       *expandcontract.Migration
	now           func() time.Time
	resolution    time.Duration
	interval      time.Duration
	actionTimeout time.Duration
	instance      string
	logger        *slog.Logger
	errs          validate.Errors
}

// WithRules replaces the triggers, [DefaultRules] without it, with rules:
// at most one per [Kind]; a kind left out is not watched. No rules at all
// makes [New] fail.
func WithRules(rules ...Rule) Option {
	return optionFunc(func(c *config) { c.rules = append([]Rule(nil), rules...) })
}

// WithAlarm sets the hook of [Alarm] triggers, which tells a person. With
// [WithAlarmHistory] too, it is called once an alarm is recorded, and not
// for one that another instance recorded within its quiet period (that
// instance's hook told); if recording fails, it is called all the same,
// but not again at the retries. Without either option a firing alarm is
// logged at level error and nothing else. A nil f makes [New] fail.
func WithAlarm(f AlarmFunc) Option {
	return optionFunc(func(c *config) { c.alarm = f; c.errs.NotNil(f, "WithAlarm: nil function") })
}

// WithAlarmHistory records every firing of an [Alarm] trigger in m's
// history, with [expandcontract.Migration.Alarm]: an event of kind
// "alarm" with the trigger's kind as reason, the firing's figures as
// detail and the monitor's instance (the host name if it has none) as
// actor, at most once per the rule's window whichever instance fires, so
// that a fleet sees one record where every instance fires. The stages are
// left alone: an alarm is for a person to decide. A failed record is an
// error of the action, shown in the health and retried at the next
// evaluation. A nil m makes [New] fail.
func WithAlarmHistory(m *expandcontract.Migration) Option {
	return optionFunc(func(c *config) { c.history = m; c.errs.NotNil(m, "WithAlarmHistory: nil migration") })
}

// WithClock sets the clock that places evaluations in time. Without it
// time.Now is used. A nil now makes [New] fail.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now; c.errs.NotNil(now, "WithClock: nil clock") })
}

// WithResolution sets the width of the time buckets that windows are made
// of; every rule's window must be a whole number of them. The default is
// [DefaultResolution]. A narrower bucket slides a window more smoothly and
// costs a few words of memory per bucket.
func WithResolution(d time.Duration) Option { return optionFunc(func(c *config) { c.resolution = d }) }

// WithInterval sets how often [Monitor.Run] evaluates the triggers. The
// default is [DefaultInterval]. Observations land in the bucket of the last
// evaluation, so one that far apart from a bucket's edge may land in the
// bucket before.
func WithInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.interval = d }) }

// WithActionTimeout bounds each call of an action. The default is
// [DefaultActionTimeout].
func WithActionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.actionTimeout = d })
}

// WithInstance names this instance in firings and in the health, as
// expandcontract's instances are named. Without it the name is empty.
func WithInstance(name string) Option { return optionFunc(func(c *config) { c.instance = name }) }

// WithLogger sets the logger of firings and failed actions. Without it
// slog.Default() is read when [New] runs. A nil l makes New fail.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l; c.errs.NotNil(l, "WithLogger: nil logger") })
}

// The counters of a bucket.
const (
	newCalls    = iota // calls of the new store that reached it and were not canceled
	newFailed          // those that failed
	newNanos           // the summed latency of the new store's successful calls
	newTimed           // those calls
	oldNanos           // the same for the old store
	oldTimed           //
	authCalls          // authoritative calls of the new store, refused ones included
	unanswered         // those the old store answered, or that failed in complete
	comparisons        // comparisons with a verdict
	mismatches         // those that mismatched
	numCounters
)

// bucket holds the counts of one stretch of time, the bucket number epoch.
// It is padded to two cache lines so that buckets do not share one.
type bucket struct {
	epoch atomic.Int64
	n     [numCounters]atomic.Int64
	_     [128 - (numCounters+1)*8%128]byte
}

// trigger is one rule and the state of its evaluation, which only the
// evaluating goroutine touches, under Monitor.eval.
type trigger struct {
	rule    Rule
	buckets int64 // the window in buckets
	state   State
	since   time.Time // when it fired, while firing
	calm    time.Time // since when it has not breached, while firing; zero if it breaches
	acted   time.Time // the last call of its action
	actions int64
	failed  bool // the last action returned an error: retry at the next evaluation
	lastErr string
	outcome Outcome // how the last action ended
	detail  string  // what its Result said
	figure  float64
	samples int64
}

// Monitor watches one migration through the wrappers it observes, as a
// [cutover.Observer], and evaluates its triggers: each figure over its
// sliding window of fixed time buckets. A breaching trigger calls its
// action: [Demote] triggers the [DemoteFunc] given to [New], [Alarm]
// triggers the [AlarmFunc] of [WithAlarm].
//
// Observing costs a few atomic additions to the current bucket and no
// clock read: the bucket number is the one the last evaluation set, and the
// latency is the one the wrapper measured. Evaluation runs on the goroutine
// that calls [Monitor.Run] (or [Monitor.Evaluate]), once per interval; the
// monitor starts no goroutine of its own, so nothing outlives Run.
//
// A trigger fires when its figure crosses its threshold with at least its
// minimum samples in the window; its action is called then and, while it
// stays firing, again at most once per window (a demotion an operator
// lifted while the figures are still bad is made again a window later). An
// action that failed is retried at the next evaluation. A firing trigger
// re-arms once a whole window has gone by without a breach (below the
// threshold, or too few samples to tell); only then can it fire anew.
//
// Create one with [New]; the zero value is not usable. Give the same
// monitor to every wrapper of the migration (dualwrite.WithObserver,
// shadowread.WithObserver). It is safe for concurrent use.
type Monitor struct {
	migration     string
	instance      string
	demote        DemoteFunc
	alarm         AlarmFunc
	history       *expandcontract.Migration
	latency       bool // a rule watches the latency: the wrappers must time their calls
	now           func() time.Time
	resolution    time.Duration
	interval      time.Duration
	actionTimeout time.Duration
	logger        *slog.Logger

	cur  atomic.Int64 // the bucket number observations go to
	ring []bucket
	roll sync.Mutex // held to clear a bucket for a new number

	start    time.Time // the bucket numbers count from it
	eval     sync.Mutex
	triggers []*trigger
	health   atomic.Pointer[Health]

	closed    chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup
}

var _ cutover.LatencyObserver = (*Monitor)(nil)

// New returns a monitor of the migration named migration, whose [Demote]
// triggers call demote. An empty migration, a nil demote, a nil Option or
// an invalid one (a rule with a threshold, window or minimum out of range,
// two rules of one kind, a window that is not a whole number of buckets)
// makes New fail with an error wrapping [ErrInvalidInput] that names every
// problem; it never panics.
func New(migration string, demote DemoteFunc, opts ...Option) (*Monitor, error) {
	c := config{rules: DefaultRules(), now: time.Now, resolution: DefaultResolution,
		interval: DefaultInterval, actionTimeout: DefaultActionTimeout}
	if migration == "" {
		c.errs.Addf("empty migration name")
	}
	c.errs.NotNil(demote, "nil demote function")
	validate.Apply(&c.errs, opts, func(o Option) { o.apply(&c) })
	if c.resolution <= 0 {
		c.errs.Addf("resolution must be positive, got %v", c.resolution)
	}
	if c.interval <= 0 {
		c.errs.Addf("interval must be positive, got %v", c.interval)
	}
	if c.actionTimeout <= 0 {
		c.errs.Addf("action timeout must be positive, got %v", c.actionTimeout)
	}
	if len(c.rules) == 0 {
		c.errs.Addf("no rules")
	}
	var seen [numKinds]bool
	for i, r := range c.rules {
		checkRule(&c.errs, i, r, c.resolution)
		if r.Kind < numKinds {
			if seen[r.Kind] {
				c.errs.Addf("rule %d: a second %s rule", i+1, r.Kind)
			}
			seen[r.Kind] = true
		}
	}
	if err := c.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	m := &Monitor{migration: migration, instance: c.instance, demote: demote, alarm: c.alarm, history: c.history,
		now: c.now, resolution: c.resolution, interval: c.interval, actionTimeout: c.actionTimeout,
		logger: c.logger, closed: make(chan struct{})}
	var longest int64
	for _, r := range c.rules {
		t := &trigger{rule: r, buckets: int64(r.Window / c.resolution)}
		longest = max(longest, t.buckets)
		m.latency = m.latency || r.Kind == Latency
		m.triggers = append(m.triggers, t)
	}
	// One bucket more than the longest window: the bucket being cleared
	// for a new number is never one a window still reads.
	m.ring = make([]bucket, longest+1)
	m.start = m.now()
	m.health.Store(m.snapshot(time.Time{}))
	return m, nil
}

func checkRule(errs *validate.Errors, i int, r Rule, resolution time.Duration) {
	where := fmt.Sprintf("rule %d (%s)", i+1, r.Kind)
	switch {
	case r.Kind >= numKinds:
		errs.Addf("rule %d: unknown kind %d", i+1, uint8(r.Kind))
	case r.Kind == Latency && !(r.Threshold > 0):
		errs.Addf("%s: threshold must be a positive ratio, got %v", where, r.Threshold)
	case r.Kind != Latency && !(r.Threshold > 0 && r.Threshold <= 1):
		errs.Addf("%s: threshold must be a rate in (0, 1], got %v", where, r.Threshold)
	}
	if r.Window <= 0 || resolution > 0 && r.Window%resolution != 0 {
		errs.Addf("%s: window must be a positive whole number of %v buckets, got %v", where, resolution, r.Window)
	}
	if r.MinSamples <= 0 {
		errs.Addf("%s: minimum samples must be positive, got %d", where, r.MinSamples)
	}
	if r.Action >= numActions {
		errs.Addf("%s: unknown action %d", where, uint8(r.Action))
	}
}

// ObservesLatency reports whether the monitor has a [Latency] trigger,
// the only one that uses the latency of store calls: the wrappers read no
// clock for a monitor without one (see [cutover.LatencyObserver]).
func (m *Monitor) ObservesLatency() bool { return m.latency }

// Migration returns the migration name given to [New].
func (m *Monitor) Migration() string { return m.migration }

// add adds v to counter k of the current bucket.
func (m *Monitor) add(k int, v int64) {
	b, ok := m.bucket()
	if ok {
		b.n[k].Add(v)
	}
}

// bucket returns the current bucket, cleared for its number if it held an
// older one, or false if the evaluation moved on so far that the number
// read is no longer in the ring (the observation is dropped).
func (m *Monitor) bucket() (*bucket, bool) {
	e := m.cur.Load()
	b := &m.ring[e%int64(len(m.ring))]
	if b.epoch.Load() == e {
		return b, true
	}
	m.roll.Lock()
	defer m.roll.Unlock()
	switch held := b.epoch.Load(); {
	case held < e:
		for i := range b.n {
			b.n[i].Store(0)
		}
		b.epoch.Store(e) // after the counts: an adder that sees e sees them cleared
	case held > e:
		return nil, false
	}
	return b, true
}

// ObserveCall counts one store call: for the error rate and the
// availability if it was the new store's, and its latency if it succeeded.
func (m *Monitor) ObserveCall(_ context.Context, c cutover.CallEvent) {
	if c.Outcome == cutover.CallCanceled {
		return // the caller left: nothing is known of the store
	}
	b, ok := m.bucket()
	if !ok {
		return
	}
	if c.Side == cutover.New {
		if c.Role == cutover.RoleAuthoritative {
			b.n[authCalls].Add(1)
			if c.Stage == cutover.Complete && c.Outcome.Failed() {
				b.n[unanswered].Add(1) // nothing falls back in complete
			}
		}
		if c.Outcome == cutover.CallRefused {
			return
		}
		b.n[newCalls].Add(1)
		if c.Outcome.Failed() {
			b.n[newFailed].Add(1)
			return
		}
	}
	if c.Outcome != cutover.CallOK || c.Role == cutover.RoleFallback {
		return
	}
	if c.Side == cutover.New {
		b.n[newNanos].Add(int64(c.Duration))
		b.n[newTimed].Add(1)
	} else {
		b.n[oldNanos].Add(int64(c.Duration))
		b.n[oldTimed].Add(1)
	}
}

// ObserveFallback counts an authoritative call of the new store that the
// old one answered.
func (m *Monitor) ObserveFallback(context.Context, cutover.FallbackEvent) { m.add(unanswered, 1) }

// ObserveComparison counts a comparison that gave a verdict.
func (m *Monitor) ObserveComparison(_ context.Context, c cutover.ComparisonEvent) {
	switch c.Result {
	case cutover.CompareMismatch:
		b, ok := m.bucket()
		if ok {
			b.n[comparisons].Add(1)
			b.n[mismatches].Add(1)
		}
	case cutover.CompareMatch:
		m.add(comparisons, 1)
	}
}
