package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/hlc"
)

// clock stamps the versioned writes of every Writer of the process made
// without [WithClock]: one clock, so that the versions one process hands
// out grow across all its operations.
var clock = hlc.New(nil)

// WithClock makes the writer stamp its versioned writes with a hybrid
// logical clock of its own that follows now instead of time.Now. It is
// for tests that play instances whose clocks differ, such as one running
// 50ms ahead of another; a service leaves it out, so that all its writers
// share one clock. A nil now makes [New] fail.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.clock = hlc.New(now); c.errs.NotNil(now, "WithClock: nil clock") })
}

// WriteVersioned is [Writer.Write] for stores that keep a version per key
// and apply a write only over a lower one, such as the rows of package
// sqlrow. It calls write once per store with a [cutover.Stamp] saying which
// store to write and at what version, and returns the version the key was
// written at.
//
// In a serial dual write the authoritative store orders the key's writes:
// its call has Stamp.First set and a fresh version from the writer's
// hybrid logical clock. If the store holds that version or a higher one
// already (a write stamped by an instance whose clock runs ahead), it
// returns the version it holds and an error wrapping
// cutover.ErrStaleVersion; the clock then moves past it and the call is
// made again with a new version. The secondary's call gets the version the
// authoritative store took. Two racing writes of one key therefore reach
// the secondary with versions in the order the authoritative store applied
// them. A fallback write to the old store, in live and rampdown, orders the
// write in the authoritative store's place. With [WithConcurrentWrites]
// both stores are written at once with the same version and neither call
// has First set.
//
// A store called without First that holds a higher version than the
// write's answers cutover.ErrStaleVersion too, with that version. The
// higher version may belong to a later write, or to an earlier one stamped
// by an instance whose clock runs ahead and ordered by the other store (a
// fallback in live while this instance writes the new store; two instances
// resolving different stages; concurrent writes). The store cannot tell
// which, so the write starts over, both stores, at a version above it:
// the write has not returned yet, so whichever write the stores keep in
// the end, no acknowledged write is lost. A store function that answers
// such a call with success instead yields to the higher version; then the
// last write of a key can be lost when two instances whose clocks differ
// write it through different stores less than the clocks' skew apart.
//
// The calls of the ordering store, and the starts over, are made up to
// [MaxStaleRetries] times each. When a write still finds a higher version
// after that, it returns an error wrapping cutover.ErrStaleVersion and
// records the key for repair, reason cutover.Ambiguous: the authoritative
// store may hold the write, and the other a newer version.
//
// The version a write function returns is used only with
// cutover.ErrStaleVersion, and otherwise ignored.
func (w *Writer) WriteVersioned(ctx context.Context, key string, write func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)) (cutover.Version, error) {
	if write == nil {
		return 0, ErrNilFunc
	}
	f := &versioned{write: write, clock: w.clock, concurrent: w.concurrent}
	for starts := 0; ; starts++ {
		f.start()
		if _, err := run(ctx, w, key, f); err != nil {
			return 0, err
		}
		held := max(f.newer[cutover.Old], f.newer[cutover.New])
		if held == 0 {
			return f.version, nil
		}
		w.clock.Observe(held)
		if starts == MaxStaleRetries {
			err := fmt.Errorf("dualwrite: %s %q: version %d: %w (%d) after %d starts",
				w.op, key, f.version, cutover.ErrStaleVersion, held, starts+1)
			behind := cutover.New // the store holding the write, under the other's newer version
			if f.newer[cutover.New] > f.newer[cutover.Old] {
				behind = cutover.Old
			}
			if rerr := w.record(ctx, w.stages.Stage(ctx), key, behind, cutover.Ambiguous, err); rerr != nil {
				return 0, errors.Join(err, rerr)
			}
			return 0, err
		}
	}
}

// MaxStaleRetries is how many times [Writer.WriteVersioned] calls the
// store that orders a write again, with a higher version, after it
// answered cutover.ErrStaleVersion, and how many times a write starts over
// after a store called without First did. Each answer moves the clock past
// the version the store holds, so only writes of the same key racing in
// from other instances can use them up.
const MaxStaleRetries = 8

// versioned is the storecall.Func of one versioned write. In a serial write
// its calls run one after the other on the caller's goroutine: the first
// one orders the write and sets the version the next one writes at. In a
// concurrent write both calls run at once, each on its own side's slot of
// newer, and only read the rest.
type versioned struct {
	write      func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)
	clock      *hlc.Clock
	version    cutover.Version
	concurrent bool
	ordered    bool               // a First call succeeded at version
	newer      [2]cutover.Version // per side, a higher version a call without First found
}

// start readies f for a run of the write's calls at a new version.
func (f *versioned) start() {
	f.version, f.ordered, f.newer = f.clock.Next(), false, [2]cutover.Version{}
}

// Call writes side at the write's version.
func (f *versioned) Call(ctx context.Context, side cutover.Side) (cutover.Version, error) {
	if f.concurrent || f.ordered {
		held, err := f.write(ctx, cutover.Stamp{Side: side, Version: f.version})
		if !errors.Is(err, cutover.ErrStaleVersion) {
			return held, err
		}
		if held > f.version {
			// The store holds a higher version: the write starts over.
			f.newer[side] = held
		}
		return f.version, nil // or it holds this very write already
	}
	for tries := 0; ; tries++ {
		held, err := f.write(ctx, cutover.Stamp{Side: side, Version: f.version, First: true})
		if err == nil {
			f.ordered = true
			return f.version, nil
		}
		if !errors.Is(err, cutover.ErrStaleVersion) || tries == MaxStaleRetries {
			return held, err
		}
		f.clock.Observe(held)
		f.version = f.clock.Next()
	}
}
