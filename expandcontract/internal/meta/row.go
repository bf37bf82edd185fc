package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Row is the scanned form of a row of the migrations table.
type Row struct {
	Name         string         `db:"name"`
	Phase        string         `db:"phase"`
	Version      int64          `db:"version"`
	CreatedAt    int64          `db:"created_at"`
	UpdatedAt    int64          `db:"updated_at"`
	Checkpoint   sql.NullString `db:"backfill_checkpoint"`
	Rows         int64          `db:"backfill_rows"`
	Total        int64          `db:"backfill_total"`
	StartedAt    sql.NullInt64  `db:"backfill_started_at"`
	DoneAt       sql.NullInt64  `db:"backfill_done_at"`
	Paused       int64          `db:"backfill_paused"`
	Canceled     int64          `db:"backfill_canceled"`
	LeaseOwner   sql.NullString `db:"lease_owner"`
	LeaseUntil   sql.NullInt64  `db:"lease_until"`
	VerifiedAt   sql.NullInt64  `db:"verified_at"`
	VerifyClean  sql.NullInt64  `db:"verify_clean"`
	VerifyRows   sql.NullInt64  `db:"verify_rows"`
	VerifyDiffs  sql.NullInt64  `db:"verify_diffs"`
	VerifyDetail sql.NullString `db:"verify_detail"`
	RateLimit    float64        `db:"backfill_rate_limit"`
	BatchSize    int64          `db:"backfill_batch_size"`
	Settings     int64          `db:"backfill_settings"`
	Rate         float64        `db:"backfill_rate"`
	Samples      sql.NullString `db:"backfill_samples"`
	Throttled    sql.NullString `db:"backfill_throttled"`

	CeilingStage    sql.NullString `db:"ceiling_stage"`
	CeilingSetAt    sql.NullInt64  `db:"ceiling_set_at"`
	CeilingUntil    sql.NullInt64  `db:"ceiling_until"`
	CeilingTrigger  sql.NullString `db:"ceiling_trigger"`
	CeilingFigures  sql.NullString `db:"ceiling_figures"`
	CeilingInstance sql.NullString `db:"ceiling_instance"`
	CeilingLiftedAt sql.NullInt64  `db:"ceiling_lifted_at"`
	CeilingVersion  int64          `db:"ceiling_version"`

	RunStarted sql.NullInt64  `db:"verify_run_started_at"`
	RunOwner   sql.NullString `db:"verify_run_owner"`
	RunRows    int64          `db:"verify_run_rows"`
	RunTotal   int64          `db:"verify_run_total"`
	RunAt      sql.NullInt64  `db:"verify_run_at"`
}

// Columns lists the columns of a [Row], for a SELECT.
const Columns = `name, phase, version, created_at, updated_at, backfill_checkpoint, backfill_rows,
	backfill_total, backfill_started_at, backfill_done_at, backfill_paused, backfill_canceled, lease_owner,
	lease_until, verified_at, verify_clean, verify_rows, verify_diffs, verify_detail, backfill_rate_limit,
	backfill_batch_size, backfill_settings, backfill_rate, backfill_samples,
	backfill_throttled,
	ceiling_stage, ceiling_set_at, ceiling_until, ceiling_trigger, ceiling_figures, ceiling_instance,
	ceiling_lifted_at, ceiling_version,
	verify_run_started_at, verify_run_owner, verify_run_rows, verify_run_total, verify_run_at`

// Get reads the row of the migration name through q, or returns an error
// wrapping [ErrNotFound].
func (s *Store) Get(ctx context.Context, q sqlx.QueryerContext, name string) (Row, error) {
	return s.get(ctx, q, name, "")
}

// GetForUpdate is [Store.Get] that locks the row until the end of q, a
// transaction begun with [Store.BeginTx].
func (s *Store) GetForUpdate(ctx context.Context, tx *sqlx.Tx, name string) (Row, error) {
	return s.get(ctx, tx, name, s.Dialect.ForUpdate())
}

