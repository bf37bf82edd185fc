package expandcontract

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// RecordVerification stores v as the latest verification of the migration
// name, stamped now unless v.At is set, and records it in the history. A
// move to switchreads needs a clean one newer than the backfill's end.
func (s *Store) RecordVerification(ctx context.Context, name string, v Verification) error {
	if v.Rows < 0 || v.Differences < 0 {
		return fmt.Errorf("%w: verification with %d rows and %d differences", ErrInvalidInput, v.Rows, v.Differences)
	}
	if v.Clean && v.Differences > 0 {
		return fmt.Errorf("%w: a clean verification with %d differences", ErrInvalidInput, v.Differences)
	}
	if v.At.IsZero() {
		v.At = s.now()
	}
	detail := fmt.Sprintf("clean=%v rows=%d differences=%d", v.Clean, v.Rows, v.Differences)
	if v.Detail != "" {
		detail += ": " + v.Detail
	}
	return s.update(ctx, name, "verify", "verification", detail,
		`verified_at = ?, verify_clean = ?, verify_rows = ?, verify_diffs = ?, verify_detail = ?`,
		micros(v.At), boolInt(v.Clean), v.Rows, v.Differences, v.Detail)
}

// MarkBackfillDone records that the backfill of the migration name is
// complete, for a backfill made by other means than [Backfiller.Run]. actor is
// recorded in the history.
func (s *Store) MarkBackfillDone(ctx context.Context, name, actor string) error {
	return s.update(ctx, name, "backfill", actor, "marked done",
		`backfill_done_at = ?`, micros(s.now()))
}

// PauseBackfill asks the runner of the migration's backfill, in whatever
// instance it runs, to pause after its current batch.
func (s *Store) PauseBackfill(ctx context.Context, name, actor string) error {
	return s.update(ctx, name, "backfill", actor, "pause", `backfill_paused = 1`)
}

// ResumeBackfill lifts a pause asked for with [Store.PauseBackfill].
func (s *Store) ResumeBackfill(ctx context.Context, name, actor string) error {
	return s.update(ctx, name, "backfill", actor, "resume", `backfill_paused = 0`)
}

// CancelBackfill asks the runner of the migration's backfill to stop after
// its current batch and return. The checkpoint stays: once the cancellation
// is lifted with [Store.ResetBackfillCancel], a new run resumes from it.
func (s *Store) CancelBackfill(ctx context.Context, name, actor string) error {
	return s.update(ctx, name, "backfill", actor, "cancel", `backfill_canceled = 1`)
}

// ResetBackfillCancel lifts a cancellation, so that a new run may start.
func (s *Store) ResetBackfillCancel(ctx context.Context, name, actor string) error {
	return s.update(ctx, name, "backfill", actor, "reset cancel", `backfill_canceled = 0`)
}

// update sets columns of the migration name, which must exist, and records
// an event of kind with actor and detail, in one transaction.
func (s *Store) update(ctx context.Context, name, kind, actor, detail, set string, args ...any) error {
	if err := validName(name); err != nil {
		return err
	}
	if actor == "" {
		return fmt.Errorf("%w: %s of %q needs an actor", ErrInvalidInput, kind, name)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		m, err := s.get(ctx, tx, name)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.t.migrations+` SET `+set+`, updated_at = ? WHERE name = ?`),
			append(args, micros(s.now()), name)...)
		if err != nil {
			return fmt.Errorf("expandcontract: %s of %q: %w", kind, name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		ev := Event{Migration: name, Actor: actor, Kind: kind, From: m.Phase, To: m.Phase, Version: m.Version, Detail: detail}
		if err := s.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record %s of %q: %w", kind, name, err)
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
