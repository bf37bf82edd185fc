package backfill

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// The controls below steer the backfill of a migration from any instance,
// through the metadata: the runner, wherever it runs, sees them by its next
// batch. Each is recorded in the migration's history with actor, who must
// not be empty, and reason, which may be, and a detail saying what changed
// from what to what. A nil migration or an empty actor is an error
// wrapping [ErrInvalidInput], and changes nothing; a migration that does
// not exist is an error wrapping [expandcontract.ErrNotFound].

// MaxRate is the highest rate limit [SetRate] takes, in rows per second.
const MaxRate = 1e9

// MaxBatchSize is the largest batch size [SetBatchSize] takes, in keys.
const MaxBatchSize = 1_000_000

// Pause asks the runner of m's backfill to pause after its current batch,
// or at once if it waits between batches. It keeps its lease while paused.
func Pause(ctx context.Context, m *expandcontract.Migration, actor, reason string) error {
	return steer(ctx, m, actor, reason, "pause", func(c meta.Row) (string, []any, string) {
		return `backfill_paused = 1`, nil, fmt.Sprintf("pause: paused %v -> true", c.Paused != 0)
	})
}

// Resume lifts a pause asked for with [Pause].
func Resume(ctx context.Context, m *expandcontract.Migration, actor, reason string) error {
	return steer(ctx, m, actor, reason, "resume", func(c meta.Row) (string, []any, string) {
		return `backfill_paused = 0`, nil, fmt.Sprintf("resume: paused %v -> false", c.Paused != 0)
	})
}

// Cancel asks the runner of m's backfill to stop after its current batch,
// or at once if it waits between batches, and return an error wrapping
// [ErrCanceled]. The checkpoint stays: once the cancellation is lifted
// with [ResetCancel], a new run resumes from it.
func Cancel(ctx context.Context, m *expandcontract.Migration, actor, reason string) error {
	return steer(ctx, m, actor, reason, "cancel", func(c meta.Row) (string, []any, string) {
		return `backfill_canceled = 1`, nil, fmt.Sprintf("cancel: canceled %v -> true", c.Canceled != 0)
	})
}

// ResetCancel lifts a cancellation, so that a new run may start.
func ResetCancel(ctx context.Context, m *expandcontract.Migration, actor, reason string) error {
	return steer(ctx, m, actor, reason, "reset cancel", func(c meta.Row) (string, []any, string) {
		return `backfill_canceled = 0`, nil, fmt.Sprintf("reset cancel: canceled %v -> false", c.Canceled != 0)
	})
}

// MarkDone records that m's backfill is complete, for a backfill made by
// other means than [Runner.Run].
func MarkDone(ctx context.Context, m *expandcontract.Migration, actor, reason string) error {
	h := meta.HandleOf(m)
	if h == nil {
		return fmt.Errorf("%w: marked done: nil migration", ErrInvalidInput)
	}
	now := h.Store.Now()
	return steer(ctx, m, actor, reason, "marked done", func(c meta.Row) (string, []any, string) {
		return `backfill_done_at = ?`, []any{meta.Micros(now)},
			fmt.Sprintf("marked done: done at %s -> %s", timeString(meta.FromMicros(c.DoneAt)), timeString(now))
	})
}

// SetRate sets the rate limit of m's backfill to rowsPerSecond, which
// overrides the rate of the runner's [WithRate] while it is set; 0 lifts
// it, and the runner's own rate holds again. A running runner applies it
// from the wait after its current batch on, and one that waits after a
// batch applies it to that wait. A negative, NaN or infinite rate, or one
// above [MaxRate], is an error wrapping [ErrInvalidInput], and changes
// nothing.
func SetRate(ctx context.Context, m *expandcontract.Migration, rowsPerSecond float64, actor, reason string) error {
	if rowsPerSecond < 0 || rowsPerSecond > MaxRate || math.IsNaN(rowsPerSecond) {
		return fmt.Errorf("%w: rate limit: %v is not zero (none) or a rate up to %g rows per second",
			ErrInvalidInput, rowsPerSecond, float64(MaxRate))
	}
	return steer(ctx, m, actor, reason, "rate limit", func(c meta.Row) (string, []any, string) {
		return `backfill_rate_limit = ?, backfill_settings = backfill_settings + 1`, []any{rowsPerSecond},
			fmt.Sprintf("rate limit: %s -> %s", rateString(c.RateLimit), rateString(rowsPerSecond))
	})
}

// SetBatchSize sets the batch size of m's backfill to n keys, which
// overrides the runner's [WithBatchSize] while it is set; 0 lifts it, and
// the runner's own size holds again. A running runner applies it to the
// batches after the one that commits next, or to the next batch if it
// waits between batches. A negative n, or one above [MaxBatchSize], is an
// error wrapping [ErrInvalidInput], and changes nothing.
func SetBatchSize(ctx context.Context, m *expandcontract.Migration, n int, actor, reason string) error {
	if n < 0 || n > MaxBatchSize {
		return fmt.Errorf("%w: batch size: %d is not zero (none) or a size up to %d keys", ErrInvalidInput, n, MaxBatchSize)
	}
	return steer(ctx, m, actor, reason, "batch size", func(c meta.Row) (string, []any, string) {
		return `backfill_batch_size = ?, backfill_settings = backfill_settings + 1`, []any{n},
			fmt.Sprintf("batch size: %s -> %s", sizeString(c.BatchSize), sizeString(int64(n)))
	})
}

// steer changes m's row as change says, recording it as what.
func steer(ctx context.Context, m *expandcontract.Migration, actor, reason, what string,
	change func(meta.Row) (set string, args []any, detail string)) error {
	h := meta.HandleOf(m)
	switch {
	case h == nil:
		return fmt.Errorf("%w: %s: nil migration", ErrInvalidInput, what)
	case strings.TrimSpace(actor) == "":
		return fmt.Errorf("%w: %s of %q needs an actor", ErrInvalidInput, what, h.Name)
	}
	return h.Store.Update(ctx, h.Name, "backfill", actor, reason, change)
}

// rateString shows a stored rate limit in the history.
func rateString(r float64) string {
	if r == 0 {
		return "none"
	}
	return strconv.FormatFloat(r, 'g', -1, 64) + " rows/s"
}

// sizeString shows a stored batch size in the history.
func sizeString(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10) + " keys"
}

// timeString shows a time in the history; the zero time is "none".
func timeString(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Format(time.RFC3339Nano)
}
