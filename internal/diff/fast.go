package diff

import (
	"reflect"
	"unsafe"
)

// maxFastStrings caps the strings whose lengths a fast equality reads to
// charge them as the walk would; a type holding more has no fast path.
const maxFastStrings = 64

// FastEqual returns a function that reports true only for values that
// [Comparer.Compare] would find equal within its limits (a report of "" and
// a nil error), without walking them: it compares them with ==, which for
// the types it accepts implies equality under the rules of this package,
// and charges them the work and depth the walk would. A false answer
// means nothing: the caller must then compare the values with Compare. The
// function allocates nothing and is safe for concurrent use.
//
// FastEqual returns nil when T or the options leave no such shortcut: with
// ignore rules, for a type that == cannot compare or that holds an
// interface (whose == may panic), and for one that holds a type with an
// Equal method other than [time.Time], which the walk would call instead.
// Pointers, channels and unsafe pointers are equal under == only when they
// are the same, which the walk takes as equal without following them.
// A nil *Comparer behaves like one compiled from zero Options.
func FastEqual[T any](c *Comparer) func(old, new T) bool {
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
	budget := c.maxWork - p.nodes
	strs := p.strings
	return func(old, new T) bool {
		if any(old) != any(new) {
			return false
		}
		// The walk charges a unit per KiB of each string on top of the
		// value itself; equal strings have equal lengths.
		left := budget
		base := unsafe.Pointer(&old)
		for _, off := range strs {
			if left -= len(*(*string)(unsafe.Add(base, off))) >> 10; left < 0 {
				return false
			}
		}
		return true
	}
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
