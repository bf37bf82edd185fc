package diff

import (
	"errors"
	"strconv"
)

// ErrLimit is matched, through errors.Is, by every [*LimitError].
var ErrLimit = errors.New("diff: comparison stopped at a limit")

// The limits a walk can stop at, as [LimitError.Limit] names them.
const (
	LimitDepth = "depth" // Options.MaxDepth
	LimitWork  = "work"  // Options.MaxWork
)

// maxLimitPath caps the path that a [LimitError] keeps, in bytes.
const maxLimitPath = 256

// LimitError says that a comparison stopped at one of its limits before it
// could tell whether two values are equal; they then count as differing.
// [Comparer.Compare] returns it, and the last line of the report is its
// message. The zero value names no limit; Compare returns only filled ones
// and does not change them afterwards, so one is safe for concurrent use
// by readers.
type LimitError struct {
	Limit string // LimitDepth or LimitWork
	Max   int    // the limit's value, as the Comparer applies it

	// Path is where the walk stopped, written as in a report and cut to
	// 256 bytes; "" is the root. Redaction rules apply to it as to the
	// report.
	Path string

	// HasPath says whether Path is known: a walk that builds no report
	// does not keep the path.
	HasPath bool
}

// Error returns the line a report ends with, such as
// "comparison stopped: depth limit 1000 exceeded at .Next.Next".
func (e *LimitError) Error() string {
	b := make([]byte, 0, 64+len(e.Path))
	b = append(b, "comparison stopped: "...)
	b = append(b, e.Limit...)
	b = append(b, " limit "...)
	b = strconv.AppendInt(b, int64(e.Max), 10)
	b = append(b, " exceeded"...)
	switch {
	case !e.HasPath:
	case e.Path == "":
		b = append(b, " at the root"...)
	default:
		b = append(b, " at "...)
		b = append(b, e.Path...)
	}
	return string(b)
}

// Unwrap returns [ErrLimit].
func (e *LimitError) Unwrap() error { return ErrLimit }

// charge takes n units of work from the budget and reports whether any
// was left; when none was, the walk stops at the current path.
func (w *walker) charge(n int) bool {
	w.work -= n
	if w.work < 0 {
		if w.stop == nil {
			w.stop = w.limit(LimitWork, w.c.maxWork)
		}
		return false
	}
	return true
}

// limit returns the error for the limit reached at the current path.
func (w *walker) limit(limit string, max int) *LimitError {
	e := &LimitError{Limit: limit, Max: max, HasPath: w.full}
	if w.full {
		e.Path = cut(w.appendPath(nil, maxLimitPath+1), maxLimitPath)
	}
	return e
}
