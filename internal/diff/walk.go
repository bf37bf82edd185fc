package diff

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"
)

// walker compares two values. In Equal mode (full false) it stops at the
// first difference; in Diff mode it visits everything, counts every
// difference and writes the first few into out.
type walker struct {
	c      *Comparer
	full   bool
	n      int    // differences found
	listed int    // differences listed (or that would have been, had out room left)
	out    []byte // the report so far
	steps  []step // path from the root to the current value, in Diff mode
	mute   bool   // count differences but list none

	depth  int         // nesting of the current value
	work   int         // units of work left
	stop   *LimitError // the work limit, if the walk stopped at it
	deep   *LimitError // the first value nested past the depth limit
	visits int         // pairs of values and map entries visited, for tests

	// Pairs of pointers, maps and slices under comparison or compared,
	// as in reflect.DeepEqual: the first few inline, the rest in a map.
	few  [8]visit
	nfew int
	seen map[visit]struct{}
}

// visit identifies the comparison of two references of type t with the
// ignore state st. Lengths tell apart slices sharing a backing array.
type visit struct {
	a, b   uintptr
	na, nb int
	t      reflect.Type
	st     *state
}

type stepKind uint8

const (
	stepField stepKind = iota
	stepIndex
	stepKey
)

// step is one segment of a path: field i of struct type t, element i, or
// map key key, shown as a hash when redact is set.
type step struct {
	kind   stepKind
	redact bool
	i      int
	t      reflect.Type
	key    reflect.Value
}

// msgKind says how a difference is worded.
type msgKind uint8

const (
	msgValues     msgKind = iota // a != b
	msgTypes                     // a (T) != b (U)
	msgStrings                   // long strings, shown around the first difference
	msgMissingNew                // a is absent from new
	msgMissingOld                // b is absent from old
	msgNilEmpty                  // one side nil, the other empty or entirely ignored
	msgFuncs                     // two non-nil funcs
	msgChans                     // two different channels
)

func (w *walker) push(s step) {
	if w.full {
		w.steps = append(w.steps, s)
	}
}

func (w *walker) pop() {
	if w.full {
		w.steps = w.steps[:len(w.steps)-1]
	}
}

// differ records a difference at the current path, whose sensitivity
// state is ss, and returns false.
func (w *walker) differ(kind msgKind, a, b reflect.Value, ss *state) bool {
	w.n++
	if !w.full || w.mute || w.listed >= w.c.maxDiffs {
		return false
	}
	w.listed++
	if len(w.out) > w.c.maxBytes {
		return false // it would be cut off anyway
	}
	if len(w.out) > 0 {
		w.out = append(w.out, '\n')
	}
	w.out = w.appendPath(w.out, w.c.maxBytes+1)
	w.out = append(w.out, ": "...)
	w.out = w.c.appendMessage(w.out, kind, a, b, ss)
	return false
}

// seenBefore reports whether v was met before, and remembers it.
func (w *walker) seenBefore(v visit) bool {
	for i := range w.nfew {
		if w.few[i] == v {
			return true
		}
	}
	if w.nfew < len(w.few) {
		w.few[w.nfew] = v
		w.nfew++
		return false
	}
	if w.seen == nil {
		w.seen = make(map[visit]struct{})
	} else if _, ok := w.seen[v]; ok {
		return true
	}
	w.seen[v] = struct{}{}
	return false
}

// value compares two values of any types; an invalid Value stands for a nil
// interface.
func (w *walker) value(a, b reflect.Value, st, ss *state) bool {
	if !a.IsValid() || !b.IsValid() {
		if a.IsValid() == b.IsValid() {
			return true
		}
		return w.differ(msgValues, a, b, ss)
	}
	if a.Type() != b.Type() {
		return w.differ(msgTypes, a, b, ss)
	}
	return w.same(a, b, st, ss)
}

