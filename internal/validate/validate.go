// Package validate holds the checks that the constructors of the public
// packages share for bad input: nil arguments and options, which are errors
// returned by the constructor and never panics.
package validate

import (
	"errors"
	"fmt"
	"reflect"
)

// Nil reports whether v is nil, or an interface value holding a nil
// pointer, function, map, slice, channel or interface: a value whose
// methods would panic, or do nothing, when the library calls them. A
// typed nil *cutover.MemoryRepairLog in a cutover.RepairLog is such a
// value.
func Nil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Errors collects what was wrong with the arguments and options of one
// constructor call, so that one error names every problem. The zero value
// is empty and ready to use. It is not safe for concurrent use; a
// constructor owns its own.
type Errors struct{ errs []error }

// Addf adds one problem, formatted as by fmt.Errorf (so %w wraps).
func (e *Errors) Addf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

// Err returns nil if no problem was added, and otherwise every problem
// joined into one error, each on a line of its own.
func (e *Errors) Err() error { return errors.Join(e.errs...) }
