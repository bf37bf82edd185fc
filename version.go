package cutover

import "errors"

// ErrStaleVersion is returned, wrapped, by a versioned store function
// when the store already holds the key at a higher version than the
// stamp's (or at the same one, for a call with Stamp.First set), together
// with the version it holds. dualwrite.Writer.WriteVersioned then stamps
// the write above that version and writes again.
var ErrStaleVersion = errors.New("cutover: the store holds a newer version")

// Version orders the writes of one key: of two copies of a row, the one
// with the higher version holds the later write. The zero value is no
// version, older than every other: a row written before versions were
// kept. A Version is a plain value, safe for concurrent use.
//
// Versions make the order in which the calls of racing writes, backfill
// copies and repairs land stop mattering: a store that applies a write only
// over a lower version never goes back to an older value. Package sqlrow
// writes, copies and repairs SQL rows that way; dualwrite.WriteVersioned
// hands every store call the version to write.
type Version uint64

// Stamp is what a versioned write function is given for one call to one
// store: which store to write, at what version, and whether this call
// orders the key's writes. The zero value stands for a write of the old
// store at no version; the library passes only filled ones. A Stamp is a
// plain value, safe for concurrent use.
type Stamp struct {
	// Side is the store to write.
	Side Side
	// Version is the version to write the row at.
	Version Version
	// First is true for the call that orders the key's writes: the
	// authoritative store's call of a serial dual write, or the only call
	// of a write in off or complete. Every call applies the write only over
	// a lower version. One that finds a higher version, or the same one
	// when First is set, leaves the row alone and returns the version it
	// holds and an error wrapping ErrStaleVersion. With First set, the
	// library stamps the write above that version and calls again; without
	// it, the write starts over in both stores above it, since the higher
	// version may be an earlier write stamped by a clock running ahead.
	// A call without First that finds its own version is done: it succeeds.
	First bool
}
