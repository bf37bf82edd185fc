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

// Add adds err as one problem, unless it is nil.
func (e *Errors) Add(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// NotNil adds the problem what if v is nil as [Nil] says, and reports
// whether v was nil.
func (e *Errors) NotNil(v any, what string) (isNil bool) {
	if Nil(v) {
		e.errs = append(e.errs, errors.New(what))
		return true
	}
	return false
}

// Apply calls apply with each option of opts in turn, and adds the problem
// "option N is nil", N counted from 0, for each one that is nil instead.
func Apply[O any](e *Errors, opts []O, apply func(O)) {
	for i, o := range opts {
		if any(o) == nil {
			e.Addf("option %d is nil", i)
			continue
		}
		apply(o)
	}
}

// Err returns nil if no problem was added, and otherwise every problem
// joined into one error, each on a line of its own.
func (e *Errors) Err() error { return errors.Join(e.errs...) }
