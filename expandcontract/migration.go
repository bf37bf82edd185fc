package expandcontract

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

func init() {
	meta.ErrNotFound, meta.ErrNewerSchema, meta.ErrCorrupt, meta.ErrUnknownPhase = ErrNotFound, ErrNewerSchema, ErrCorrupt, ErrUnknownPhase
	meta.ErrSchemaMissing = ErrSchemaMissing
	meta.SetHandleOf(func(m any) *meta.Handle {
		if mg, _ := m.(*Migration); mg != nil {
			return &mg.h
		}
		return nil
	})
}

// Migration is one migration of a [Store], by name: the handle through
// which its phase is moved and read, and which the backfill, verify and
// repair packages take. Get one with [Store.Migration]; the zero value is
// not usable. A Migration holds no state of its own and is safe for
// concurrent use; any number of handles may name the same migration.
type Migration struct {
	s *Store
	h meta.Handle
}

// Migration returns the handle of the migration name, which need not exist
// yet (see [Migration.Ensure]). The name must be 1 to 255 bytes of valid
// UTF-8 without control characters; otherwise the error wraps
// [ErrInvalidInput].
func (s *Store) Migration(name string) (*Migration, error) {
	if err := checkName("migration name", name); err != nil {
		return nil, err
	}
	return &Migration{s: s, h: meta.Handle{Store: s.m, Name: name}}, nil
}

// Name returns the migration's name.
func (m *Migration) Name() string { return m.h.Name }

// State is the stored state of one migration.
type State struct {
	Name         string
	Phase        Phase
	Version      int64 // bumped by every change of phase; the compare-and-swap token
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Backfill     BackfillState
	Verification Verification
	// Ceiling is the ceiling that [Migration.Demote] set, in force or past
	// its cool-down (see [Ceiling.Active]); nil if none is set.
	Ceiling *Ceiling
	// LiftedAt is when a ceiling was last cleared, by [Migration.Lift] or
	// a move; zero if never.
	LiftedAt time.Time
}

// BackfillState is the progress of a migration's backfill.
type BackfillState struct {
	Checkpoint string    // the last key copied, encoded; "" before the first batch
	Rows       int64     // rows copied so far
	Total      int64     // rows to copy, as estimated by the last run that committed a batch
	StartedAt  time.Time // when the first run that committed a batch started; zero until then
	DoneAt     time.Time // zero until the last batch is committed
	Paused     bool      // a pause was asked for
	Canceled   bool      // a cancellation was asked for
	LeaseOwner string    // the runner holding the lease, if any
	LeaseUntil time.Time // when that lease runs out unless renewed
	// RateLimit is the rate limit an operator set, in rows per second,
	// which overrides the runner's own while set; 0 if none is set, and
	// the runner's own (backfill.WithRate) holds.
	RateLimit float64
	// BatchSize is the batch size an operator set, in keys, which
	// overrides the runner's own while set; 0 if none is set, and the
	// runner's own (backfill.WithBatchSize) holds.
	BatchSize int
	// Throttled says why the runner holding the lease waits before its
	// next batch, such as "replica lag 12s > 5s on walreceiver
	// (127.0.0.1)": set while a throttle (backfill.WithLagThrottle,
	// backfill.WithThrottle) holds it back, and cleared when it commits a
	// batch again or gives back the lease. "" if it is not throttled.
	Throttled string
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
	Kind      string // "create", "move", "force", "refuse", "conflict", "backfill", "verify", "retire", "ddl", "override", "demote", "held", "lift", "alarm"
	From, To  Phase
	Version   int64  // the migration's version after the event
	Reason    string // why, as given by the actor
	Detail    string // what the library adds: a refusal's cause, warnings
}

// state converts a scanned row.
func state(r meta.Row) (State, error) {
	p, err := ParsePhase(r.Phase)
	if err != nil {
		return State{}, fmt.Errorf("%w: migration %q: phase: %w", ErrCorrupt, r.Name, err)
	}
	c, err := ceiling(r)
	if err != nil {
		return State{}, err
	}
	return State{
		Ceiling: c, LiftedAt: meta.FromMicros(r.CeilingLiftedAt),
		Name: r.Name, Phase: p, Version: r.Version,
		CreatedAt: time.UnixMicro(r.CreatedAt).UTC(), UpdatedAt: time.UnixMicro(r.UpdatedAt).UTC(),
		Backfill: BackfillState{
			Checkpoint: r.Checkpoint.String, Rows: r.Rows, Total: r.Total,
			StartedAt: meta.FromMicros(r.StartedAt), DoneAt: meta.FromMicros(r.DoneAt),
			Paused: r.Paused != 0, Canceled: r.Canceled != 0,
			LeaseOwner: r.LeaseOwner.String, LeaseUntil: meta.FromMicros(r.LeaseUntil),
			RateLimit: r.RateLimit, BatchSize: int(r.BatchSize), Throttled: r.Throttled.String,
		},
		Verification: Verification{
			At: meta.FromMicros(r.VerifiedAt), Clean: r.VerifyClean.Int64 != 0,
			Rows: r.VerifyRows.Int64, Differences: r.VerifyDiffs.Int64, Detail: r.VerifyDetail.String,
		},
	}, nil
}

