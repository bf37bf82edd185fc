package cutover

import (
	"context"
	"time"
)

// Observer receives what the dualwrite and shadowread wrappers see of one
// migration: every store call, every fallback to the old store and every
// shadow comparison's result. A wrapper given one (dualwrite.WithObserver,
// shadowread.WithObserver) calls it on the request's goroutine, or on the
// comparison's for an asynchronous shadow read, so an implementation must
// be safe for concurrent use and cheap: it runs on the hot path, and must
// not block or call the stores. A wrapper without an observer calls none and
// pays nothing for the hook. The events are plain values that the observer
// may keep.
type Observer interface {
	// ObserveCall reports one store call, after it returned (or panicked).
	ObserveCall(ctx context.Context, c CallEvent)
	// ObserveFallback reports an authoritative call of the new store that
	// the old store answered in its place.
	ObserveFallback(ctx context.Context, f FallbackEvent)
	// ObserveComparison reports how one shadow comparison ended.
	ObserveComparison(ctx context.Context, c ComparisonEvent)
}

// LatencyObserver is an [Observer] that says whether it uses the latency
// of store calls ([CallEvent.Duration]). A wrapper asks once, when it is
// made; given one that answers false, it reads no clock for the observer,
// and the events' Duration is zero unless the wrapper timed the call for
// its own metrics. An observer that does not implement it gets every
// call's latency.
type LatencyObserver interface {
	Observer
	// ObservesLatency reports whether the observer uses the latencies.
	ObservesLatency() bool
}

// CallEvent is one call of one store by a wrapper. The zero value is an
// authoritative call of the old store in off that succeeded at once.
type CallEvent struct {
	Op       string        // the wrapper's operation name
	Stage    Stage         // the stage of the request
	Side     Side          // the store called
	Role     Role          // why it was called
	Outcome  Outcome       // how the call ended
	Duration time.Duration // the call's latency; zero when the wrapper measured none (a refused call, or see [LatencyObserver])
}

// FallbackEvent is an authoritative call of the new store, in live or rampdown,
// that the old store answered in its place. The zero value names no
// operation and the reason [FallbackRefused].
type FallbackEvent struct {
	Op     string         // the wrapper's operation name
	Stage  Stage          // the stage of the request
	Reason FallbackReason // why the new store did not answer
}

// ComparisonEvent is the result of one shadow comparison. The zero value names
// no operation and the result [CompareMatch].
type ComparisonEvent struct {
	Op     string           // the reader's operation name
	Stage  Stage            // the stage of the request
	Result ComparisonResult // how the comparison ended
}

// Role says why a store was called. The zero value is [RoleAuthoritative]. It
// is a plain value, safe for concurrent use.
type Role uint8

// The roles of a store call, as the cutover.role metric attribute says them.
const (
	RoleAuthoritative Role = iota // its answer is the caller's
	RoleSecondary                 // written after the authoritative store
	RoleShadow                    // read to compare with the authoritative answer
	RoleFallback                  // called because the authoritative new store failed
)

// String returns the attribute value of r.
func (r Role) String() string {
	return name(r, []string{"authoritative", "secondary", "shadow", "fallback"})
}

// Outcome says how a store call ended. The zero value is [CallOK]. It is a
// plain value, safe for concurrent use.
type Outcome uint8

// The outcomes of a store call, as the cutover.outcome metric attribute says
// them.
const (
	CallOK       Outcome = iota // returned no error
	CallError                   // returned an error
	CallTimeout                 // the library's own timeout for the call ran out
	CallCanceled                // the caller's context was done: the store is not to blame
	CallPanic                   // panicked
	CallRefused                 // not called: the new store's breaker was open
)

// String returns the attribute value of o.
func (o Outcome) String() string {
	return name(o, []string{"ok", "error", "timeout", "canceled", "panic", "refused"})
}

// Failed reports whether o counts against the store: an error, a timeout
// or a panic. A call the caller canceled, and one the breaker refused, did
// not fail in the store.
func (o Outcome) Failed() bool { return o == CallError || o == CallTimeout || o == CallPanic }

// FallbackReason says why the old store answered for the new one. The zero
// value is [FallbackRefused]. It is a plain value, safe for concurrent use.
type FallbackReason uint8

// The reasons of a fallback, as the cutover.reason metric attribute says
// them.
const (
	FallbackRefused FallbackReason = iota // the new store's breaker refused the call
	FallbackFailed                        // the call to the new store failed
)

// String returns the attribute value of r.
func (r FallbackReason) String() string { return name(r, []string{"refused", "failed"}) }

// ComparisonResult says how a shadow comparison ended. The zero value is
// [CompareMatch]. It is a plain value, safe for concurrent use.
type ComparisonResult uint8

// The results of a comparison, as the cutover.reason attribute of the
// cutover.shadowread.comparisons counter says them.
const (
	CompareMatch    ComparisonResult = iota // the two answers are equal
	CompareMismatch                         // they differ
	CompareError                            // the other store's read failed: nothing to compare
	CompareRace                             // a write landed between the two reads
	CompareTooLarge                         // the comparison hit its limits: no verdict
)

// String returns the attribute value of r.
func (r ComparisonResult) String() string {
	return name(r, []string{"match", "mismatch", "error", "race", "too_large"})
}

func name[E ~uint8](e E, names []string) string {
	if int(e) < len(names) {
		return names[e]
	}
	return "unknown"
}
