package trigger

import (
	"context"
	"fmt"
	"time"
)

// Kind names the figure a trigger watches. The zero value is [ErrorRate].
// It is a plain value, safe for concurrent use.
type Kind uint8

// The figures a trigger can watch, each over its window.
const (
	// ErrorRate is the new store's failed calls (errors, timeouts, panics)
	// over its calls, in every role. Calls its breaker refused and calls
	// the caller canceled count in neither: they say nothing of the store.
	// It fires above the threshold.
	ErrorRate Kind = iota
	// Latency is the mean latency of the new store's successful calls over
	// that of the old store's, in the roles where both serve the same
	// requests (authoritative, secondary, shadow; not fallback). It fires
	// above the threshold, a ratio. The samples are the smaller of the two
	// stores' counts.
	Latency
	// MismatchRate is the shadow comparisons that found the stores
	// answering differently over those that gave a verdict (a match or a
	// mismatch; failed, raced and too large comparisons count in neither).
	// It fires above the threshold.
	MismatchRate
	// Availability is the authoritative calls of the new store answered
	// without a fallback over those calls, refused ones included. In
	// complete, where nothing falls back, a failed authoritative call counts
	// as unanswered. It fires below the threshold.
	Availability
	numKinds
)

var kindNames = [numKinds]string{"error_rate", "latency", "mismatch_rate", "availability"}

// String returns the name of k, as JSON and logs say it.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText returns the name of k.
func (k Kind) MarshalText() ([]byte, error) { return marshal(k, k < numKinds) }

// Action says what a firing trigger does. The zero value is [Demote]. It is
// a plain value, safe for concurrent use.
type Action uint8

// The actions of a firing trigger.
const (
	// Demote calls the monitor's [DemoteFunc], which a service wires to
	// the migration's demotion, and makes the readiness endpoint answer 503.
	Demote Action = iota
	// Alarm calls the monitor's [AlarmFunc], or logs, so that a person
	// decides; readiness is unchanged.
	Alarm
	numActions
)

