package expandcontract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/backoff"
)

// Move asks for a change of a migration's phase: one step forward or back.
type Move struct {
	To      Phase  // the phase to move to: the next one or the previous one
	Actor   string // who asks, recorded in the history; required
	Reason  string // why, recorded in the history
	Version int64  // the version the move applies to; 0 means the current one
	// Force moves even if a guard objects, and out of contract, which is
	// otherwise final. It never skips a phase.
	Force bool
	// SQL lists statements that the move runs, such as the expand DDL on the
	// way to dualwrite or the contract DDL on the way to contract. They run
	// under the store's lock timeout and are retried when it runs out. On
	// PostgreSQL and SQLite they run in the transaction that changes the
	// phase; MySQL commits DDL at once, so there they run first and must be
	// idempotent (IF EXISTS, IF NOT EXISTS) in case the phase change then
	// fails.
	SQL []string
}

// moveResult is how a move ended, the reason of the moves counter.
type moveResult uint8

const (
	moveMoved moveResult = iota
	moveRefused
	moveConflict
	numMoveResults
)

func (r moveResult) String() string { return [numMoveResults]string{"moved", "refused", "conflict"}[r] }

// MoveError is the error of a move that was refused. It wraps
// [ErrIllegalMove] or [ErrGuard].
type MoveError struct {
	Migration string
	From, To  Phase
	Reason    string // what stands in the way
	kind      error
}

// Error describes the refusal.
func (e *MoveError) Error() string {
	return fmt.Sprintf("%v: %q from %s to %s: %s", e.kind, e.Migration, e.From, e.To, e.Reason)
}

// Unwrap returns [ErrIllegalMove] or [ErrGuard].
func (e *MoveError) Unwrap() error { return e.kind }

// ConflictError is the error of a move that lost a race: the migration's
// version was not the one the move applied to. It wraps [ErrConflict].
type ConflictError struct {
	Migration string
	Expected  int64 // the version the move applied to
	Actual    int64 // the version found
	Phase     Phase // the phase found
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: %q is at version %d (phase %s), the move expected version %d",
		ErrConflict, e.Migration, e.Actual, e.Phase, e.Expected)
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Move changes the migration's phase as mv asks, and returns the
// migration's state after the move. The move is a compare-and-swap on the
// migration's version: of two instances moving at once, one wins and the
// other gets a *ConflictError. Every move, refusal and conflict is recorded
// in the history.
func (m *Migration) Move(ctx context.Context, mv Move) (State, error) {
	switch {
	case !mv.To.Valid():
		return State{}, fmt.Errorf("%w: move to %v", ErrUnknownPhase, mv.To)
	case strings.TrimSpace(mv.Actor) == "":
		return State{}, fmt.Errorf("%w: a move needs an actor", ErrInvalidInput)
	case mv.Version < 0:
		return State{}, fmt.Errorf("%w: negative version %d", ErrInvalidInput, mv.Version)
	}
	if err := checkStatements(mv.SQL); err != nil {
		return State{}, err
	}
	cur, err := m.State(ctx)
	if err != nil {
		return State{}, err
	}
	if mv.Version == 0 {
		mv.Version = cur.Version
	}
	if mv.Version != cur.Version {
		return State{}, m.conflict(ctx, cur, mv)
	}
	k := m.s.m
	warnings, refusal, err := m.check(ctx, cur, mv)
	if err != nil {
		return State{}, err
	}
	if refusal != nil {
		m.s.moves.Add(ctx, moveRefused)
		ev := Event{Actor: mv.Actor, Kind: "refuse", From: cur.Phase, To: mv.To,
			Version: cur.Version, Reason: mv.Reason, Detail: refusal.Error()}
		if err := m.addEvent(ctx, k.DB, ev); err != nil {
			return State{}, errors.Join(refusal, fmt.Errorf("expandcontract: record refusal: %w", err))
		}
		k.Logger.WarnContext(ctx, "cutover: phase move refused", "migration", m.h.Name, "from", cur.Phase.String(),
			"to", mv.To.String(), "actor", mv.Actor, "why", refusal.Reason)
		return State{}, refusal
	}
	kind := "move"
	if mv.Force {
		kind = "force"
	}
	ev := Event{Actor: mv.Actor, Kind: kind, From: cur.Phase, To: mv.To,
		Version: cur.Version + 1, Reason: mv.Reason, Detail: strings.Join(warnings, "; ")}
	if err := m.apply(ctx, cur, mv, ev); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			return State{}, m.conflict(ctx, cur, mv)
		}
		return State{}, err
	}
	m.s.moves.Add(ctx, moveMoved)
	for _, w := range warnings {
		k.Logger.WarnContext(ctx, "cutover: phase move warning", "migration", m.h.Name, "to", mv.To.String(), "warning", w)
	}
	k.Logger.InfoContext(ctx, "cutover: phase moved", "migration", m.h.Name, "from", cur.Phase.String(),
		"to", mv.To.String(), "actor", mv.Actor, "reason", mv.Reason, "forced", mv.Force)
	return m.State(ctx)
}

