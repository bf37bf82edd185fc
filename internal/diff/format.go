package diff

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendMessage writes the wording of one difference between a and b,
// whose sensitivity state is ss.
func (c *Comparer) appendMessage(buf []byte, kind msgKind, a, b reflect.Value, ss *state) []byte {
	switch kind { // the messages that show no values
	case msgNilEmpty:
		x, y := "nil", "nil"
		if !a.IsNil() {
			x = nonNil(a)
		}
		if !b.IsNil() {
			y = nonNil(b)
		}
		buf = append(buf, x...)
		buf = append(buf, " != "...)
		return append(buf, y...)
	case msgFuncs:
		return append(buf, "non-nil funcs are never equal"...)
	case msgChans:
		return append(buf, "different channels"...)
	}
	if c.hide {
		return appendHidden(buf, kind, a, b)
	}
	if kind == msgStrings && ss.skip() {
		kind = msgValues // no excerpt of a hidden text
	}
	formatValue := func(v reflect.Value) string { return c.formatValue(v, ss) }
	switch kind {
	case msgTypes:
		an, bn := typeName(a.Type()), typeName(b.Type())
		if an == bn {
			an, bn = a.Type().String(), b.Type().String()
		}
		buf = append(buf, formatValue(a)...)
		buf = append(buf, " ("...)
		buf = append(buf, an...)
		buf = append(buf, ") != "...)
		buf = append(buf, formatValue(b)...)
		buf = append(buf, " ("...)
		buf = append(buf, bn...)
		return append(buf, ')')
	case msgStrings:
		return appendStrings(buf, a.String(), b.String())
	case msgMissingNew:
		buf = append(buf, "missing in new (old: "...)
		buf = append(buf, formatValue(a)...)
		return append(buf, ')')
	case msgMissingOld:
		buf = append(buf, "missing in old (new: "...)
		buf = append(buf, formatValue(b)...)
		return append(buf, ')')
	}
	x, y := formatValue(a), formatValue(b)
	if x == y && x != redacted {
		// Say what tells them apart, as for a nil interface and a nil
		// pointer in one.
		x, y = withType(x, a), withType(y, b)
	}
	buf = append(buf, x...)
	buf = append(buf, " != "...)
	return append(buf, y...)
}

// appendHidden writes the wording of one difference without its values.
func appendHidden(buf []byte, kind msgKind, a, b reflect.Value) []byte {
	switch kind {
	case msgTypes:
		buf = append(buf, "types differ: "...)
		buf = append(buf, typeName(a.Type())...)
		buf = append(buf, " != "...)
		return append(buf, typeName(b.Type())...)
	case msgMissingNew:
		return append(buf, "missing in new"...)
	case msgMissingOld:
		return append(buf, "missing in old"...)
	}
	switch x, y := isNil(a), isNil(b); {
	case x && !y:
		return append(buf, "<nil> != non-nil"...)
	case y && !x:
		return append(buf, "non-nil != <nil>"...)
	}
	return append(buf, "values differ"...)
}

// nonNil describes the non-nil side of a nil versus non-nil difference.
func nonNil(v reflect.Value) string {
	if v.Len() == 0 {
		return "empty"
	}
	return "non-nil (every element ignored)"
}

func withType(s string, v reflect.Value) string {
	if !v.IsValid() {
		return s
	}
	return s + " (" + typeName(v.Type()) + ")"
}

// appendStrings shows two long strings from a little before their first
// difference.
func appendStrings(buf []byte, x, y string) []byte {
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	for i > 0 && i < len(x) && !utf8.RuneStart(x[i]) {
		i--
	}
	// Back up a few runes for context.
	start := i
	for r := 0; r < 16 && start > 0; r++ {
		_, size := utf8.DecodeLastRuneInString(x[:start])
		start -= size
	}
	const window = 40
	buf = append(buf, "differ at byte "...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, ": "...)
	for j, s := range []string{x[start:], y[start:]} {
		if j == 1 {
			buf = append(buf, " != "...)
		}
		if start > 0 {
			buf = append(buf, "..."...)
		}
		buf = appendQuoted(buf, s, window)
	}
	return buf
}