// same compares two values of the same type, within the walk's limits:
// w.depth is the number of values the two are nested in, and each value
// that holds others adds one to it while its elements are compared.
func (w *walker) same(a, b reflect.Value, st, ss *state) bool {
	if w.work--; w.work < 0 || w.depth >= w.c.maxDepth || w.stop != nil {
		return w.over()
	}
	w.visits++
	t := a.Type()
	k := t.Kind()
	if k != reflect.Interface && t.NumMethod() > 0 {
		if eq, ok := equalByMethod(a, b, t); ok {
			if eq {
				return true
			}
			return w.differ(msgValues, a, b, ss)
		}
	}
	switch k {
	case reflect.Bool:
		if a.Bool() == b.Bool() {
			return true
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if a.Int() == b.Int() {
			return true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if a.Uint() == b.Uint() {
			return true
		}
	case reflect.Float32, reflect.Float64:
		if floatEqual(a.Float(), b.Float()) {
			return true
		}
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		if floatEqual(real(x), real(y)) && floatEqual(imag(x), imag(y)) {
			return true
		}
	case reflect.String:
		x, y := a.String(), b.String()
		if n := max(len(x), len(y)) >> 10; n > 0 && !w.charge(n) {
			return false
		}
		if x == y {
			return true
		}
		if len(x) > maxValueRunes || len(y) > maxValueRunes {
			return w.differ(msgStrings, a, b, ss)
		}
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() && b.IsNil() {
				return true
			}
			break
		}
		pa, pb := a.Pointer(), b.Pointer()
		if pa == pb || w.seenBefore(visit{a: pa, b: pb, t: t, st: st}) {
			return true
		}
		w.depth++
		eq := w.same(a.Elem(), b.Elem(), st, ss)
		w.depth--
		return eq
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() && b.IsNil() {
				return true
			}
			return w.differ(msgValues, a.Elem(), b.Elem(), ss)
		}
		w.depth++
		eq := w.value(a.Elem(), b.Elem(), st, ss)
		w.depth--
		return eq
	case reflect.Struct:
		w.depth++
		eq := w.structs(a, b, t, st, ss)
		w.depth--
		return eq
	case reflect.Array:
		w.depth++
		eq := w.lists(a, b, st, ss, false)
		w.depth--
		return eq
	case reflect.Slice:
		if a.IsNil() == b.IsNil() {
			pa, pb := a.Pointer(), b.Pointer()
			na, nb := a.Len(), b.Len()
			if pa == pb && na == nb {
				return true
			}
			if na > 0 && nb > 0 && w.seenBefore(visit{a: pa, b: pb, na: na, nb: nb, t: t, st: st}) {
				return true
			}
			if eq, ok := w.byteSlices(a, b, t, st); ok {
				return eq
			}
		}
		w.depth++
		eq := w.lists(a, b, st, ss, a.IsNil() != b.IsNil())
		w.depth--
		return eq
	case reflect.Map:
		if a.IsNil() == b.IsNil() {
			pa, pb := a.Pointer(), b.Pointer()
			if pa == pb || w.seenBefore(visit{a: pa, b: pb, t: t, st: st}) {
				return true
			}
		}
		w.depth++
		eq := w.maps(a, b, st, ss, a.IsNil() != b.IsNil())
		w.depth--
		return eq
	case reflect.Func:
		if a.IsNil() && b.IsNil() {
			return true
		}
		if !a.IsNil() && !b.IsNil() {
			return w.differ(msgFuncs, a, b, ss)
		}
	case reflect.Chan:
		if a.Pointer() == b.Pointer() {
			return true
		}
		if !a.IsNil() && !b.IsNil() {
			return w.differ(msgChans, a, b, ss)
		}
	case reflect.UnsafePointer:
		if a.Pointer() == b.Pointer() {
			return true
		}
	default:
		return true // no other kinds exist
	}
	return w.differ(msgValues, a, b, ss)
}

// over is same for values that the limits keep the walk from comparing.
// Once the work is spent it reports every value unequal, so that the walk
// unwinds; values nested too deep it reports equal, without charging them,
// so that the walk goes on with the rest, and notes the first in w.deep.
func (w *walker) over() bool {
	switch {
	case w.stop != nil:
		return false
	case w.depth >= w.c.maxDepth:
		w.work++
		if w.deep == nil {
			w.deep = w.limit(LimitDepth, w.c.maxDepth)
		}
		return true
	}
	w.stop = w.limit(LimitWork, w.c.maxWork)
	return false
}

// byteSlices compares two slices of bytes, both nil or both not, at once,
// charging one unit per KiB. ok is false when the slices are of another
// kind, may hold ignored elements, or differ in Diff mode, where the
// elements are walked to list the differences.
func (w *walker) byteSlices(a, b reflect.Value, t reflect.Type, st *state) (eq, ok bool) {
	if st != nil || t.Elem().Kind() != reflect.Uint8 || t.Elem().NumMethod() > 0 {
		return false, false
	}
	x, y := a.Bytes(), b.Bytes()
	if n := max(len(x), len(y)) >> 10; n > 0 && !w.charge(n) {
		return false, true
	}
	switch {
	case bytes.Equal(x, y):
		return true, true
	case !w.full:
		return w.differ(msgValues, a, b, nil), true
	}
	return false, false
}

