package backfill

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// The controls below steer the backfill of a migration from any instance,
// through the metadata: the runner, wherever it runs, sees them by its next
// batch. Each is recorded in the migration's history with actor, who must
// not be empty. A nil migration or an empty actor is an error wrapping
// [ErrInvalidInput], and changes nothing.

// Pause asks the runner of m's backfill to pause after its current batch.
// It keeps its lease while paused.
func Pause(ctx context.Context, m *expandcontract.Migration, actor string) error {
	return steer(ctx, m, actor, "pause", `backfill_paused = 1`)
}

// Resume lifts a pause asked for with [Pause].
func Resume(ctx context.Context, m *expandcontract.Migration, actor string) error {
	return steer(ctx, m, actor, "resume", `backfill_paused = 0`)
}

// Cancel asks the runner of m's backfill to stop after its current batch
// and return an error wrapping [ErrCanceled]. The checkpoint stays: once
// the cancellation is lifted with [ResetCancel], a new run resumes from it.
func Cancel(ctx context.Context, m *expandcontract.Migration, actor string) error {
	return steer(ctx, m, actor, "cancel", `backfill_canceled = 1`)
}

// ResetCancel lifts a cancellation, so that a new run may start.
func ResetCancel(ctx context.Context, m *expandcontract.Migration, actor string) error {
	return steer(ctx, m, actor, "reset cancel", `backfill_canceled = 0`)
}

// MarkDone records that m's backfill is complete, for a backfill made by
// other means than [Runner.Run].
func MarkDone(ctx context.Context, m *expandcontract.Migration, actor string) error {
	h := meta.HandleOf(m)
	if h == nil {
		return fmt.Errorf("%w: marked done: nil migration", ErrInvalidInput)
	}
	return steer(ctx, m, actor, "marked done", `backfill_done_at = ?`, meta.Micros(h.Store.Now()))
}

// steer sets columns of m's row with set and args, recording detail.
func steer(ctx context.Context, m *expandcontract.Migration, actor, detail, set string, args ...any) error {
	h := meta.HandleOf(m)
	switch {
	case h == nil:
		return fmt.Errorf("%w: %s: nil migration", ErrInvalidInput, detail)
	case strings.TrimSpace(actor) == "":
		return fmt.Errorf("%w: %s of %q needs an actor", ErrInvalidInput, detail, h.Name)
	}
	return h.Store.Update(ctx, h.Name, "backfill", actor, detail, set, args...)
}
