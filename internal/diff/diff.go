package diff

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Defaults used when the matching [Options] field is zero.
const (
	DefaultMaxDiffs = 10
	DefaultMaxBytes = 2048

	// DefaultMaxDepth allows 1000 levels of nesting: JSON-like documents
	// about 500 objects deep, or a linked list of 500 nodes, on about a
	// megabyte of goroutine stack.
	DefaultMaxDepth = 1000

	// DefaultMaxWork allows 100 000 units of work per walk: some tens of
	// milliseconds of one core and a few megabytes at most, far above
	// what a row or a document of a few thousand fields needs, far below
	// a map of millions of entries.
	DefaultMaxWork = 100_000
)

// maxValueRunes caps each value shown in a report.
const maxValueRunes = 64

// ErrInvalidOptions is matched, through errors.Is, by every error that
// [Compile] returns.
var ErrInvalidOptions = errors.New("diff: invalid options")

// Options control a comparison. The zero value compares everything, caps
// the report at [DefaultMaxDiffs] differences and [DefaultMaxBytes] bytes,
// and the walk at [DefaultMaxDepth] levels and [DefaultMaxWork] units of
// work.
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

	// Sensitive lists paths, in the syntax of Ignore, of fields, elements
	// and keys whose values a report never shows: it shows a short keyed
	// hash instead (see [Options.HashKey]). A path covers everything below
	// it; a map it names has its keys hidden too, while "Meta.*" hides the
	// values and shows the keys. A struct field tagged `cutover:"sensitive"`
	// is sensitive wherever its struct appears, with or without a path.
	// Sensitive values are compared like any other. The same rules as for
	// Ignore apply to the paths. nil or empty: only tagged fields are
	// sensitive.
	Sensitive []string

	// HideValues makes a report show no values at all: each line gives the
	// path and the kind of difference ("values differ", "missing in new"),
	// and map keys in paths are shown as keyed hashes. false: values are
	// shown, except sensitive ones.
	HideValues bool

	// HashKey is the HMAC-SHA256 key of the hashes that stand for hidden
	// values. nil: a random key drawn once per process, so that hashes tell
	// equal values from different ones within the process but cannot be
	// matched against guessed values, nor compared across processes. A key
	// of your own makes hashes comparable across processes and restarts;
	// anyone who holds it can test guesses of short values such as phone
	// numbers, so keep it as secret as the values. It must be at least 16
	// bytes long; Compile copies it.
	HashKey []byte

	// MaxDepth caps the nesting that a comparison follows: each struct
	// field, element, map value, pointer and interface below the root is
	// one level. Values nested deeper count as differing, and the report
	// says where the walk stopped (see [LimitError]). 0 means
	// [DefaultMaxDepth]; negative values are rejected.
	MaxDepth int

	// MaxWork caps the work of one walk over the two values: one unit per
	// pair of values visited, one per map entry on top of its value, one
	// per KiB of strings and byte slices compared. Values that need more
	// count as differing, and the report says where the walk stopped. A
	// map is charged for all its entries before any is visited, so a huge
	// map stops the walk at once instead of being read. [Comparer.Equal]
	// makes one walk; [Comparer.Diff] and [Comparer.Compare] make at most
	// two, so one call costs at most about twice MaxWork units, whatever
	// the values. 0 means [DefaultMaxWork]; negative values are rejected.
	MaxWork int

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
	Option string // the Options field that held it: "Ignore" or "Sensitive"
	Path   string // the path as given
	Reason string // what is wrong with it
}

// Error returns a message naming the path and the problem.
func (e *PathError) Error() string {
	what := "ignore"
	if e.Option == "Sensitive" {
		what = "sensitive"
	}
	return "diff: " + what + " path " + strconv.Quote(e.Path) + ": " + e.Reason
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
	sens     *state // start state of the sensitive automaton; nil: no rules
	hide     bool   // show no values
	key      []byte // HMAC key of the hashes of hidden values; nil: the process's
	maxDiffs int
	maxBytes int
	maxDepth int
	maxWork  int
}

var defaultComparer = Comparer{maxDiffs: DefaultMaxDiffs, maxBytes: DefaultMaxBytes,
	maxDepth: DefaultMaxDepth, maxWork: DefaultMaxWork}