// floatEqual is ==, except that NaN equals NaN.
func floatEqual(x, y float64) bool {
	return x == y || (x != x && y != y)
}

func (w *walker) structs(a, b reflect.Value, t reflect.Type, st, ss *state) bool {
	eq := true
	subs := st.fieldStates(t)
	var tags []bool
	if w.full {
		tags = taggedFields(t)
	}
	for i, n := 0, t.NumField(); i < n; i++ {
		var sub *state
		if subs != nil {
			sub = subs[i]
		}
		if sub.skip() {
			continue
		}
		var ssub *state
		if w.full {
			ssub = sensField(ss, t, i, tags)
		}
		w.push(step{kind: stepField, i: i, t: t})
		ok := w.same(a.Field(i), b.Field(i), sub, ssub)
		w.pop()
		if !ok {
			eq = false
			if !w.full || w.stop != nil {
				return false
			}
		}
	}
	return eq
}

// lists compares arrays and slices element by element; nilDiffers says
// that exactly one of them is a nil slice.
func (w *walker) lists(a, b reflect.Value, st, ss *state, nilDiffers bool) bool {
	eq := true
	na, nb := a.Len(), b.Len()
	for i := range min(na, nb) {
		sub := st.index(i)
		if sub.skip() {
			continue
		}
		w.push(step{kind: stepIndex, i: i})
		ok := w.same(a.Index(i), b.Index(i), sub, sensIndex(ss, i))
		w.pop()
		if !ok {
			eq = false
			if !w.full || w.stop != nil {
				return false
			}
		}
	}
	if na != nb {
		longer, kind := a, msgMissingNew
		if nb > na {
			longer, kind = b, msgMissingOld
		}
		for i := min(na, nb); i < longer.Len(); i++ {
			w.visits++
			if !w.charge(1) {
				return false
			}
			sub := st.index(i)
			if sub.skip() {
				continue
			}
			eq = false
			if !w.full {
				return false
			}
			if st == nil && (w.mute || w.listed >= w.c.maxDiffs) {
				// Nothing more will be listed and nothing is ignored:
				// count the rest at once.
				w.n += longer.Len() - i
				break
			}
			w.push(step{kind: stepIndex, i: i})
			if kind == msgMissingNew {
				w.differ(kind, a.Index(i), reflect.Value{}, sensIndex(ss, i))
			} else {
				w.differ(kind, reflect.Value{}, b.Index(i), sensIndex(ss, i))
			}
			w.pop()
		}
	}
	if eq && nilDiffers {
		return w.differ(msgNilEmpty, a, b, ss)
	}
	return eq
}

// entry is one key of either map with its values; an invalid value means
// the key is absent from that side.
type entry struct {
	key, a, b reflect.Value
}

// smallMap is the number of entries, both sides together, up to which a
// map is walked in key order by sorting all its entries. Larger maps are
// walked in their own order, and only the differing entries that the
// report can still list are sorted.
const smallMap = 64

// maps compares maps key by key; nilDiffers says that exactly one of them
// is nil. Every entry of both maps is charged before any is visited.
func (w *walker) maps(a, b reflect.Value, st, ss *state, nilDiffers bool) bool {
	if !w.full {
		return w.mapsEqual(a, b, st, nilDiffers)
	}
	n := a.Len() + b.Len()
	if !w.charge(n) {
		return false
	}
	var eq bool
	if n <= smallMap {
		eq = w.mapsSorted(a, b, st, ss)
	} else {
		eq = w.mapsLarge(a, b, st, ss)
	}
	if w.stop != nil {
		return false
	}
	if eq && nilDiffers {
		return w.differ(msgNilEmpty, a, b, ss)
	}
	return eq
}

// mapsSorted walks the entries of two small maps in key order.
func (w *walker) mapsSorted(a, b reflect.Value, st, ss *state) bool {
	entries := make([]entry, 0, max(a.Len(), b.Len()))
	for it := a.MapRange(); it.Next(); {
		w.visits++
		k := it.Key()
		entries = append(entries, entry{key: k, a: it.Value(), b: b.MapIndex(k)})
	}
	for it := b.MapRange(); it.Next(); {
		w.visits++
		if k := it.Key(); !a.MapIndex(k).IsValid() {
			entries = append(entries, entry{key: k, b: it.Value()})
		}
	}
	slices.SortStableFunc(entries, func(x, y entry) int { return compareKeys(x.key, y.key) })
	eq := true
	for _, e := range entries {
		sub := st.key(e.key)
		if sub.skip() {
			continue
		}
		if !w.entry(e, sub, ss) {
			eq = false
			if w.stop != nil {
				return false
			}
		}
	}
	return eq
}