// appendQuoted writes s quoted as by %q, cut to n runes with "..." after
// the closing quote when it is longer.
func appendQuoted(buf []byte, s string, n int) []byte {
	end, runes := 0, 0
	for end < len(s) && runes < n {
		_, size := utf8.DecodeRuneInString(s[end:])
		end += size
		runes++
	}
	buf = strconv.AppendQuote(buf, s[:end])
	if end < len(s) {
		buf = append(buf, "..."...)
	}
	return buf
}

// capRunes returns s cut to n runes, with "..." appended when it was cut.
func capRunes(s string, n int) string {
	i, runes := 0, 0
	for i < len(s) {
		if runes == n {
			return s[:i] + "..."
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		runes++
	}
	return s
}

// formatValue renders v, whose sensitivity state is ss, for a report, in
// at most maxValueRunes runes plus "..." when cut.
func (c *Comparer) formatValue(v reflect.Value, ss *state) string {
	p := printer{c: c, limit: 4*maxValueRunes + 16}
	p.value(v, 0, ss)
	s := capRunes(string(p.buf), maxValueRunes)
	if len(s) < len(p.buf) {
		// A hash cut short would tell nothing: leave it out.
		if i := strings.LastIndex(s, "<redacted"); i >= 0 && !strings.Contains(s[i:], ">") {
			s = s[:i] + "..."
		}
	}
	return s
}

// printer renders values in a Go-like syntax, with sensitive values as
// hashes. It stops writing once buf holds more than limit bytes, so a huge
// value costs no more than a small one, and it never prints addresses, so
// its output is the same on every run.
type printer struct {
	c     *Comparer
	buf   []byte
	limit int
}

const maxDepth = 8

// maxPrintedMap is the largest map whose first keys are shown; a larger
// one is shown by its length.
const maxPrintedMap = 1024

func (p *printer) full() bool { return len(p.buf) > p.limit }

func (p *printer) str(s string) {
	if room := p.limit + 1 - len(p.buf); len(s) > room {
		s = s[:max(room, 0)]
	}
	p.buf = append(p.buf, s...)
}

// value writes v, whose sensitivity state is ss.
func (p *printer) value(v reflect.Value, depth int, ss *state) {
	if p.full() {
		return
	}
	if !v.IsValid() {
		p.str("<nil>")
		return
	}
	t := v.Type()
	k := t.Kind()
	switch k {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		if v.IsNil() {
			p.str("<nil>")
			return
		}
	}
	if ss.skip() {
		p.str(p.c.token(v))
		return
	}
	if depth > maxDepth {
		p.str("...")
		return
	}
	if k != reflect.Interface && t.NumMethod() > 0 && v.CanInterface() && !mayHideBelow(t, ss) {
		if s, ok := callString(v); ok {
			p.str(s)
			return
		}
	}
	switch k {
	case reflect.Bool:
		p.buf = strconv.AppendBool(p.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.buf = strconv.AppendInt(p.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.buf = strconv.AppendUint(p.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		p.buf = strconv.AppendFloat(p.buf, v.Float(), 'g', -1, t.Bits())
	case reflect.Complex64, reflect.Complex128:
		p.str(strconv.FormatComplex(v.Complex(), 'g', -1, t.Bits()))
	case reflect.String:
		p.buf = appendQuoted(p.buf, v.String(), maxValueRunes)
	case reflect.Pointer:
		p.str("&")
		p.value(v.Elem(), depth+1, ss)
	case reflect.Interface:
		p.value(v.Elem(), depth, ss)
	case reflect.Struct:
		p.str(typeName(t))
		p.str("{")
		tags := taggedFields(t)
		for i := range v.NumField() {
			if p.full() {
				return
			}
			if i > 0 {
				p.str(", ")
			}
			p.str(t.Field(i).Name)
			p.str(":")
			p.value(v.Field(i), depth+1, sensField(ss, t, i, tags))
		}
		p.str("}")
	case reflect.Array, reflect.Slice:
		p.str(typeName(t))
		p.str("{")
		for i := range v.Len() {
			if p.full() {
				return
			}
			if i > 0 {
				p.str(", ")
			}
			p.value(v.Index(i), depth+1, sensIndex(ss, i))
		}
		p.str("}")
	case reflect.Map:
		p.str(typeName(t))
		p.str("{")
		if v.Len() > maxPrintedMap {
			// Finding its smallest keys would mean reading all of it.
			p.str("... ")
			p.buf = strconv.AppendInt(p.buf, int64(v.Len()), 10)
			p.str(" entries}")
			return
		}
		keys := smallestKeys(v, maxValueRunes/3+1)
		for i, k := range keys {
			if p.full() {
				return
			}
			if i > 0 {
				p.str(", ")
			}
			p.value(k, depth+1, nil)
			p.str(":")
			p.value(v.MapIndex(k), depth+1, sensKey(ss, k))
		}
		if len(keys) < v.Len() {
			p.str(", ...")
		}
		p.str("}")
	case reflect.Func, reflect.Chan:
		p.str("<" + typeName(t) + ">")
	case reflect.UnsafePointer:
		p.str(fmt.Sprintf("unsafe.Pointer(%#x)", v.Pointer()))
	}
}

// callString returns v's Error or String text, if it has one and the call
// does not panic.
func callString(v reflect.Value) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	switch x := v.Interface().(type) {
	case error:
		return x.Error(), true
	case fmt.Stringer:
		return x.String(), true
	}
	return "", false
}

// smallestKeys returns the n smallest keys of map m in order, without
// sorting all of a large map.
func smallestKeys(m reflect.Value, n int) []reflect.Value {
	keys := make([]reflect.Value, 0, min(n, m.Len()))
	for it := m.MapRange(); it.Next(); {
		k := it.Key()
		if len(keys) == n && compareKeys(k, keys[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(keys, k, compareKeys)
		if len(keys) == n {
			keys = keys[:n-1]
		}
		keys = slices.Insert(keys, i, k)
	}
	return keys
}

// compareKeys orders map keys: numbers by value (NaN first), strings
// lexically, false before true, pointers and channels by address, structs
// and arrays element by element, interfaces by type name and then value.
func compareKeys(a, b reflect.Value) int {
	if !a.IsValid() || !b.IsValid() {
		return cmp.Compare(boolInt(a.IsValid()), boolInt(b.IsValid()))
	}
	if a.Kind() != b.Kind() {
		return cmp.Compare(a.Kind(), b.Kind())
	}
	switch a.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cmp.Compare(a.Int(), b.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return cmp.Compare(a.Uint(), b.Uint())
	case reflect.String:
		return strings.Compare(a.String(), b.String())
	case reflect.Float32, reflect.Float64:
		return cmp.Compare(a.Float(), b.Float())
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		if c := cmp.Compare(real(x), real(y)); c != 0 {
			return c
		}
		return cmp.Compare(imag(x), imag(y))
	case reflect.Bool:
		return cmp.Compare(boolInt(a.Bool()), boolInt(b.Bool()))
	case reflect.Pointer, reflect.Chan, reflect.UnsafePointer:
		return cmp.Compare(a.Pointer(), b.Pointer())
	case reflect.Struct:
		for i := range a.NumField() {
			if c := compareKeys(a.Field(i), b.Field(i)); c != 0 {
				return c
			}
		}
	case reflect.Array:
		for i := range a.Len() {
			if c := compareKeys(a.Index(i), b.Index(i)); c != 0 {
				return c
			}
		}
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return cmp.Compare(boolInt(!a.IsNil()), boolInt(!b.IsNil()))
		}
		x, y := a.Elem(), b.Elem()
		if x.Type() != y.Type() {
			return strings.Compare(x.Type().String(), y.Type().String())
		}
		return compareKeys(x, y)
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// typeName returns t's name without package qualifiers: "map[string]*User"
// for map[string]*mypkg.User.
func typeName(t reflect.Type) string {
	s := t.String()
	if strings.IndexByte(s, '.') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	word := 0 // where the current qualified identifier started in out
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && len(out) > word:
			out = out[:word] // drop the qualifier and its dot
		case c == '_' || c == '/' || c == '-' || c >= 0x80 ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			out = append(out, c)
		default:
			out = append(out, c)
			word = len(out)
		}
	}
	return string(out)
}
