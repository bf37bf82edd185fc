package diff

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"reflect"
	"strings"
	"sync"
)

// Sensitive values. The walk carries, next to the ignore state, a state of
// the automaton of Options.Sensitive. A state that matches stays matched
// below, whatever the steps; a field tagged `cutover:"sensitive"` moves to
// allSensitive, a state that matches. Only Diff-mode walks and the printer
// follow these states: sensitivity changes what a report shows, never what
// is equal.

// tagKey is the struct tag key read for the sensitive option:
// `cutover:"sensitive"`. Options are separated by commas.
const tagKey = "cutover"

// minHashKey is the shortest Options.HashKey accepted, in bytes.
const minHashKey = 16

// allSensitive is the state below a tagged field.
var allSensitive = &state{match: true}

// sensField returns the sensitivity state of field i of struct type t,
// below a struct whose state is ss; tags is taggedFields(t).
func sensField(ss *state, t reflect.Type, i int, tags []bool) *state {
	switch {
	case ss.skip():
		return ss
	case tags != nil && tags[i]:
		return allSensitive
	case ss == nil:
		return nil
	}
	return ss.fieldStates(t)[i]
}

// sensIndex returns the sensitivity state of element i below ss.
func sensIndex(ss *state, i int) *state {
	if ss == nil || ss.skip() {
		return ss
	}
	return ss.index(i)
}

// sensKey returns the sensitivity state of the value at map key k below
// ss.
func sensKey(ss *state, k reflect.Value) *state {
	if ss == nil || ss.skip() {
		return ss
	}
	return ss.key(k)
}

// taggedFields caches, by struct type, which fields are tagged sensitive:
// nil when none is. Types are few and never change.
var taggedCache sync.Map // reflect.Type -> []bool

// taggedFields returns which fields of struct type t are tagged
// sensitive, or nil when none is.
func taggedFields(t reflect.Type) []bool {
	if v, ok := taggedCache.Load(t); ok {
		return v.([]bool)
	}
	var tags []bool
	for i := range t.NumField() {
		if isSensitiveTag(t.Field(i).Tag.Get(tagKey)) {
			if tags == nil {
				tags = make([]bool, t.NumField())
			}
			tags[i] = true
		}
	}
	taggedCache.Store(t, tags)
	return tags
}

func isSensitiveTag(tag string) bool {
	for opt := range strings.SplitSeq(tag, ",") {
		if strings.TrimSpace(opt) == "sensitive" {
			return true
		}
	}
	return false
}

// holdsTagged caches, by type, whether a value of the type can hold a
// field tagged sensitive, through fields, elements, keys and pointers (not
// through interfaces, whose contents the type does not say).
var holdsCache sync.Map // reflect.Type -> bool

func holdsTagged(t reflect.Type) bool {
	if v, ok := holdsCache.Load(t); ok {
		return v.(bool)
	}
	// Only the answer for t is cached: the answers for the types met on
	// the way may be cut short by a type that refers back to one of them.
	held := holds(t, make(map[reflect.Type]bool))
	holdsCache.Store(t, held)
	return held
}

func holds(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		if taggedFields(t) != nil {
			return true
		}
		for i := range t.NumField() {
			if holds(t.Field(i).Type, seen) {
				return true
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holds(t.Elem(), seen)
	case reflect.Map:
		return holds(t.Key(), seen) || holds(t.Elem(), seen)
	}
	return false
}

// mayHideBelow reports whether some value below one of type t, whose
// sensitivity state is ss, may be sensitive; its String or Error method
// must then not speak for it.
func mayHideBelow(t reflect.Type, ss *state) bool {
	return ss != nil || holdsTagged(t)
}

// processKey is the HMAC key of a Comparer given no Options.HashKey: drawn
// once per process, never shown.
var processKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails: it crashes the program instead
	return k
})

// redacted stands for a hidden value too large to hash.
const redacted = "<redacted>"

// Hashes of hidden values cover at most maxHashed units: one per byte of
// text, hashUnitsPerValue per value, nested at most maxHashDepth deep. A
// larger value is shown as "<redacted>", without a hash.
const (
	maxHashed         = 64 << 10
	hashUnitsPerValue = 16
	maxHashDepth      = 64
)