// checkStatements refuses an empty statement among stmts.
func checkStatements(stmts []string) error {
	for i, q := range stmts {
		if strings.TrimSpace(q) == "" {
			return fmt.Errorf("%w: SQL statement %d is empty", ErrInvalidInput, i)
		}
	}
	return nil
}

// conflict records and returns the conflict of mv with the migration as it
// now stands.
func (m *Migration) conflict(ctx context.Context, cur State, mv Move) error {
	m.s.moves.Add(ctx, moveConflict)
	now, err := m.State(ctx)
	if err != nil {
		now = cur
	}
	ce := &ConflictError{Migration: cur.Name, Expected: mv.Version, Actual: now.Version, Phase: now.Phase}
	ev := Event{Actor: mv.Actor, Kind: "conflict", From: now.Phase, To: mv.To,
		Version: now.Version, Reason: mv.Reason, Detail: ce.Error()}
	if err := m.addEvent(ctx, m.s.m.DB, ev); err != nil {
		return errors.Join(ce, fmt.Errorf("expandcontract: record conflict: %w", err))
	}
	return ce
}

// check applies the rules of the phase sequence to mv. It returns warnings
// for a move that may go ahead, or the refusal, or the error that kept it
// from deciding.
func (m *Migration) check(ctx context.Context, cur State, mv Move) (warnings []string, refusal *MoveError, err error) {
	refuse := func(kind error, format string, args ...any) *MoveError {
		return &MoveError{Migration: cur.Name, From: cur.Phase, To: mv.To, Reason: fmt.Sprintf(format, args...), kind: kind}
	}
	from, to := cur.Phase, mv.To
	switch {
	case to == from:
		return nil, refuse(ErrIllegalMove, "already there"), nil
	case to != from+1 && to+1 != from:
		return nil, refuse(ErrIllegalMove, "phases move one step at a time; from %s the next is %s and the previous %s",
			from, min(from+1, Contract), max(from, 1)-1), nil
	case from == Contract && !mv.Force:
		return nil, refuse(ErrIllegalMove, "contract is final: the old store may be gone; move back only with Force"), nil
	}
	if to == SwitchReads && from == Backfill {
		entered, err := m.enteredBackfill(ctx)
		if err != nil {
			return nil, nil, err
		}
		if why := m.s.switchReadsBlocked(cur, entered); why != "" {
			if !mv.Force {
				return nil, refuse(ErrGuard, "%s", why), nil
			}
			warnings = append(warnings, "forced past guard: "+why)
		}
	}
	if to == Contract {
		touching, err := m.instancesTouchingOld(ctx)
		switch {
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("could not read instance reports: %v", err))
		case len(touching) > 0:
			warnings = append(warnings, "instances still resolving stages that use the old store: "+strings.Join(touching, ", "))
		}
	}
	return warnings, nil, nil
}

// enteredBackfill returns when the migration last moved into the backfill
// phase, from the history: the first time from dualwrite, and again on
// every move back from switchreads.
func (m *Migration) enteredBackfill(ctx context.Context) (time.Time, error) {
	k := m.s.m
	var at sql.NullInt64
	err := k.DB.GetContext(ctx, &at, k.Q(`SELECT MAX(at) FROM `+k.T.Events+
		` WHERE migration = ? AND to_phase = ? AND from_phase <> to_phase AND kind IN ('move', 'force')`),
		m.h.Name, Backfill.String())
	if err != nil {
		return time.Time{}, fmt.Errorf("expandcontract: read the history of %q: %w", m.h.Name, err)
	}
	return meta.FromMicros(at), nil
}

