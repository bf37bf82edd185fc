package cutover

import "fmt"

// PanicError is the error a store call turns into when it panics and the
// library recovers the panic, so that a broken new store can never crash
// the caller. The library recovers the panics of every call but those of
// the store the caller's request would use without it:
//
//   - a panic of the new store before complete (the secondary write in
//     dualwrite and shadow, the compared read in shadow, the authoritative
//     call in live and rampdown) and of the old store where it is not
//     authoritative (the secondary write in live and rampdown, the compared
//     read in live, a fallback call) is a failure like any other. A new
//     store's panic counts against its breaker. In live and rampdown a
//     write or read whose new-store call panicked falls back to the old
//     store, and the write's key is recorded with reason [Fallback]; a
//     secondary write that panicked is recorded with reason
//     [SecondaryFailed]; a compared read that panicked is a failed
//     comparison. A recorded entry's Err is the PanicError. It reaches the
//     caller only as the error of a fallback call that panicked too, or of
//     a secondary write under dualwrite's Fail policy.
//   - a panic of the old store while it is authoritative (off, dualwrite,
//     shadow) and of the new store in complete goes on to the caller
//     unchanged, as it would without the library, after the new store's
//     breaker has counted it as a failure: the library does not change the
//     panics of the caller's own store. With dualwrite's concurrent writes
//     the secondary write is waited for first and, if it succeeded, its
//     key recorded with reason [AuthoritativeFailed] and this PanicError.
//
// The zero value stands for a panic with a nil value and no stack, which
// the library never returns. The library does not change a PanicError
// after returning it, so it is safe for concurrent use by readers.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

// Error returns the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("cutover: store call panicked: %v", e.Value) }
