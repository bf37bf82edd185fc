package expandcontract

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
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

// Move changes the phase of the migration name as m asks, and returns the
// migration as it is after the move. The move is a compare-and-swap on the
// migration's version: of two instances moving at once, one wins and the
// other gets a *ConflictError. Every move, refusal and conflict is recorded
// in the history.
func (s *Store) Move(ctx context.Context, name string, m Move) (Migration, error) {
	switch {
	case validName(name) != nil:
		return Migration{}, validName(name)
	case !m.To.Valid():
		return Migration{}, fmt.Errorf("%w: move to %v", ErrUnknownPhase, m.To)
	case strings.TrimSpace(m.Actor) == "":
		return Migration{}, fmt.Errorf("%w: a move needs an actor", ErrInvalidInput)
	case m.Version < 0:
		return Migration{}, fmt.Errorf("%w: negative version %d", ErrInvalidInput, m.Version)
	}
	for i, q := range m.SQL {
		if strings.TrimSpace(q) == "" {
			return Migration{}, fmt.Errorf("%w: SQL statement %d is empty", ErrInvalidInput, i)
		}
	}
	cur, err := s.Get(ctx, name)
	if err != nil {
		return Migration{}, err
	}
	if m.Version == 0 {
		m.Version = cur.Version
	}
	if m.Version != cur.Version {
		return Migration{}, s.conflict(ctx, cur, m)
	}
	warnings, refusal := s.check(ctx, cur, m)
	if refusal != nil {
		s.moves.Add(ctx, moveRefused)
		ev := Event{Migration: name, Actor: m.Actor, Kind: "refuse", From: cur.Phase, To: m.To,
			Version: cur.Version, Reason: m.Reason, Detail: refusal.Error()}
		if err := s.addEvent(ctx, s.db, ev); err != nil {
			return Migration{}, errors.Join(refusal, fmt.Errorf("expandcontract: record refusal: %w", err))
		}
		s.logger.WarnContext(ctx, "cutover: phase move refused", "migration", name, "from", cur.Phase.String(),
			"to", m.To.String(), "actor", m.Actor, "why", refusal.Reason)
		return Migration{}, refusal
	}
	kind := "move"
	if m.Force {
		kind = "force"
	}
	ev := Event{Migration: name, Actor: m.Actor, Kind: kind, From: cur.Phase, To: m.To,
		Version: cur.Version + 1, Reason: m.Reason, Detail: strings.Join(warnings, "; ")}
	if err := s.apply(ctx, cur, m, ev); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			return Migration{}, s.conflict(ctx, cur, m)
		}
		return Migration{}, err
	}
	s.moves.Add(ctx, moveMoved)
	for _, w := range warnings {
		s.logger.WarnContext(ctx, "cutover: phase move warning", "migration", name, "to", m.To.String(), "warning", w)
	}
	s.logger.InfoContext(ctx, "cutover: phase moved", "migration", name, "from", cur.Phase.String(),
		"to", m.To.String(), "actor", m.Actor, "reason", m.Reason, "forced", m.Force)
	return s.Get(ctx, name)
}

// conflict records and returns the conflict of m with the migration as it
// now stands.
func (s *Store) conflict(ctx context.Context, cur Migration, m Move) error {
	s.moves.Add(ctx, moveConflict)
	now, err := s.Get(ctx, cur.Name)
	if err != nil {
		now = cur
	}
	ce := &ConflictError{Migration: cur.Name, Expected: m.Version, Actual: now.Version, Phase: now.Phase}
	ev := Event{Migration: cur.Name, Actor: m.Actor, Kind: "conflict", From: now.Phase, To: m.To,
		Version: now.Version, Reason: m.Reason, Detail: ce.Error()}
	if err := s.addEvent(ctx, s.db, ev); err != nil {
		return errors.Join(ce, fmt.Errorf("expandcontract: record conflict: %w", err))
	}
	return ce
}

// check applies the rules of the phase sequence to m. It returns warnings
// for a move that may go ahead, or the refusal.
func (s *Store) check(ctx context.Context, cur Migration, m Move) (warnings []string, refusal *MoveError) {
	refuse := func(kind error, format string, args ...any) *MoveError {
		return &MoveError{Migration: cur.Name, From: cur.Phase, To: m.To, Reason: fmt.Sprintf(format, args...), kind: kind}
	}
	from, to := cur.Phase, m.To
	switch {
	case to == from:
		return nil, refuse(ErrIllegalMove, "already there")
	case to != from+1 && to+1 != from:
		return nil, refuse(ErrIllegalMove, "phases move one step at a time; from %s the next is %s and the previous %s",
			from, min(from+1, Contract), max(from, 1)-1)
	case from == Contract && !m.Force:
		return nil, refuse(ErrIllegalMove, "contract is final: the old store may be gone; move back only with Force")
	}
	if to == SwitchReads && from == Backfill {
		if why := s.switchReadsBlocked(cur); why != "" {
			if !m.Force {
				return nil, refuse(ErrGuard, "%s", why)
			}
			warnings = append(warnings, "forced past guard: "+why)
		}
	}
	if to == Contract {
		touching, err := s.instancesTouchingOld(ctx, cur.Name)
		switch {
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("could not read instance reports: %v", err))
		case len(touching) > 0:
			warnings = append(warnings, "instances still resolving stages that use the old store: "+strings.Join(touching, ", "))
		}
	}
	return warnings, nil
}