// String returns the name of a, as JSON and logs say it.
func (a Action) String() string {
	if a < numActions {
		return [numActions]string{"demote", "alarm"}[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// MarshalText returns the name of a.
func (a Action) MarshalText() ([]byte, error) { return marshal(a, a < numActions) }

func marshal(v fmt.Stringer, valid bool) ([]byte, error) {
	if !valid {
		return nil, fmt.Errorf("trigger: marshal %s: unknown value", v)
	}
	return []byte(v.String()), nil
}

// Rule is one trigger: the figure it watches, the threshold that makes it
// fire, the window the figure is taken over, the samples it needs before it
// may fire, and what it does then. It is a plain settings value. A zero
// field is not a default: [New] refuses a rule whose Threshold, Window or
// MinSamples is not positive; start from [DefaultRules] to change one.
type Rule struct {
	Kind Kind
	// Threshold: a rate in (0, 1] for ErrorRate, MismatchRate and
	// Availability; the ratio of the means for Latency.
	Threshold float64
	// Window is the span the figure is taken over: a whole number of the
	// monitor's buckets ([WithResolution]).
	Window time.Duration
	// MinSamples is the number of calls (or comparisons) the window must
	// hold before the trigger may fire, so that a quiet instance's few
	// failures do not demote the migration.
	MinSamples int64
	Action     Action
}

// Default figures of the four triggers.
const (
	DefaultErrorRate    = 0.05 // new-store calls failing, over 5 minutes: demote
	DefaultLatencyRatio = 2.0  // new-store mean latency over the old store's, over 10 minutes: alarm
	DefaultMismatchRate = 0.01 // shadow comparisons mismatching, over 10 minutes: alarm
	DefaultAvailability = 0.95 // authoritative new-store calls answered, over 2 minutes: demote
	DefaultMinSamples   = 100  // calls or comparisons in a window before any trigger fires
)

// DefaultRules returns the four triggers with their default figures, the
// zero-downtime playbook's automatic rollback: error rate above 5% over
// 5 minutes demotes; latency above twice the old store's over 10 minutes
// alarms; availability below 95% over 2 minutes demotes. A mismatch rate
// above 1% over 10 minutes alarms: a mismatch may be a difference the
// reader's compare function should ignore, so a person confirms before the
// migration goes back. Each needs [DefaultMinSamples]. The slice is new on
// every call.
func DefaultRules() []Rule {
	return []Rule{
		{Kind: ErrorRate, Threshold: DefaultErrorRate, Window: 5 * time.Minute, MinSamples: DefaultMinSamples, Action: Demote},
		{Kind: Latency, Threshold: DefaultLatencyRatio, Window: 10 * time.Minute, MinSamples: DefaultMinSamples, Action: Alarm},
		{Kind: MismatchRate, Threshold: DefaultMismatchRate, Window: 10 * time.Minute, MinSamples: DefaultMinSamples, Action: Alarm},
		{Kind: Availability, Threshold: DefaultAvailability, Window: 2 * time.Minute, MinSamples: DefaultMinSamples, Action: Demote},
	}
}

// breached reports whether figure crosses the rule's threshold.
func (r Rule) breached(figure float64) bool {
	if r.Kind == Availability {
		return figure < r.Threshold
	}
	return figure > r.Threshold
}

// Firing is what a firing trigger's action gets. The zero value describes
// nothing; the monitor passes filled ones and keeps no reference.
type Firing struct {
	Migration string    // the monitor's migration
	Instance  string    // the monitor's instance ([WithInstance]); may be empty
	Rule      Rule      // the trigger that fired
	Figure    float64   // the figure over the window
	Samples   int64     // the calls or comparisons the figure is taken over
	At        time.Time // the evaluation that fired, by the monitor's clock
	Repeat    bool      // the trigger was already firing: this is its action once more, a window later
	Retry     bool      // the last call of its action failed: this is that call again
}

// String describes f for logs.
func (f Firing) String() string {
	return fmt.Sprintf("%s %s: %s %.4g (threshold %.4g) over %v, %d samples",
		f.Migration, f.Rule.Action, f.Rule.Kind, f.Figure, f.Rule.Threshold, f.Rule.Window, f.Samples)
}

// DemoteFunc is the action of a [Demote] trigger: a service wires it to
// the migration's demotion (the fleet-wide ceiling in the metadata;
// see [DemoteTo]). It runs on the goroutine that evaluates
// ([Monitor.Run]), bounded by the action timeout, and says what it did in
// its [Result], which the health shows; an error is logged, shown in the
// health and retried at the next evaluation. It must be safe to call
// again for the same firing.
type DemoteFunc func(ctx context.Context, f Firing) (Result, error)

// AlarmFunc is the hook of an [Alarm] trigger: it tells a person. It runs
// on the goroutine that evaluates, bounded by the action timeout.
type AlarmFunc func(ctx context.Context, f Firing)

// Result is what an action did with a firing. The zero value says that it
// took effect.
type Result struct {
	// Skipped says that the action did nothing and that this is no
	// failure, so it is not retried: a demotion made needless by another
	// instance's, or by a ceiling as low in force, or held back by the
	// quiet period after a lift; an alarm that another instance recorded
	// within its quiet period.
	Skipped bool
	// Detail says what the action did, or why it did nothing, for the
	// health and the logs. It may be empty.
	Detail string
}

// UnmarshalText sets k from its name.
func (k *Kind) UnmarshalText(text []byte) error { return unmarshal(k, numKinds, text, "kind") }

// UnmarshalText sets a from its name.
func (a *Action) UnmarshalText(text []byte) error { return unmarshal(a, numActions, text, "action") }

// unmarshal sets *v to the value below n whose name is text.
func unmarshal[E interface {
	~uint8
	String() string
}](v *E, n E, text []byte, what string) error {
	for e := range n {
		if e.String() == string(text) {
			*v = e
			return nil
		}
	}
	return fmt.Errorf("trigger: unknown %s %q", what, text)
}