// mapsLarge compares two large maps without sorting them: it finds the
// differing entries in the maps' own order, keeps the few smallest that
// the report can still list, counts the differences of the others, and
// then walks the kept ones in key order. The memory it needs does not grow
// with the maps.
func (w *walker) mapsLarge(a, b reflect.Value, st, ss *state) bool {
	room := 0 // how many differing entries the report can still list
	if !w.mute {
		room = max(w.c.maxDiffs-w.listed, 0)
	}
	var kept []entry // the smallest differing entries so far, in key order
	keep := func(e entry, sub *state) bool {
		if room > 0 && (len(kept) < room || compareKeys(e.key, kept[len(kept)-1].key) < 0) {
			i, _ := slices.BinarySearchFunc(kept, e.key, func(x entry, k reflect.Value) int {
				if compareKeys(x.key, k) <= 0 {
					return -1 // after equal keys, as a stable sort would
				}
				return 1
			})
			kept = slices.Insert(kept, i, e)
			if len(kept) <= room {
				return true
			}
			e = kept[room]
			kept = kept[:room]
			sub = st.key(e.key)
		}
		// Not listed: count its differences only.
		mute := w.mute
		w.mute = true
		w.entry(e, sub, ss)
		w.mute = mute
		return w.stop == nil
	}
	// An Equal-mode walker with its own record of visited pairs tells
	// equal entries from differing ones, so that the Diff-mode walk of a
	// differing entry later finds none of them marked as compared.
	eqw := walker{c: w.c, depth: w.depth}
	eq := true
	for it := a.MapRange(); it.Next(); {
		w.visits++
		k := it.Key()
		sub := st.key(k)
		if sub.skip() {
			continue
		}
		e := entry{key: k, a: it.Value(), b: b.MapIndex(k)}
		if e.b.IsValid() {
			eqw.work, eqw.visits = w.work, 0
			same := eqw.same(e.a, e.b, sub, nil)
			w.work, w.visits = eqw.work, w.visits+eqw.visits
			if eqw.stop != nil {
				w.push(w.keyStep(k, ss))
				w.charge(w.work + 1) // spent: stop here, with the path
				w.pop()
				return false
			}
			if same && eqw.deep != nil {
				// Equal as far as the depth limit lets the walk see:
				// walk it here too, to note where it stopped.
				eqw.deep = nil
				if w.deep == nil {
					same = w.entry(e, sub, ss)
				}
			}
			if same {
				continue
			}
		}
		eq = false
		if !keep(e, sub) {
			return false
		}
	}
	for it := b.MapRange(); it.Next(); {
		w.visits++
		k := it.Key()
		sub := st.key(k)
		if sub.skip() || a.MapIndex(k).IsValid() {
			continue
		}
		eq = false
		if !keep(entry{key: k, b: it.Value()}, sub) {
			return false
		}
	}
	for _, e := range kept {
		if w.entry(e, st.key(e.key), ss); w.stop != nil {
			return false
		}
	}
	return eq
}

// entry compares one entry of two maps in Diff mode; ss is the
// sensitivity state of the maps.
func (w *walker) entry(e entry, sub, ss *state) bool {
	w.push(w.keyStep(e.key, ss))
	defer w.pop()
	ssub := sensKey(ss, e.key)
	switch {
	case !e.b.IsValid():
		return w.differ(msgMissingNew, e.a, e.b, ssub)
	case !e.a.IsValid():
		return w.differ(msgMissingOld, e.a, e.b, ssub)
	}
	return w.same(e.a, e.b, sub, ssub)
}

// keyStep returns the path step of map key k in a map whose sensitivity
// state is ss: the key is hidden when the map is sensitive or no values
// are shown.
func (w *walker) keyStep(k reflect.Value, ss *state) step {
	return step{kind: stepKey, key: k, redact: w.c.hide || ss.skip()}
}

