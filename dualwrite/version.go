package dualwrite

import (
	"context"
	"errors"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/hlc"
)

// clock stamps the versioned writes of every Writer of the process: one
// clock, so that the versions one process hands out grow across all its
// operations.
var clock = hlc.New(nil)

// WriteVersioned is [Writer.Write] for stores that keep a version per key
// and apply a write only over a lower one, such as the rows of package
// sqlrow. It calls write once per store with a [cutover.Stamp] saying which
// store to write and at what version, and returns the version the key was
// written at.
//
// In a serial dual write the authoritative store orders the key's writes:
// its call has Stamp.First set and a fresh version from the process's
// hybrid logical clock. If the store holds that version or a higher one
// already (a write stamped by an instance whose clock runs ahead), it
// returns the version it holds and an error wrapping
// cutover.ErrStaleVersion; the clock then moves past it and the call is
// made again with a new version, up to [MaxStaleRetries] times. The
// secondary's call gets the version the authoritative store took. Two racing writes of one key therefore reach the secondary with
// versions in the order the authoritative store applied them, and the
// secondary keeps the later one whichever call lands last. A fallback write
// to the old store, in live and rampdown, orders the write in the
// authoritative store's place.
//
// With [WithConcurrentWrites] both stores are written at once with the same
// version from the clock and neither call has First set: each store keeps
// the write with the highest version, so both keep the same one.
//
// Versions from the clocks of different instances follow their wall
// clocks. Where one store orders all writes of a key, its answers order
// them, whatever the clocks say. Where two writes of one key less than the
// clocks' skew apart are ordered by different stores (concurrent writes; a
// fallback to the old store in live while another instance writes the new
// one; two instances resolving different stages for the key), the one that
// started first can be the one both stores keep, and the later one is lost
// although it was acknowledged. Within one process this cannot happen.
//
// The version a write function returns is used only with
// cutover.ErrStaleVersion, and otherwise ignored.
func (w *Writer) WriteVersioned(ctx context.Context, key string, write func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)) (cutover.Version, error) {
	if write == nil {
		return 0, ErrNilFunc
	}
	f := &versioned{write: write, version: clock.Next(), concurrent: w.concurrent}
	if _, err := run(ctx, w, key, f); err != nil {
		return 0, err
	}
	return f.version, nil
}

// MaxStaleRetries is how many times [Writer.WriteVersioned] calls the
// store that orders a write again, with a higher version, after it
// answered cutover.ErrStaleVersion. Each answer moves the clock past the
// version the store holds, so only writes of the same key racing in from
// other instances can use them up.
const MaxStaleRetries = 8

// versioned is the storecall.Func of one versioned write. In a serial write
// its calls run one after the other on the caller's goroutine: the first
// one orders the write and sets the version the next one writes at. In a
// concurrent write both calls run at once and only read it.
type versioned struct {
	write      func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)
	version    cutover.Version
	concurrent bool
	ordered    bool // a First call succeeded at version
}

// Call writes side at the write's version.
func (f *versioned) Call(ctx context.Context, side cutover.Side) (cutover.Version, error) {
	if f.concurrent || f.ordered {
		return f.write(ctx, cutover.Stamp{Side: side, Version: f.version})
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
		clock.Observe(held)
		f.version = clock.Next()
	}
}