// maxGuardDetail caps how much of a verification's detail a refusal quotes.
const maxGuardDetail = 200

// switchReadsBlocked says why reads may not move yet, or "" if they may.
// entered is when the migration last moved into backfill.
func (s *Store) switchReadsBlocked(st State, entered time.Time) string {
	b, v := st.Backfill, st.Verification
	now := s.m.Now()
	switch {
	case !b.Done():
		return fmt.Sprintf("backfill not complete (%d rows copied of about %d)", b.Rows, b.Total)
	case v.At.IsZero():
		return "never verified: run a verification after the backfill"
	case v.At.Before(b.DoneAt):
		return fmt.Sprintf("the last verification (%s) is older than the backfill's end (%s)",
			v.At.Format(time.RFC3339), b.DoneAt.Format(time.RFC3339))
	case !v.At.After(entered):
		// One from before a move back does not cover the writes since.
		return fmt.Sprintf("the last verification (%s) did not start after the last move into backfill (%s): run one now",
			v.At.Format(time.RFC3339Nano), entered.Format(time.RFC3339Nano))
	case !v.Clean && v.Differences > 0:
		return fmt.Sprintf("the last verification found %d differing keys", v.Differences)
	case !v.Clean:
		detail := v.Detail
		if len(detail) > maxGuardDetail {
			detail = strings.ToValidUTF8(detail[:maxGuardDetail], "") + "..."
		}
		return "the last verification was not clean: " + detail
	case now.Sub(v.At) > s.maxVerifyAge:
		return fmt.Sprintf("the last clean verification is %s old, more than %s",
			now.Sub(v.At).Round(time.Second), s.maxVerifyAge)
	}
	return ""
}

// apply runs the statements of mv and swaps the phase, retrying while a
// statement times out on a lock.
func (m *Migration) apply(ctx context.Context, cur State, mv Move, ev Event) error {
	return m.withLockRetries(ctx, mv.To, func() error { return m.applyOnce(ctx, cur, mv, ev) })
}

// lockRetries is the backoff between tries of statements that timed out
// on a lock.
var lockRetries = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// withLockRetries calls fn until it succeeds, fails with an error other
// than a lock timeout, or has been tried the store's number of DDL
// attempts, waiting a growing, jittered backoff between tries.
func (m *Migration) withLockRetries(ctx context.Context, to Phase, fn func() error) error {
	k := m.s.m
	for attempt := int64(1); ; attempt++ {
		err := fn()
		if err == nil || !k.Dialect.IsLockTimeout(err) {
			return err
		}
		if attempt >= int64(m.s.ddlAttempts) {
			return fmt.Errorf("expandcontract: %q, statements for %s: gave up after %d lock timeouts: %w", m.h.Name, to, attempt, err)
		}
		k.Logger.WarnContext(ctx, "cutover: migration statement timed out on a lock; retrying",
			"migration", m.h.Name, "to", to.String(), "attempt", attempt, "err", err)
		if err := backoff.Sleep(ctx, lockRetries.Wait(attempt)); err != nil {
			return fmt.Errorf("expandcontract: %q, statements for %s: %w", m.h.Name, to, err)
		}
	}
}

func (m *Migration) applyOnce(ctx context.Context, cur State, mv Move, ev Event) error {
	k := m.s.m
	transactionalDDL := k.Dialect.Name() != "mysql"
	if !transactionalDDL && len(mv.SQL) > 0 {
		if err := m.s.runOnConn(ctx, mv.SQL); err != nil {
			return err
		}
	}
	return k.InTx(ctx, func(tx *sqlx.Tx) error {
		if transactionalDDL && len(mv.SQL) > 0 {
			if err := m.s.runInTx(ctx, tx, m.h.Name, mv.To, mv.SQL); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, k.Q(`UPDATE `+k.T.Migrations+
			` SET phase = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?`),
			mv.To.String(), meta.Micros(k.Now()), cur.Name, cur.Version)
		if err != nil {
			return fmt.Errorf("expandcontract: move %q to %s: %w", cur.Name, mv.To, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &ConflictError{Migration: cur.Name, Expected: cur.Version}
		}
		if err := m.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record move: %w", err)
		}
		return nil
	})
}