// Compile checks o and returns a Comparer for it. Errors match
// [ErrInvalidOptions]; a bad ignore path yields a [*PathError].
func Compile(o Options) (*Comparer, error) {
	c := &Comparer{}
	for _, n := range []struct {
		name   string
		v, def int
		dst    *int
	}{
		{"MaxDiffs", o.MaxDiffs, DefaultMaxDiffs, &c.maxDiffs},
		{"MaxBytes", o.MaxBytes, DefaultMaxBytes, &c.maxBytes},
		{"MaxDepth", o.MaxDepth, DefaultMaxDepth, &c.maxDepth},
		{"MaxWork", o.MaxWork, DefaultMaxWork, &c.maxWork},
	} {
		switch {
		case n.v < 0:
			return nil, &optionError{fmt.Sprintf("diff: %s is %d; want 0 (default %d) or more", n.name, n.v, n.def)}
		case n.v == 0:
			*n.dst = n.def
		default:
			*n.dst = n.v
		}
	}
	if o.HashKey != nil && len(o.HashKey) < minHashKey {
		return nil, &optionError{fmt.Sprintf("diff: HashKey is %d bytes; want nil (a random key for the process) or at least %d", len(o.HashKey), minHashKey)}
	}
	c.key, c.hide = slices.Clone(o.HashKey), o.HideValues
	var err error
	if c.ignore, err = compileIgnore("Ignore", o.Ignore); err != nil {
		return nil, err
	}
	if c.sens, err = compileIgnore("Sensitive", o.Sensitive); err != nil {
		return nil, err
	}
	return c, nil
}

// HidesValues reports whether the Comparer's reports show no values, as
// [Options.HideValues] asks.
func (c *Comparer) HidesValues() bool { return c != nil && c.hide }

// Equal reports whether old and new are equal under the rules in the
// package documentation. It stops at the first difference and builds no
// report. Values too deep or too large for the limits in [Options] are
// reported unequal.
func (c *Comparer) Equal(old, new any) bool {
	if c == nil {
		c = &defaultComparer
	}
	eq, _ := c.compare(old, new)
	return eq
}

// Diff returns "" when [Comparer.Equal] would report old and new equal, and
// otherwise a report with one line per difference (lines separated by
// '\n', no final newline), capped as the Options say. When the walk stopped
// at a limit, the report ends with a line saying so. Diff never panics.
func (c *Comparer) Diff(old, new any) string {
	report, _ := c.Compare(old, new)
	return report
}

// Compare is [Comparer.Equal] and [Comparer.Diff] in one call: it returns
// "" and a nil error when old and new are equal, and otherwise their
// report. The error is a [*LimitError] when the values count as differing
// only because they were too deep or too large to compare within the
// limits: the stores may well agree, and the report says where the walk
// stopped and lists any differences met before it.
func (c *Comparer) Compare(old, new any) (report string, err error) {
	if c == nil {
		c = &defaultComparer
	}
	eq, stop := c.compare(old, new)
	if eq {
		return "", nil
	}
	if stop == nil {
		// A difference was found: the report may stop at a limit too,
		// but the answer stands.
		report, _ = c.report(old, new, nil)
		return report, nil
	}
	report, stop = c.report(old, new, stop)
	if stop != nil {
		err = stop
	}
	return report, err
}

// compare walks old and new in Equal mode. stop is set when a limit kept
// the walk from finding a difference.
func (c *Comparer) compare(old, new any) (eq bool, stop *LimitError) {
	w := walker{c: c, work: c.maxWork}
	defer func() {
		if recover() != nil {
			eq, stop = false, nil
		}
	}()
	switch eq = w.value(reflect.ValueOf(old), reflect.ValueOf(new), c.ignore, nil); {
	case w.stop != nil:
		return false, w.stop
	case eq && w.deep != nil:
		return false, w.deep
	}
	return eq, nil
}

// report walks old and new, known to differ, in Diff mode and writes the
// report. stop is where the Equal-mode walk stopped, if it did; report
// returns it, or the same limit with the path where the Diff-mode walk
// stopped.
func (c *Comparer) report(old, new any, stop *LimitError) (report string, _ *LimitError) {
	w := walker{c: c, full: true, work: c.maxWork}
	defer func() {
		// A panic here would be a bug in this package; report it rather
		// than take the caller's request down with it.
		if r := recover(); r != nil {
			report = cut([]byte(": comparison failed: "+capRunes(fmt.Sprint(r), maxValueRunes)), c.maxBytes)
		}
	}()
	w.value(reflect.ValueOf(old), reflect.ValueOf(new), c.ignore, c.sens)
	// This walk knows the path where it stopped.
	line := stop
	switch {
	case w.stop != nil:
		line = w.stop
	case w.deep != nil:
		line = w.deep
	}
	if stop != nil && line.Limit == stop.Limit {
		stop = line
	}
	if w.n == 0 && line == nil {
		// The walks disagree, which they should not; say so rather
		// than call differing values equal.
		return ": values differ", stop
	}
	if more := w.n - w.listed; more > 0 && len(w.out) <= c.maxBytes {
		if len(w.out) > 0 {
			w.out = append(w.out, '\n')
		}
		w.out = append(w.out, "... and "...)
		w.out = strconv.AppendInt(w.out, int64(more), 10)
		if more == 1 {
			w.out = append(w.out, " more difference"...)
		} else {
			w.out = append(w.out, " more differences"...)
		}
	}
	if line == nil {
		return cut(w.out, c.maxBytes), stop
	}
	// The line saying why the walk stopped is the one to keep whole.
	last := line.Error()
	room := c.maxBytes - len(last) - 1
	if len(w.out) == 0 || room < 0 {
		return cut([]byte(last), c.maxBytes), stop
	}
	return cut(w.out, room) + "\n" + last, stop
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
