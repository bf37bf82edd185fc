package storecall

import (
	"context"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Detached is the context of a call that must outlive its caller: it
// carries the caller's values, none of its cancellation, and a deadline of
// its own. Create one with [Detach] and call [Detached.Release] when the
// call is over; the zero value is not usable. It is safe for concurrent use.
//
// It does what context.WithTimeout(context.WithoutCancel(ctx), timeout)
// does, for a fraction of the cost when the store is fast: it allocates
// once, and reads the monotonic clock, makes its Done channel and the timer
// that closes it only when someone asks for them. The timeout runs from the
// first time the call looks at the context (Deadline, Done, Err, or a
// context derived from it), which for a store that uses its context is
// where its work starts: a database driver asks for Done before it takes a
// connection. A store function that never looks at its context pays for
// none of it, and could not have been bounded by it anyway.
type Detached struct {
	parent  context.Context // for Value only
	timeout time.Duration   // no deadline if not positive

	// start is the monotonic reading at which the timeout began, or
	// notStarted while no one has looked at d.
	start atomic.Int64

	// state is how d ended (an end), with the bit armed once watch has
	// made the Done channel. Until then d ends with one compare-and-swap;
	// from then on, under the watch's lock.
	state atomic.Uint32
	watch atomic.Pointer[watch] // made by the first Done or AfterFunc
}

// armed is the bit of Detached.state set once the Done channel is made.
const armed = 1 << 7

// watch is what a [Detached] makes only when someone waits on it.
type watch struct {
	mu     sync.Mutex
	done   chan struct{} // closed when d ends
	timer  *time.Timer   // ends d at the deadline; made with done
	afters map[*afterFunc]struct{}
}

// end says how a [Detached] ended: a plain value rather than the error
// itself, so that ending one stores no pointer.
type end uint8

const (
	live     end = iota // not ended
	expired             // the timeout ran out
	released            // Release was called first
)

// err returns the error of Err for e.
func (e end) err() error {
	switch e {
	case expired:
		return context.DeadlineExceeded
	case released:
		return context.Canceled
	}
	return nil
}

// epoch is the origin of the monotonic readings: time.Since(epoch) reads
// the monotonic clock alone, at half the cost of time.Now.
var epoch = time.Now()

// since returns the monotonic time elapsed since epoch.
func since() time.Duration { return time.Since(epoch) }

// Detach returns a context for a call that must outlive the caller: not
// canceled with ctx, carrying its values, and bounded by timeout if it is
// positive.
func Detach(ctx context.Context, timeout time.Duration) *Detached {
	d := &Detached{parent: ctx, timeout: timeout}
	d.start.Store(notStarted)
	return d
}

// notStarted is the start of a [Detached] that no one has looked at yet.
// Monotonic readings can be negative (in a synctest bubble, whose clock
// began before epoch), but never this far back.
const notStarted = math.MinInt64

// Release ends d, as the cancel function of context.WithTimeout does: from
// then on Err returns context.Canceled, if d had not ended already, and
// Done is closed. Call it once the call is over; calling it again does
// nothing.
func (d *Detached) Release() { d.finish(released) }

// finish ends d as e says, if it has not ended yet.
func (d *Detached) finish(e end) {
	for {
		s := d.state.Load()
		switch {
		case end(s&^armed) != live:
			return
		case s&armed == 0:
			if d.state.CompareAndSwap(s, uint32(e)) {
				return // nothing was armed: the common case of a fast store
			}
		default:
			w := d.watch.Load()
			w.mu.Lock()
			d.endLocked(w, e)
			w.mu.Unlock()
			return
		}
	}
}

// ended returns how d ended, or live.
func (d *Detached) ended() end { return end(d.state.Load() &^ armed) }

// Deadline returns the time the call's timeout runs out, if it has one.
func (d *Detached) Deadline() (time.Time, bool) {
	if d.timeout <= 0 {
		return time.Time{}, false
	}
	now := time.Now() // for a wall clock reading as current as context.WithTimeout's
	return now.Add(d.left(now.Sub(epoch))), true
}

// left returns how long the call has left at the monotonic reading now,
// starting the timeout at now if no one has looked at d before.
func (d *Detached) left(now time.Duration) time.Duration {
	start := d.start.Load()
	if start == notStarted {
		if d.start.CompareAndSwap(notStarted, int64(now)) {
			start = int64(now)
		} else {
			start = d.start.Load() // another goroutine looked first
		}
	}
	return time.Duration(start) + d.timeout - now
}

// Done returns a channel closed when the timeout runs out or d is released.
func (d *Detached) Done() <-chan struct{} {
	w := d.watching()
	w.mu.Lock()
	defer w.mu.Unlock()
	d.armLocked(w)
	return w.done
}

// watching returns the watch of d, made if need be.
func (d *Detached) watching() *watch {
	if w := d.watch.Load(); w != nil {
		return w
	}
	d.watch.CompareAndSwap(nil, new(watch))
	return d.watch.Load()
}

// Err returns nil while the call has time left and d is not released,
// context.DeadlineExceeded once the timeout has run out, and
// context.Canceled once d was released first.
func (d *Detached) Err() error {
	if d.ended() == live && d.timeout > 0 && d.left(since()) <= 0 {
		d.finish(expired)
	}
	return d.ended().err()
}

// Value returns the value the caller's context holds for key, except a
// context of the type that context.WithCancel makes: the context package
// looks the nearest one up that way (for context.Cause and to link derived
// contexts to it), and like context.WithoutCancel, d hides the caller's.
func (d *Detached) Value(key any) any {
	v := d.parent.Value(key)
	if v != nil && reflect.TypeOf(v) == cancelCtxType {
		return nil
	}
	return v
}

// cancelCtxType is the type of the contexts that context.WithCancel makes,
// which is also the type of the value the context package looks up, with a
// key of its own, to find the nearest of them.
var cancelCtxType = func() reflect.Type {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return reflect.TypeOf(ctx)
}()

// AfterFunc arranges for f to run on its own goroutine once d is done, and
// returns a function that stops that from happening, reporting whether it
// did. The context package calls it for every context derived from d, so
// that deriving one starts no goroutine of its own.
func (d *Detached) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	w := d.watching()
	w.mu.Lock()
	defer w.mu.Unlock()
	d.armLocked(w)
	if d.ended() != live {
		go f()
		return func() bool { return false }
	}
	if w.afters == nil {
		w.afters = make(map[*afterFunc]struct{})
	}
	w.afters[a] = struct{}{}
	return func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		_, ok := w.afters[a]
		delete(w.afters, a)
		return ok
	}
}