// runInTx runs statements in tx under the lock timeout.
func (s *Store) runInTx(ctx context.Context, tx *sqlx.Tx, name string, to Phase, stmts []string) error {
	if err := s.m.Dialect.SetLockTimeout(ctx, tx, s.lockTimeout); err != nil {
		return fmt.Errorf("expandcontract: set lock timeout: %w", err)
	}
	for i, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("expandcontract: %q, statement %d for %s: %w", name, i, to, err)
		}
	}
	return nil
}

// runOnConn runs statements on one connection under the lock timeout, for
// databases whose DDL cannot join a transaction: the transaction here only
// pins the connection, since each DDL statement commits on its own.
func (s *Store) runOnConn(ctx context.Context, stmts []string) error {
	tx, err := s.m.DB.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.m.Dialect.SetLockTimeout(ctx, tx, s.lockTimeout); err != nil {
		return fmt.Errorf("expandcontract: set lock timeout: %w", err)
	}
	// The session keeps the timeout; give the pooled connection back as it was.
	defer tx.ExecContext(context.WithoutCancel(ctx),
		"SET SESSION innodb_lock_wait_timeout = DEFAULT, SESSION lock_wait_timeout = DEFAULT")
	for i, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("expandcontract: statement %d: %w", i, err)
		}
	}
	return nil
}

// ReportStage records that instance resolved stage for the migration, so
// that a move to contract can warn, and [Migration.Retire] refuse, while
// some instance still uses the old store. A [Bound] with an instance id
// reports by itself.
func (m *Migration) ReportStage(ctx context.Context, instance string, stage cutover.Stage) error {
	if err := checkName("instance id", instance); err != nil {
		return err
	}
	if !stage.Valid() {
		return fmt.Errorf("%w: %v", cutover.ErrUnknownStage, stage)
	}
	k := m.s.m
	q := `INSERT INTO ` + k.T.Instances + ` (migration, instance, stage, seen_at) VALUES (?, ?, ?, ?) `
	if k.Dialect.Name() == "mysql" {
		q += `ON DUPLICATE KEY UPDATE stage = VALUES(stage), seen_at = VALUES(seen_at)`
	} else {
		q += `ON CONFLICT (migration, instance) DO UPDATE SET stage = excluded.stage, seen_at = excluded.seen_at`
	}
	if _, err := k.DB.ExecContext(ctx, k.Q(q), m.h.Name, instance, stage.String(), meta.Micros(k.Now())); err != nil {
		return fmt.Errorf("expandcontract: report stage of %q: %w", instance, err)
	}
	return nil
}

// Instance is the latest stage report of one instance.
type Instance struct {
	ID     string
	Stage  cutover.Stage
	SeenAt time.Time
}

// InstanceWindow is how recent a stage report must be to count as an
// instance that is still running.
const InstanceWindow = 5 * time.Minute

// Instances returns the instances that reported a stage for the migration
// within [InstanceWindow], by id.
func (m *Migration) Instances(ctx context.Context) ([]Instance, error) {
	var rows []struct {
		ID     string `db:"instance"`
		Stage  string `db:"stage"`
		SeenAt int64  `db:"seen_at"`
	}
	k := m.s.m
	err := k.DB.SelectContext(ctx, &rows, k.Q(`SELECT instance, stage, seen_at FROM `+k.T.Instances+
		` WHERE migration = ? AND seen_at >= ? ORDER BY instance`), m.h.Name, meta.Micros(k.Now().Add(-InstanceWindow)))
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read instances of %q: %w", m.h.Name, err)
	}
	out := make([]Instance, len(rows))
	for i, r := range rows {
		st, err := cutover.ParseStage(r.Stage)
		if err != nil {
			return nil, fmt.Errorf("%w: instance %q of %q: %w", ErrCorrupt, r.ID, m.h.Name, err)
		}
		out[i] = Instance{ID: r.ID, Stage: st, SeenAt: time.UnixMicro(r.SeenAt).UTC()}
	}
	return out, nil
}

func (m *Migration) instancesTouchingOld(ctx context.Context) ([]string, error) {
	insts, err := m.Instances(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range insts {
		if in.Stage != cutover.Complete {
			out = append(out, fmt.Sprintf("%s (%s)", in.ID, in.Stage))
		}
	}
	return out, nil
}
