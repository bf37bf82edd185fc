package cutover

import "fmt"

// PanicError is the error a secondary or shadow store call turns into when
// it panics: the library recovers the panic so that a broken new store can
// never crash the caller, and records the key for repair. The zero value
// stands for a panic with a nil value and no stack, which the library never
// returns. The library does not change a PanicError after returning it, so
// it is safe for concurrent use by readers.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

// Error returns the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("cutover: store call panicked: %v", e.Value) }