type afterFunc struct{ f func() }

// String names d, as the contexts of package context name themselves.
func (d *Detached) String() string { return "storecall.Detached" }

// armLocked makes the Done channel, and the timer that closes it at the
// deadline, if they are not made yet. w.mu must be held.
func (d *Detached) armLocked(w *watch) {
	if w.done != nil {
		return
	}
	w.done = make(chan struct{})
	s := d.state.Load()
	for !d.state.CompareAndSwap(s, s|armed) {
		s = d.state.Load()
	}
	switch {
	case end(s) != live:
		close(w.done)
	case d.timeout > 0:
		left := d.left(since())
		if left <= 0 {
			d.endLocked(w, expired)
			return
		}
		w.timer = time.AfterFunc(left, d.expire)
	}
}

// expire ends d when its timer fires.
func (d *Detached) expire() { d.finish(expired) }

// endLocked ends d, which is armed, as e says, if it has not ended yet: it
// closes Done, stops the timer and runs the functions given to AfterFunc.
// w.mu must be held.
func (d *Detached) endLocked(w *watch, e end) {
	if d.ended() != live {
		return
	}
	d.state.Store(armed | uint32(e))
	close(w.done)
	if w.timer != nil {
		w.timer.Stop()
	}
	for a := range w.afters {
		go a.f()
	}
	w.afters = nil
}