// token returns what a report shows for the hidden value v: "<nil>" for
// nothing or a nil reference, which says no more than that it is absent,
// and otherwise "<redacted:" with the first 8 hex digits of the keyed
// hash of v and ">". Equal values, by the rules of the package, get equal
// hashes; different values different ones, but for one chance in four
// billion.
func (c *Comparer) token(v reflect.Value) string {
	if isNil(v) {
		return "<nil>"
	}
	key := c.key
	if key == nil {
		key = processKey()
	}
	h := hmac.New(sha256.New, key)
	left := maxHashed
	e := hasher{w: h, left: &left}
	if !e.value(v, 0) {
		return redacted
	}
	var sum [sha256.Size]byte
	return "<redacted:" + hex.EncodeToString(h.Sum(sum[:0])[:4]) + ">"
}

func isNil(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// Kinds of values in the encoding that is hashed.
const (
	hashNil byte = iota
	hashBool
	hashInt
	hashUint
	hashFloat
	hashString
	hashRef // a non-nil pointer or interface, followed by what it holds
	hashStruct
	hashList
	hashMap
	hashOpaque // a non-nil func, channel or unsafe pointer
	hashTime
)

// hasher writes the encoding of a value to w. Equal values, by the rules
// of the package, have the same encoding; times are encoded as instants,
// NaNs and zeros of either sign as one value each, and maps as the sum of
// the hashes of their entries, so that their order does not matter.
type hasher struct {
	w    hash.Hash
	left *int // units left, shared with the hashers of map entries
	buf  [9]byte
}

func (e *hasher) put(kind byte, x uint64) {
	e.buf[0] = kind
	binary.BigEndian.PutUint64(e.buf[1:], x)
	e.w.Write(e.buf[:])
}

// value writes v, and reports false when it is too large to hash.
func (e *hasher) value(v reflect.Value, depth int) bool {
	if *e.left -= hashUnitsPerValue; *e.left < 0 || depth > maxHashDepth {
		return false
	}
	if isNil(v) {
		e.put(hashNil, 0)
		return true
	}
	t := v.Type()
	if t == timeType && v.CanInterface() {
		tm := asTime(v)
		e.put(hashTime, uint64(tm.Unix()))
		e.put(hashTime, uint64(tm.Nanosecond()))
		return true
	}
	switch t.Kind() {
	case reflect.Bool:
		var b uint64
		if v.Bool() {
			b = 1
		}
		e.put(hashBool, b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.put(hashInt, uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.put(hashUint, v.Uint())
	case reflect.Float32, reflect.Float64:
		e.put(hashFloat, floatBits(v.Float()))
	case reflect.Complex64, reflect.Complex128:
		x := v.Complex()
		e.put(hashFloat, floatBits(real(x)))
		e.put(hashFloat, floatBits(imag(x)))
	case reflect.String:
		return e.text(v.String())
	case reflect.Pointer, reflect.Interface:
		e.put(hashRef, 0)
		return e.value(v.Elem(), depth+1)
	case reflect.Struct:
		e.put(hashStruct, uint64(v.NumField()))
		for i := range v.NumField() {
			if !e.value(v.Field(i), depth+1) {
				return false
			}
		}
	case reflect.Slice, reflect.Array:
		e.put(hashList, uint64(v.Len()))
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return e.text(string(v.Bytes()))
		}
		for i := range v.Len() {
			if !e.value(v.Index(i), depth+1) {
				return false
			}
		}
	case reflect.Map:
		return e.mapEntries(v, depth)
	default: // funcs, channels, unsafe pointers: only whether they are nil
		e.put(hashOpaque, 0)
	}
	return true
}

func (e *hasher) text(s string) bool {
	if *e.left -= len(s); *e.left < 0 {
		return false
	}
	e.put(hashString, uint64(len(s)))
	e.w.Write([]byte(s))
	return true
}

// mapEntries writes the length of map m and the sum of the hashes of its
// entries.
func (e *hasher) mapEntries(m reflect.Value, depth int) bool {
	e.put(hashMap, uint64(m.Len()))
	var sum [4]uint64
	var digest [sha256.Size]byte
	h := sha256.New()
	for it := m.MapRange(); it.Next(); {
		h.Reset()
		sub := hasher{w: h, left: e.left}
		if !sub.value(it.Key(), depth+1) || !sub.value(it.Value(), depth+1) {
			return false
		}
		d := h.Sum(digest[:0])
		for i := range sum {
			sum[i] += binary.BigEndian.Uint64(d[8*i:])
		}
	}
	for _, x := range sum {
		e.put(hashMap, x)
	}
	return true
}

// floatBits returns the bits of f, with every NaN made one and -0 made 0,
// as the package compares them.
func floatBits(f float64) uint64 {
	switch {
	case f != f:
		return math.Float64bits(math.NaN())
	case f == 0:
		return 0
	}
	return math.Float64bits(f)
}
