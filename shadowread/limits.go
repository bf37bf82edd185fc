package shadowread

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cutover-go/cutover/internal/diff"
)

// Defaults of the limits of one comparison; see [WithCompareLimits].
const (
	DefaultCompareDepth = diff.DefaultMaxDepth // levels of nesting followed: 1000
	DefaultCompareWork  = diff.DefaultMaxWork  // units of work: 100 000
)

// WithCompareLimits bounds the cost of each comparison, whatever the
// stores return. The default comparison and the diff follow values at
// most maxDepth levels deep (each struct field, element, map value,
// pointer and interface is a level) and do at most maxWork units of work
// (one per pair of values, one per map entry, one per KiB of strings and
// byte slices). Comparing two answers, and writing their diff, then takes
// at most about twice maxWork units (a mismatch is compared once more, with
// the authoritative store's second answer), and the memory it needs grows
// with maxWork, never with the values. A map is charged for all its
// entries before any is read.
//
// A comparison that reaches either limit before it finds a difference
// cannot tell whether the stores agree: it is counted in
// cutover.shadowread.comparisons with reason too_large and logged (rate
// limited) with its report, whose last line says which limit stopped it
// and where, as in "comparison stopped: depth limit 1000 exceeded at
// .Parent.Parent...". It is not a mismatch: it is not recorded for repair
// and the mismatch function is not called. A difference found before a
// limit is a mismatch as usual, and its report ends with that line.
// With [WithCompare] the limits bound only the diff of a mismatch.
//
// Zero keeps the default, [DefaultCompareDepth] and [DefaultCompareWork];
// a negative value makes [New] fail.
func WithCompareLimits[T any](maxDepth, maxWork int) Option[T] {
	return optionFunc[T](func(c *config[T]) { c.diff.MaxDepth, c.diff.MaxWork = maxDepth, maxWork })
}

// unanswered counts and logs a comparison that could not tell whether the
// stores agree: the values were too large for the limits, or a compare or
// normalize function panicked.
func (r *Reader[T]) unanswered(ctx context.Context, key string, m *Mismatch[T], err error) {
	if errors.Is(err, diff.ErrLimit) {
		r.counted(ctx, m.Stage, resultTooLarge)
		r.logLimited(ctx, slog.LevelWarn, "cutover: shadow comparison stopped at its limits", "op", r.op, "key", key,
			"stage", m.Stage.String(), "diff", m.Diff)
		return
	}
	r.counted(ctx, m.Stage, resultError)
	r.logLimited(ctx, slog.LevelError, "cutover: shadow comparison failed", "op", r.op, "key", key, "err", err)
}