// Ensure returns the migration's state, creating it in the [Expand] phase
// if it does not exist yet. Every instance of a service can call it at
// start; actor is recorded in the history of a creation.
func (m *Migration) Ensure(ctx context.Context, actor string) (State, error) {
	st, err := m.State(ctx)
	if !errors.Is(err, ErrNotFound) {
		return st, err
	}
	k := m.s.m
	now := meta.Micros(k.Now())
	err = k.InTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, k.Q(`INSERT INTO `+k.T.Migrations+
			` (name, phase, version, created_at, updated_at) VALUES (?, ?, 1, ?, ?)`),
			m.h.Name, Expand.String(), now, now)
		if err != nil {
			return err
		}
		return m.addEvent(ctx, tx, Event{Actor: actor, Kind: "create", From: Expand, To: Expand, Version: 1})
	})
	if err != nil && !k.Dialect.IsUniqueViolation(err) {
		return State{}, fmt.Errorf("expandcontract: create migration %q: %w", m.h.Name, err)
	}
	return m.State(ctx) // also when another instance created it first
}

// State returns the migration's stored state, or an error wrapping
// [ErrNotFound] if it was never created.
func (m *Migration) State(ctx context.Context) (State, error) {
	r, err := m.s.m.Get(ctx, m.s.m.DB, m.h.Name)
	if err != nil {
		return State{}, err
	}
	return state(r)
}

// Events returns the migration's history, oldest first.
func (m *Migration) Events(ctx context.Context) ([]Event, error) {
	var rows []eventRow
	k := m.s.m
	err := k.DB.SelectContext(ctx, &rows, k.Q(`SELECT `+eventColumns+` FROM `+k.T.Events+` WHERE migration = ? ORDER BY id`), m.h.Name)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read events of %q: %w", m.h.Name, err)
	}
	events := make([]Event, len(rows))
	for i, r := range rows {
		if events[i], err = r.event(); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// recentEvents reads the most recent statusEvents events of the migration
// name, or of every migration if name is "": for each migration, newest
// first.
func (s *Store) recentEvents(ctx context.Context, name string) (map[string][]Event, error) {
	k := s.m
	q := `SELECT ` + eventColumns + ` FROM ` + k.T.Events + ` WHERE migration = ? ORDER BY id DESC LIMIT ` + strconv.Itoa(statusEvents)
	args := []any{name}
	if name == "" {
		q = `SELECT ` + eventColumns + ` FROM (SELECT ` + eventColumns + `, ROW_NUMBER() OVER (PARTITION BY migration ORDER BY id DESC) AS n
		FROM ` + k.T.Events + `) AS recent WHERE n <= ` + strconv.Itoa(statusEvents) + ` ORDER BY migration, id DESC`
		args = nil
	}
	var rows []eventRow
	if err := k.DB.SelectContext(ctx, &rows, k.Q(q), args...); err != nil {
		return nil, fmt.Errorf("expandcontract: read recent events: %w", err)
	}
	out := map[string][]Event{}
	for _, r := range rows {
		ev, err := r.event()
		if err != nil {
			return nil, err
		}
		out[r.Migration] = append(out[r.Migration], ev)
	}
	return out, nil
}

// eventRow is the scanned form of a row of the events table.
type eventRow struct {
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

// eventColumns lists the columns of an [eventRow], for a SELECT.
const eventColumns = `id, migration, at, actor, kind, from_phase, to_phase, version, reason, detail`

// event converts a scanned row.
func (r eventRow) event() (Event, error) {
	from, err1 := ParsePhase(r.From)
	to, err2 := ParsePhase(r.To)
	if err := errors.Join(err1, err2); err != nil {
		return Event{}, fmt.Errorf("%w: event %d of %q: %w", ErrCorrupt, r.ID, r.Migration, err)
	}
	return Event{ID: r.ID, Migration: r.Migration, At: time.UnixMicro(r.At).UTC(), Actor: r.Actor,
		Kind: r.Kind, From: from, To: to, Version: r.Version, Reason: r.Reason, Detail: r.Detail}, nil
}

// addEvent appends ev, an event of this migration, to the history.
func (m *Migration) addEvent(ctx context.Context, e sqlx.ExecerContext, ev Event) error {
	return m.s.m.AddEvent(ctx, e, meta.Event{Migration: m.h.Name, At: ev.At, Actor: ev.Actor, Kind: ev.Kind,
		From: ev.From.String(), To: ev.To.String(), Version: ev.Version, Reason: ev.Reason, Detail: ev.Detail})
}
