package diff

import (
	"reflect"
	"unsafe"
)

// maxFastStrings caps the strings whose lengths a fast equality reads to
// charge them as the walk would; a type holding more has no fast path.
const maxFastStrings = 64

// FastEqual returns an equality that reports true only when the values
// at old and new are ones that [Comparer.Compare] would find equal within
// its limits (a report of "" and a nil error), without walking them: it
// compares them with ==, which for
// the types it accepts implies equality under the rules of this package,
// and charges them the work and depth the walk would. A false answer
// means nothing: the caller must then compare the values with Compare. It
// allocates nothing.
//
// FastEqual returns nil when T or the options leave no such shortcut: with
// ignore rules, for a type that == cannot compare or that holds an
// interface (whose == may panic), and for one that holds a type with an
// Equal method other than [time.Time], which the walk would call instead.
// Pointers, channels and unsafe pointers are equal under == only when they
// are the same, which the walk takes as equal without following them.
// A nil *Comparer behaves like one compiled from zero Options.
func FastEqual[T any](c *Comparer) *Fast[T] {
	if c == nil {
		c = &defaultComparer
	}
	if c.ignore != nil {
		return nil
	}
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface || !t.Comparable() {
		return nil
	}
	p := fastPlan{maxDepth: c.maxDepth, maxWork: c.maxWork}
	if !p.add(t, 0, 0, false, false) {
		return nil
	}
	return &Fast[T]{budget: c.maxWork - p.nodes, strings: p.strings}
}

// Fast is the equality that [FastEqual] returns for values of type T. Its
// settings never change after FastEqual, and it is safe for concurrent
// use.
type Fast[T any] struct {
	budget  int       // the work left for the strings
	strings []uintptr // offsets of the strings the walk charges for
}

// Equal reports true only if Compare would find the values at old and new
// equal; see [FastEqual].
func (f *Fast[T]) Equal(old, new *T) bool {
	if !f.same(old, new) {
		return false
	}
	// The walk charges a unit per KiB of each string on top of the value
	// itself; equal strings have equal lengths.
	left := f.budget
	for _, off := range f.strings {
		if left -= len(*(*string)(unsafe.Add(unsafe.Pointer(old), off))) >> 10; left < 0 {
			return false
		}
	}
	return true
}

// same compares the values at old and new with ==. The interfaces do not
// escape, so the comparison allocates nothing.
func (f *Fast[T]) same(old, new *T) bool {
	return any(*old) == any(*new)
}

// fastPlan is what the walk would do with two equal values of a type that
// FastEqual accepts: how many values it would visit, and where the strings
// it would charge for lie.
type fastPlan struct {
	maxDepth int
	maxWork  int
	nodes    int
	strings  []uintptr // offsets from the root
}

// add plans the visit of a value of type t at offset off from the root,
// depth levels down. It reports false when the type leaves no fast path.
// As in package reflect, a value reached through an unexported field is
// read-only, so that the walk cannot call its methods: sticky says that
// everything below it is too, embedded that only the value itself is (the
// exported fields of an unexported embedded struct are not).
func (p *fastPlan) add(t reflect.Type, off uintptr, depth int, sticky, embedded bool) bool {
	if depth >= p.maxDepth {
		return false // the walk would not go below here
	}
	if p.nodes++; p.nodes > p.maxWork {
		return false // the walk would stop before the end
	}
	readOnly := sticky || embedded
	k := t.Kind()
	if k == reflect.Interface {
		return false
	}
	if t.NumMethod() > 0 && !readOnly {
		switch equalOf(t).kind {
		case equalTime:
			return true
		case equalMethod:
			return false
		}
	}
	switch k {
	case reflect.String:
		if len(p.strings) == maxFastStrings {
			return false
		}
		p.strings = append(p.strings, off)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			unexported := !f.IsExported()
			if !p.add(f.Type, off+f.Offset, depth+1, sticky || unexported && !f.Anonymous, unexported && f.Anonymous) {
				return false
			}
		}
	case reflect.Array:
		for i := range t.Len() {
			if !p.add(t.Elem(), off+uintptr(i)*t.Elem().Size(), depth+1, readOnly, false) {
				return false
			}
		}
	}
	return true
}