func (s *Store) get(ctx context.Context, q sqlx.QueryerContext, name, lock string) (Row, error) {
	var r Row
	err := sqlx.GetContext(ctx, q, &r, s.Q(`SELECT `+Columns+` FROM `+s.T.Migrations+` WHERE name = ?`+lock), name)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return Row{}, fmt.Errorf("expandcontract: read migration %q: %w", name, err)
	}
	if err := r.Check(); err != nil {
		return Row{}, err
	}
	return r, nil
}

// Check returns an error wrapping [ErrCorrupt] if r holds what the library
// never writes: an unknown phase, a version below 1, negative backfill
// counts or settings, a ceiling without its times.
func (r Row) Check() error {
	if _, err := PhaseIndex(r.Phase); err != nil {
		return fmt.Errorf("%w: migration %q: phase: %w", ErrCorrupt, r.Name, err)
	}
	if r.Version < 1 || r.Rows < 0 || r.Total < 0 {
		return fmt.Errorf("%w: migration %q: version %d, backfill rows %d of %d",
			ErrCorrupt, r.Name, r.Version, r.Rows, r.Total)
	}
	if !(r.RateLimit >= 0) || r.BatchSize < 0 || !(r.Rate >= 0) {
		return fmt.Errorf("%w: migration %q: backfill rate limit %v, batch size %d, rate %v",
			ErrCorrupt, r.Name, r.RateLimit, r.BatchSize, r.Rate)
	}
	if r.CeilingVersion < 0 || r.CeilingStage.Valid && (!r.CeilingSetAt.Valid || !r.CeilingUntil.Valid) {
		return fmt.Errorf("%w: migration %q: ceiling %q, version %d, set at %v, until %v", ErrCorrupt, r.Name,
			r.CeilingStage.String, r.CeilingVersion, r.CeilingSetAt.Valid, r.CeilingUntil.Valid)
	}
	return nil
}

// Event is one entry of a migration's history, with its phases by name.
type Event struct {
	Migration string
	At        time.Time // zero means now, by the store's clock
	Actor     string
	Kind      string
	From, To  string
	Version   int64
	Reason    string
	Detail    string
}

// AddEvent appends ev to the history through e.
func (s *Store) AddEvent(ctx context.Context, e sqlx.ExecerContext, ev Event) error {
	if ev.At.IsZero() {
		ev.At = s.Now()
	}
	_, err := e.ExecContext(ctx, s.Q(`INSERT INTO `+s.T.Events+
		` (migration, at, actor, kind, from_phase, to_phase, version, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		ev.Migration, Micros(ev.At), ev.Actor, ev.Kind, ev.From, ev.To, ev.Version, ev.Reason, ev.Detail)
	return err
}

// Update changes the row of the migration name, which must exist, and
// records an event of kind with actor and reason, in one transaction that
// holds the row locked. change gets the row as it was and returns the SQL
// assignments to make, their args, and the event's detail. The event
// carries the migration's phase and version, which the update leaves as
// they are.
func (s *Store) Update(ctx context.Context, name, kind, actor, reason string,
	change func(old Row) (set string, args []any, detail string)) error {
	return s.InTx(ctx, func(tx *sqlx.Tx) error {
		m, err := s.GetForUpdate(ctx, tx, name)
		if err != nil {
			return err
		}
		set, args, detail := change(m)
		// The row is locked: the update matches it, whatever MySQL counts
		// as changed.
		if _, err := tx.ExecContext(ctx, s.Q(`UPDATE `+s.T.Migrations+` SET `+set+`, updated_at = ? WHERE name = ?`),
			append(args, Micros(s.Now()), name)...); err != nil {
			return fmt.Errorf("expandcontract: %s of %q: %w", kind, name, err)
		}
		ev := Event{Migration: name, Actor: actor, Kind: kind, From: m.Phase, To: m.Phase, Version: m.Version,
			Reason: reason, Detail: detail}
		if err := s.AddEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record %s of %q: %w", kind, name, err)
		}
		return nil
	})
}