// switchReadsBlocked says why reads may not move yet, or "" if they may.
func (s *Store) switchReadsBlocked(m Migration) string {
	b, v := m.Backfill, m.Verification
	switch {
	case !b.Done():
		return fmt.Sprintf("backfill not complete (%d rows copied of about %d)", b.Rows, b.Total)
	case v.At.IsZero():
		return "never verified: run a verification after the backfill"
	case v.At.Before(b.DoneAt):
		return fmt.Sprintf("the last verification (%s) is older than the backfill's end (%s)",
			v.At.Format(time.RFC3339), b.DoneAt.Format(time.RFC3339))
	case !v.Clean:
		return fmt.Sprintf("the last verification found %d differing keys", v.Differences)
	case s.now().Sub(v.At) > s.maxVerifyAge:
		return fmt.Sprintf("the last clean verification is %s old, more than %s",
			s.now().Sub(v.At).Round(time.Second), s.maxVerifyAge)
	}
	return ""
}

// apply runs the statements of m and swaps the phase, retrying while a
// statement times out on a lock.
func (s *Store) apply(ctx context.Context, cur Migration, m Move, ev Event) error {
	return s.withLockRetries(ctx, cur.Name, m, func() error { return s.applyOnce(ctx, cur, m, ev) })
}

// withLockRetries calls fn until it succeeds, fails with an error other
// than a lock timeout, or has been tried the store's number of DDL
// attempts, waiting a growing, jittered backoff between tries.
func (s *Store) withLockRetries(ctx context.Context, name string, m Move, fn func() error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !s.dialect.IsLockTimeout(err) {
			return err
		}
		if attempt >= s.ddlAttempts {
			return fmt.Errorf("expandcontract: %q, statements for %s: gave up after %d lock timeouts: %w", name, m.To, attempt, err)
		}
		s.logger.WarnContext(ctx, "cutover: migration statement timed out on a lock; retrying",
			"migration", name, "to", m.To.String(), "attempt", attempt, "err", err)
		wait := backoff/2 + rand.N(backoff)
		backoff = min(2*backoff, 5*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("expandcontract: %q, statements for %s: %w", name, m.To, context.Cause(ctx))
		case <-t.C:
		}
	}
}

func (s *Store) applyOnce(ctx context.Context, cur Migration, m Move, ev Event) error {
	transactionalDDL := s.dialect.Name() != "mysql"
	if !transactionalDDL && len(m.SQL) > 0 {
		if err := s.runOnConn(ctx, m.SQL); err != nil {
			return err
		}
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if transactionalDDL && len(m.SQL) > 0 {
			if err := s.runInTx(ctx, tx, cur.Name, m.To, m.SQL); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE `+s.t.migrations+
			` SET phase = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?`),
			m.To.String(), micros(s.now()), cur.Name, cur.Version)
		if err != nil {
			return fmt.Errorf("expandcontract: move %q to %s: %w", cur.Name, m.To, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &ConflictError{Migration: cur.Name, Expected: cur.Version}
		}
		if err := s.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record move: %w", err)
		}
		return nil
	})
}

// runInTx runs statements in tx under the lock timeout.
func (s *Store) runInTx(ctx context.Context, tx *sqlx.Tx, name string, to Phase, stmts []string) error {
	if err := s.dialect.SetLockTimeout(ctx, tx, s.lockTimeout); err != nil {
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
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.dialect.SetLockTimeout(ctx, tx, s.lockTimeout); err != nil {
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

// ReportStage records that instance resolved stage for the migration name,
// so that a move to contract can warn while some instance still uses the
// old store. A [Bound] with an instance id reports by itself.
func (s *Store) ReportStage(ctx context.Context, name, instance string, stage cutover.Stage) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := validName(instance); err != nil {
		return fmt.Errorf("%w: instance id %q", ErrInvalidInput, instance)
	}
	if !stage.Valid() {
		return fmt.Errorf("%w: %v", cutover.ErrUnknownStage, stage)
	}
	q := `INSERT INTO ` + s.t.instances + ` (migration, instance, stage, seen_at) VALUES (?, ?, ?, ?) `
	if s.dialect.Name() == "mysql" {
		q += `ON DUPLICATE KEY UPDATE stage = VALUES(stage), seen_at = VALUES(seen_at)`
	} else {
		q += `ON CONFLICT (migration, instance) DO UPDATE SET stage = excluded.stage, seen_at = excluded.seen_at`
	}
	if _, err := s.db.ExecContext(ctx, s.q(q), name, instance, stage.String(), micros(s.now())); err != nil {
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
// name within [InstanceWindow], by id.
func (s *Store) Instances(ctx context.Context, name string) ([]Instance, error) {
	var rows []struct {
		ID     string `db:"instance"`
		Stage  string `db:"stage"`
		SeenAt int64  `db:"seen_at"`
	}
	err := s.db.SelectContext(ctx, &rows, s.q(`SELECT instance, stage, seen_at FROM `+s.t.instances+
		` WHERE migration = ? AND seen_at >= ? ORDER BY instance`), name, micros(s.now().Add(-InstanceWindow)))
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read instances of %q: %w", name, err)
	}
	out := make([]Instance, len(rows))
	for i, r := range rows {
		st, err := cutover.ParseStage(r.Stage)
		if err != nil {
			return nil, fmt.Errorf("%w: instance %q of %q: %w", ErrCorrupt, r.ID, name, err)
		}
		out[i] = Instance{ID: r.ID, Stage: st, SeenAt: time.UnixMicro(r.SeenAt).UTC()}
	}
	return out, nil
}

func (s *Store) instancesTouchingOld(ctx context.Context, name string) ([]string, error) {
	insts, err := s.Instances(ctx, name)
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
