package expandcontract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Migration is the stored state of one migration.
type Migration struct {
	Name         string
	Phase        Phase
	Version      int64 // bumped by every change of phase; the compare-and-swap token
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Backfill     BackfillState
	Verification Verification
}

// BackfillState is the progress of a migration's backfill.
type BackfillState struct {
	Checkpoint string    // the last key copied, encoded; "" before the first batch
	Rows       int64     // rows copied so far
	Total      int64     // rows to copy, as estimated when the backfill started
	StartedAt  time.Time // zero until a runner starts
	DoneAt     time.Time // zero until the last batch is committed
	Paused     bool      // a pause was asked for
	Canceled   bool      // a cancellation was asked for
	LeaseOwner string    // the runner holding the lease, if any
	LeaseUntil time.Time // when that lease runs out unless renewed
}

// Done reports whether the backfill finished.
func (b BackfillState) Done() bool { return !b.DoneAt.IsZero() }

// Verification is the result of the latest verification of a migration.
type Verification struct {
	At          time.Time // zero if never verified
	Clean       bool      // true if no difference was found
	Rows        int64     // rows compared
	Differences int64     // keys found to differ
	Detail      string    // a summary, with a sample of the differing keys
}

// Event is one entry of a migration's append-only history.
type Event struct {
	ID        int64
	Migration string
	At        time.Time
	Actor     string // who asked, such as a user or an instance id
	Kind      string // "create", "move", "force", "refuse", "backfill", "verify"
	From, To  Phase
	Version   int64  // the migration's version after the event
	Reason    string // why, as given by the actor
	Detail    string // what the library adds: a refusal's cause, warnings
}

// migrationRow is the scanned form of a row of the migrations table.
type migrationRow struct {
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
}

const migrationColumns = `name, phase, version, created_at, updated_at, backfill_checkpoint, backfill_rows,
	backfill_total, backfill_started_at, backfill_done_at, backfill_paused, backfill_canceled, lease_owner,
	lease_until, verified_at, verify_clean, verify_rows, verify_diffs, verify_detail`

func (r migrationRow) migration() (Migration, error) {
	p, err := ParsePhase(r.Phase)
	if err != nil {
		return Migration{}, fmt.Errorf("%w: migration %q: phase: %w", ErrCorrupt, r.Name, err)
	}
	if r.Version < 1 || r.Rows < 0 || r.Total < 0 {
		return Migration{}, fmt.Errorf("%w: migration %q: version %d, backfill rows %d of %d",
			ErrCorrupt, r.Name, r.Version, r.Rows, r.Total)
	}
	return Migration{
		Name: r.Name, Phase: p, Version: r.Version,
		CreatedAt: time.UnixMicro(r.CreatedAt).UTC(), UpdatedAt: time.UnixMicro(r.UpdatedAt).UTC(),
		Backfill: BackfillState{
			Checkpoint: r.Checkpoint.String, Rows: r.Rows, Total: r.Total,
			StartedAt: fromMicros(r.StartedAt), DoneAt: fromMicros(r.DoneAt),
			Paused: r.Paused != 0, Canceled: r.Canceled != 0,
			LeaseOwner: r.LeaseOwner.String, LeaseUntil: fromMicros(r.LeaseUntil),
		},
		Verification: Verification{
			At: fromMicros(r.VerifiedAt), Clean: r.VerifyClean.Int64 != 0,
			Rows: r.VerifyRows.Int64, Differences: r.VerifyDiffs.Int64, Detail: r.VerifyDetail.String,
		},
	}, nil
}

// Ensure returns the migration name, creating it in the [Expand] phase if it
// does not exist yet. Every instance of a service can call it at start.
func (s *Store) Ensure(ctx context.Context, name, actor string) (Migration, error) {
	if err := validName(name); err != nil {
		return Migration{}, err
	}
	m, err := s.Get(ctx, name)
	if !errors.Is(err, ErrNotFound) {
		return m, err
	}
	now := micros(s.now())
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+s.t.migrations+
			` (name, phase, version, created_at, updated_at) VALUES (?, ?, 1, ?, ?)`),
			name, Expand.String(), now, now)
		if err != nil {
			return err
		}
		return s.addEvent(ctx, tx, Event{Migration: name, Actor: actor, Kind: "create", From: Expand, To: Expand, Version: 1})
	})
	if err != nil && !s.dialect.IsUniqueViolation(err) {
		return Migration{}, fmt.Errorf("expandcontract: create migration %q: %w", name, err)
	}
	return s.Get(ctx, name) // also when another instance created it first
}

// Get returns the migration name, or an error wrapping [ErrNotFound].
func (s *Store) Get(ctx context.Context, name string) (Migration, error) {
	return s.get(ctx, s.db, name)
}

func (s *Store) get(ctx context.Context, q sqlx.QueryerContext, name string) (Migration, error) {
	var r migrationRow
	err := sqlx.GetContext(ctx, q, &r, s.q(`SELECT `+migrationColumns+` FROM `+s.t.migrations+` WHERE name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return Migration{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return Migration{}, fmt.Errorf("expandcontract: read migration %q: %w", name, err)
	}
	return r.migration()
}

// Events returns the history of the migration name, oldest first.
func (s *Store) Events(ctx context.Context, name string) ([]Event, error) {
	var rows []struct {
		ID        int64  `db:"id"`
		Migration string `db:"migration"`
		At        int64  `db:"at"`
		Actor     string `db:"actor"`
		Kind      string `db:"kind"`
		From      string `db:"from_phase"`
		To        string `db:"to_phase"`
		Version   int64  `db:"version"`
		Reason    string `db:"reason"`
		Detail    string `db:"detail"`
	}
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT id, migration, at, actor, kind, from_phase, to_phase, version,
		reason, detail FROM `+s.t.events+` WHERE migration = ? ORDER BY id`), name)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read events of %q: %w", name, err)
	}
	events := make([]Event, len(rows))
	for i, r := range rows {
		from, err1 := ParsePhase(r.From)
		to, err2 := ParsePhase(r.To)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%w: event %d of %q: %w", ErrCorrupt, r.ID, name, err)
		}
		events[i] = Event{ID: r.ID, Migration: r.Migration, At: time.UnixMicro(r.At).UTC(), Actor: r.Actor,
			Kind: r.Kind, From: from, To: to, Version: r.Version, Reason: r.Reason, Detail: r.Detail}
	}
	return events, nil
}

func (s *Store) addEvent(ctx context.Context, e sqlx.ExecerContext, ev Event) error {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	_, err := e.ExecContext(ctx, s.q(`INSERT INTO `+s.t.events+
		` (migration, at, actor, kind, from_phase, to_phase, version, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		ev.Migration, micros(ev.At), ev.Actor, ev.Kind, ev.From.String(), ev.To.String(), ev.Version, ev.Reason, ev.Detail)
	return err
}

// inTx runs fn in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
