package cutover

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Reason says why a key was recorded for repair. The zero value, the empty
// string, is no reason the library records. A Reason is a plain value, safe
// for concurrent use.
type Reason string

// The reasons the library records a key for repair.
const (
	// SecondaryFailed: the secondary write failed, timed out or panicked
	// after the authoritative write succeeded.
	SecondaryFailed Reason = "secondary_failed"
	// AuthoritativeFailed: with concurrent writes, the secondary write
	// succeeded but the authoritative one failed or panicked.
	AuthoritativeFailed Reason = "authoritative_failed"
	// Skipped: the new store's breaker was open, so its write was not tried.
	Skipped Reason = "skipped"
	// Fallback: the new store was authoritative but failed or was refused
	// by its breaker, so the write went to the old store instead.
	Fallback Reason = "fallback"
	// Ambiguous: the authoritative write ended with the caller's context
	// canceled or past its deadline, so its outcome is unknown: it may
	// have committed, or not. The secondary was not written (with
	// concurrent writes it may have been). Target is the secondary:
	// copying the authoritative store's current row over it repairs the
	// key if the write committed, and is harmless if it did not.
	Ambiguous Reason = "ambiguous"
	// Mismatch: a shadow read found the two stores answering differently.
	Mismatch Reason = "mismatch"
	// Unverified: a verification found the key's rows differ between the
	// stores.
	Unverified Reason = "unverified"
)

// Repair is one entry of a repair log: the key of one operation whose copy
// in Target may differ from the copy in the other store.
//
// For write reasons (SecondaryFailed, AuthoritativeFailed, Skipped,
// Fallback, Ambiguous) Target is the store that missed the write, or may
// have, and copying the other store's row over it repairs the key. Unverified names the new
// store: the old one is the source of truth until reads move; a
// verification run after they moved (in live or rampdown the new store
// takes writes first) can find either copy the stale one, and its keys
// need the same care as a Mismatch. A Mismatch
// says only that a read found the stores apart: Target is the store that
// was not authoritative for that read, but a write racing the read, or an
// earlier write still waiting for its own repair, can leave either copy the
// stale one. A repairer should therefore reconcile by a version or update
// time that both copies carry, or re-read and re-copy from the store that
// is authoritative for writes, rather than copy blindly in log order.
//
// The zero value is an entry for no operation and no key, which the library
// never records. A Repair is a plain value, safe for concurrent use by
// readers; copies share only the Err they hold.
type Repair struct {
	Op     string    // operation name, such as "users.save"
	Key    string    // entity key, such as "42"
	Target Side      // the store that may be behind
	Stage  Stage     // the stage the operation ran in
	Reason Reason    // why the key was recorded
	Err    error     // the failure behind it, if any
	Time   time.Time // when it was recorded
}

// RepairLog stores keys that need repair. The dualwrite, shadowread and
// breaker paths record to it; a failure to record is returned to the
// caller rather than dropped. Implementations must be safe for concurrent
// use and should be durable: [MemoryRepairLog] is for tests and examples.
// The zero value, a nil RepairLog, is not usable: dualwrite.New and
// shadowread.WithRepairLog refuse it, and a nil pointer in the interface
// too.
type RepairLog interface {
	Record(ctx context.Context, r Repair) error
}

// MemoryRepairLog is a [RepairLog] kept in memory. Its zero value is an
// empty log ready to use; it is safe for concurrent use.
type MemoryRepairLog struct {
	mu      sync.Mutex
	entries []Repair
}

// Record appends r to the log. It never fails.
func (l *MemoryRepairLog) Record(_ context.Context, r Repair) error {
	l.mu.Lock()
	l.entries = append(l.entries, r)
	l.mu.Unlock()
	return nil
}

// Entries returns a copy of the entries recorded so far, oldest first.
func (l *MemoryRepairLog) Entries() []Repair {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Len returns the number of entries recorded so far.
func (l *MemoryRepairLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Drain removes and returns every entry recorded so far, oldest first.
func (l *MemoryRepairLog) Drain() []Repair {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries
	l.entries = nil
	return e
}