// mapsEqual is maps for Equal mode: it needs no order and stops at the
// first difference.
func (w *walker) mapsEqual(a, b reflect.Value, st *state, nilDiffers bool) bool {
	if st == nil && a.Len() != b.Len() {
		return w.differ(msgValues, a, b, nil)
	}
	if !w.charge(a.Len() + b.Len()) {
		return false
	}
	// Reuse one key and one value for the whole iteration when reflection
	// allows it (not for maps reached through unexported fields).
	var kbuf, vbuf reflect.Value
	reuse := a.Len() > 1 && a.CanInterface()
	if reuse {
		kbuf = reflect.New(a.Type().Key()).Elem()
		vbuf = reflect.New(a.Type().Elem()).Elem()
	}
	for it := a.MapRange(); it.Next(); {
		w.visits++
		var k, v reflect.Value
		if reuse {
			kbuf.SetIterKey(it)
			vbuf.SetIterValue(it)
			k, v = kbuf, vbuf
		} else {
			k, v = it.Key(), it.Value()
		}
		sub := st.key(k)
		if sub.skip() {
			continue
		}
		bv := b.MapIndex(k)
		if !bv.IsValid() || !w.same(v, bv, sub, nil) {
			return w.differ(msgValues, a, b, nil)
		}
	}
	if st != nil {
		// Equal lengths no longer prove that new has no extra keys.
		for it := b.MapRange(); it.Next(); {
			w.visits++
			k := it.Key()
			if !st.key(k).skip() && !a.MapIndex(k).IsValid() {
				return w.differ(msgValues, a, b, nil)
			}
		}
	}
	if nilDiffers {
		return w.differ(msgValues, a, b, nil)
	}
	return true
}

// appendPath writes the current path, stopping once buf is longer than
// limit bytes.
func (w *walker) appendPath(buf []byte, limit int) []byte {
	for _, s := range w.steps {
		if len(buf) > limit {
			break
		}
		switch s.kind {
		case stepField:
			buf = append(buf, '.')
			buf = append(buf, s.t.Field(s.i).Name...)
		case stepIndex:
			buf = append(buf, '[')
			buf = strconv.AppendInt(buf, int64(s.i), 10)
			buf = append(buf, ']')
		case stepKey:
			buf = append(buf, '[')
			if s.redact {
				buf = append(buf, w.c.token(s.key)...)
			} else {
				buf = append(buf, w.c.formatValue(s.key, nil)...)
			}
			buf = append(buf, ']')
		}
	}
	return buf
}

// Equal methods.

type equalKind uint8

const (
	equalNone equalKind = iota
	equalTime
	equalMethod
)

type equalInfo struct {
	kind  equalKind
	index int // method index, for equalMethod
}

var (
	timeType = reflect.TypeFor[time.Time]()
	boolType = reflect.TypeFor[bool]()

	// equalMethods caches equalInfo by reflect.Type. Types are few and
	// never change, so the cache only grows to the number of types seen.
	equalMethods sync.Map
)

// equalOf returns how values of type t compare through an Equal method.
func equalOf(t reflect.Type) equalInfo {
	if t == timeType {
		return equalInfo{kind: equalTime}
	}
	if v, ok := equalMethods.Load(t); ok {
		return v.(equalInfo)
	}
	var info equalInfo
	if m, ok := t.MethodByName("Equal"); ok {
		mt := m.Type // the receiver is the first argument
		if mt.NumIn() == 2 && mt.In(1) == t && !mt.IsVariadic() && mt.NumOut() == 1 && mt.Out(0) == boolType {
			info = equalInfo{kind: equalMethod, index: m.Index}
		}
	}
	equalMethods.Store(t, info)
	return info
}

// asTime returns the time.Time in v without copying it to the heap, as
// Interface does for addressable values.
func asTime(v reflect.Value) time.Time {
	if v.CanAddr() {
		return *v.Addr().Interface().(*time.Time)
	}
	return v.Interface().(time.Time)
}

// equalByMethod compares a and b with their type's Equal method. ok is false
// when there is no such method, reflection may not call it, or it panicked.
func equalByMethod(a, b reflect.Value, t reflect.Type) (eq, ok bool) {
	info := equalOf(t)
	if info.kind == equalNone || !a.CanInterface() || !b.CanInterface() {
		return false, false
	}
	if info.kind == equalTime {
		return asTime(a).Equal(asTime(b)), true
	}
	if t.Kind() == reflect.Pointer && (a.IsNil() || b.IsNil()) {
		return false, false
	}
	defer func() {
		if recover() != nil {
			eq, ok = false, false
		}
	}()
	return a.Method(info.index).Call([]reflect.Value{b})[0].Bool(), true
}
