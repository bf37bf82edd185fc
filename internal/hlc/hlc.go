// Package hlc is a hybrid logical clock: it hands out versions that grow
// strictly within a process, stay close to the wall clock, and differ
// between processes, so that writes stamped by different instances of a
// service are ordered the same way by every store.
//
// A version is the number of microseconds since [Epoch], shifted left by
// [NodeBits], with the low NodeBits bits naming the clock. When the wall
// clock stands still or goes back, the clock counts on from the last
// version it gave; when it observes a higher version, from another
// instance, it moves past it, so that a later write is never stamped lower
// than one it has seen.
package hlc

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cutover-go/cutover"
)

// NodeBits is the number of low bits of a version that name its clock.
const NodeBits = 12

// Epoch is the instant that versions count microseconds from. With 51 bits
// of microseconds above the node bits, and the top bit left clear so that
// a version fits a signed 64-bit SQL column, versions last until 2091.
var Epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

const nodeMask = 1<<NodeBits - 1

// Clock hands out versions. Create it with [New]; the zero value is a clock
// whose node is 0 and whose wall clock is time.Now, usable but shared by
// every zero clock. It is safe for concurrent use.
type Clock struct {
	last atomic.Uint64 // the last version handed out or observed, node bits cleared
	node uint64
	now  func() time.Time
}

// New returns a clock with a random node and the wall clock now, or
// time.Now if now is nil.
func New(now func() time.Time) *Clock {
	return &Clock{node: rand.Uint64() & nodeMask, now: now}
}

// Next returns a version higher than every one this clock handed out or
// observed before.
func (c *Clock) Next() cutover.Version {
	wall := c.wall()
	for {
		last := c.last.Load()
		next := max(wall, last+1<<NodeBits)
		if c.last.CompareAndSwap(last, next) {
			return cutover.Version(next | c.node)
		}
	}
}

// Observe makes every later [Clock.Next] return a version higher than v.
func (c *Clock) Observe(v cutover.Version) {
	seen := uint64(v) &^ nodeMask
	for {
		last := c.last.Load()
		if seen <= last || c.last.CompareAndSwap(last, seen) {
			return
		}
	}
}

func (c *Clock) wall() uint64 {
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	us := now().Sub(Epoch).Microseconds()
	if us < 0 {
		us = 0
	}
	return uint64(us) << NodeBits
}
