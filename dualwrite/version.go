package dualwrite

import (
	"context"

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
// hybrid logical clock, and returns the version it wrote, which may be
// higher when the store held a higher one already (a write stamped by an
// instance whose clock runs ahead). The secondary's call gets that
// version. Two racing writes of one key therefore reach the secondary with
// versions in the order the authoritative store applied them, and the
// secondary keeps the later one whichever call lands last. A fallback write
// to the old store, in live and rampdown, orders the write in the
// authoritative store's place.
//
// With [WithConcurrentWrites] both stores are written at once with the same
// version from the clock and neither call has First set: each store keeps
// the write with the highest version, so both keep the same one. Versions
// from the clocks of different instances follow their wall clocks, so of
// two writes of one key from different instances less than the clocks'
// skew apart, the one that started first can be the one both stores keep.
//
// A write function that returns 0 from a First call is taken to have
// written at the version it was given. The package's clock observes every
// version a First call returns, so that the process's later writes are
// stamped above it.
func (w *Writer) WriteVersioned(ctx context.Context, key string, write func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)) (cutover.Version, error) {
	if write == nil {
		return 0, ErrNilFunc
	}
	f := &versioned{write: write, version: clock.Next(), concurrent: w.concurrent}
	v, err := run(ctx, w, key, f)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		v = f.version
	}
	return v, nil
}

// versioned is the storecall.Func of one versioned write. In a serial write
// its calls run one after the other on the caller's goroutine: the first
// one orders the write and sets the version the next one writes at. In a
// concurrent write both calls run at once and only read it.
type versioned struct {
	write      func(ctx context.Context, s cutover.Stamp) (cutover.Version, error)
	version    cutover.Version
	concurrent bool
	ordered    bool // a First call succeeded and set version
}

// Call writes side at the write's version.
func (f *versioned) Call(ctx context.Context, side cutover.Side) (cutover.Version, error) {
	if f.concurrent {
		return f.write(ctx, cutover.Stamp{Side: side, Version: f.version})
	}
	if f.ordered {
		return f.write(ctx, cutover.Stamp{Side: side, Version: f.version})
	}
	v, err := f.write(ctx, cutover.Stamp{Side: side, Version: f.version, First: true})
	if err != nil {
		return v, err
	}
	if v != 0 {
		clock.Observe(v)
		f.version = v
	}
	f.ordered = true
	return f.version, nil
}
