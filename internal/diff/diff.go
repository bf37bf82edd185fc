package diff

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// Defaults used when the matching [Options] field is zero.
const (
	DefaultMaxDiffs = 10
	DefaultMaxBytes = 2048
)

// maxValueRunes caps each value shown in a report.
const maxValueRunes = 64

// ErrInvalidOptions is matched, through errors.Is, by every error that
// [Compile] returns.
var ErrInvalidOptions = errors.New("diff: invalid options")

// Options control a comparison. The zero value compares everything and caps
// the report at [DefaultMaxDiffs] differences and [DefaultMaxBytes] bytes.
// [Compile] copies what it needs; an Options is safe for concurrent use as
// long as no one changes it.
type Options struct {
	// Ignore lists paths, from the root of the compared values, of fields,
	// elements and keys to skip. A path is a list of segments separated by
	// '.': a struct field name ("Address.Zip"), a map key as printed by
	// fmt's %v ("Meta.etag"), a slice or array index in decimal
	// ("Tags.0"), or "*", which matches any one field, key or index
	// ("Items.*.UpdatedAt"). Pointers and interfaces take no segment, and an
	// embedded struct is named by its type name ("Base.ID"), as in
	// reflect. A path names the thing to skip with everything below it; a
	// map key or element that is present on one side only is skipped too.
	// There is no escaping: a map key that contains '.' or is literally "*"
	// can only be matched with "*".
	//
	// Paths must not be empty, start or end with '.', contain "..", or use
	// brackets ("Tags[0]"); Compile rejects them with a [*PathError].
	// nil or empty: nothing is ignored.
	Ignore []string

	// MaxDiffs caps the differences listed in a report; the report ends
	// with a line saying how many more were found. 0 means
	// [DefaultMaxDiffs]; negative values are rejected.
	MaxDiffs int

	// MaxBytes caps the length of a report in bytes. A longer report is cut
	// on a UTF-8 boundary and "..." is appended, so a report is at most
	// MaxBytes+3 bytes long. 0 means [DefaultMaxBytes]; negative values are
	// rejected.
	MaxBytes int
}

// PathError reports an ignore path that [Compile] rejected. The zero value
// names no path; Compile returns only filled ones and does not change them
// afterwards, so one is safe for concurrent use by readers.
type PathError struct {
	Path   string // the path as given in [Options.Ignore]
	Reason string // what is wrong with it
}

// Error returns a message naming the path and the problem.
func (e *PathError) Error() string {
	return "diff: ignore path " + strconv.Quote(e.Path) + ": " + e.Reason
}

// Unwrap returns [ErrInvalidOptions].
func (e *PathError) Unwrap() error { return ErrInvalidOptions }

// optionError reports an invalid numeric option.
type optionError struct{ msg string }

func (e *optionError) Error() string { return e.msg }
func (e *optionError) Unwrap() error { return ErrInvalidOptions }

// Comparer compares values under one set of [Options]. Its settings never
// change after [Compile], and it is safe for concurrent use; the only state
// it keeps is a cache of per-type lookups. A nil *Comparer behaves like one
// compiled from zero Options.
type Comparer struct {
	ignore   *state // start state of the ignore automaton; nil: no rules
	maxDiffs int
	maxBytes int
}

var defaultComparer = Comparer{maxDiffs: DefaultMaxDiffs, maxBytes: DefaultMaxBytes}

// Compile checks o and returns a Comparer for it. Errors match
// [ErrInvalidOptions]; a bad ignore path yields a [*PathError].
func Compile(o Options) (*Comparer, error) {
	c := &Comparer{maxDiffs: o.MaxDiffs, maxBytes: o.MaxBytes}
	switch {
	case o.MaxDiffs < 0:
		return nil, &optionError{fmt.Sprintf("diff: MaxDiffs is %d; want 0 (default %d) or more", o.MaxDiffs, DefaultMaxDiffs)}
	case o.MaxDiffs == 0:
		c.maxDiffs = DefaultMaxDiffs
	}
	switch {
	case o.MaxBytes < 0:
		return nil, &optionError{fmt.Sprintf("diff: MaxBytes is %d; want 0 (default %d) or more", o.MaxBytes, DefaultMaxBytes)}
	case o.MaxBytes == 0:
		c.maxBytes = DefaultMaxBytes
	}
	st, err := compileIgnore(o.Ignore)
	if err != nil {
		return nil, err
	}
	c.ignore = st
	return c, nil
}

// Equal reports whether old and new are equal under the rules in the
// package documentation. It stops at the first difference and builds no
// report.
func (c *Comparer) Equal(old, new any) (eq bool) {
	if c == nil {
		c = &defaultComparer
	}
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	w := walker{c: c}
	return w.value(reflect.ValueOf(old), reflect.ValueOf(new), c.ignore)
}

// Diff returns "" when [Comparer.Equal] would report old and new equal, and
// otherwise a report with one line per difference (lines separated by
// '\n', no final newline), capped as the Options say. Diff never panics.
func (c *Comparer) Diff(old, new any) (report string) {
	if c == nil {
		c = &defaultComparer
	}
	w := walker{c: c, full: true}
	defer func() {
		// A panic here would be a bug in this package; report it rather
		// than take the caller's request down with it.
		if r := recover(); r != nil {
			report = cut([]byte(": comparison failed: "+capRunes(fmt.Sprint(r), maxValueRunes)), c.maxBytes)
		}
	}()
	w.value(reflect.ValueOf(old), reflect.ValueOf(new), c.ignore)
	if w.n == 0 {
		return ""
	}
	if more := w.n - w.listed; more > 0 && len(w.out) <= c.maxBytes {
		w.out = append(w.out, "\n... and "...)
		w.out = strconv.AppendInt(w.out, int64(more), 10)
		if more == 1 {
			w.out = append(w.out, " more difference"...)
		} else {
			w.out = append(w.out, " more differences"...)
		}
	}
	return cut(w.out, c.maxBytes)
}

// cut returns s, or its first n bytes (fewer, to end on a UTF-8 boundary)
// followed by "..." when s is longer than n.
func cut(s []byte, n int) string {
	if len(s) <= n {
		return string(s)
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return string(s[:i]) + "..."
}
