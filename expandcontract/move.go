package expandcontract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/backoff"
	"github.com/cutover-go/cutover/internal/telemetry"
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
	// way to dualwrite or the contract DDL on the way to contract, one
	// statement to an entry. Before any of them runs, all are checked by
	// [lockcheck.Check]: a statement that would lock or rewrite a busy table
	// refuses the move (see Overrides). They run in order, under the
	// store's lock timeout ([WithLockTimeout]), and are tried again, up to
	// the store's DDL attempts ([WithDDLAttempts]), when it runs out:
	//
	//   - On SQLite they run in the transaction that changes the phase.
	//   - On PostgreSQL, a statement that cannot run in a transaction block
	//     (CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, ALTER TYPE
	//     ... ADD VALUE, ...), or must not share one (VALIDATE CONSTRAINT,
	//     whose scan must not hold the locks of earlier statements), runs
	//     on its own connection, with lock_timeout set for the session and
	//     reset afterwards, before the phase changes: lockcheck marks these
	//     with Statement.Outside. The statements before it run first, in
	//     one transaction of their own, so that a concurrent index build
	//     can use a column added just before it. The statements
	//     after the last such statement run in the transaction that changes
	//     the phase.
	//   - On MySQL, which commits DDL at once, every statement runs before
	//     the phase changes, one at a time, as [lockcheck.Check] returns it
	//     (with the ALGORITHM and LOCK clauses it adds).
	//
	// Each statement that runs before the phase changes is recorded in the
	// history when it succeeds, as an event of kind "ddl" whose detail is
	// "statement I done in D: SQL". A move to the same phase at the same
	// version (the move tried again after a failure) skips the statements
	// recorded done since the migration's last completed move or retire,
	// matched by index and text, so a move that failed at statement 2 is
	// run again unchanged. A concurrent index build on PostgreSQL first
	// looks its index up: an INVALID one, which a failed or interrupted
	// build leaves behind, is dropped (DROP INDEX CONCURRENTLY IF EXISTS)
	// and built again; a valid one counts as built, and is recorded so.
	// A statement that fails leaves the phase where it was; the error names
	// it and wraps the database's error. Statements that run before the
	// phase changes, other than index builds, should still be idempotent
	// (IF EXISTS, IF NOT EXISTS) where they can: a crash between a
	// statement and its record runs it again.
	SQL []string
	// Overrides lets statements of SQL run although they break a
	// lock-safety rule of [lockcheck.Check], for a table small enough or a
	// window without traffic. Each one used is recorded in the history, as
	// an event of kind "override" with the actor, in the transaction that
	// changes the phase.
	Overrides []lockcheck.Override
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
// in the history. A move whose statements break a lock-safety rule of
// [lockcheck.Check], and are not overridden, is refused with an error
// wrapping [lockcheck.ErrUnsafe] that names each statement, its rule and
// what to run instead; an illegal move or a guard's objection is reported
// before it. A statement lockcheck cannot check (one that does not parse,
// several in one entry) or a bad override is bad input: the error wraps
// [ErrInvalidInput] and nothing is recorded.
//
// A move is an operator's decision: it clears the migration's ceiling
// ([Migration.Demote]), in force or not, in the transaction that changes
// the phase, and its event's detail says which ceiling it lifted; the
// quiet period after a lift starts.
//
// With a tracer provider ([WithTracerProvider]), a move is a span named
// cutover.expandcontract.move, with a child per statement it runs (see the
// package documentation).
func (m *Migration) Move(ctx context.Context, mv Move) (st State, err error) {
	ctx, span := m.s.tracer.Start(ctx, spanMove, trace.WithAttributes(telemetry.KeyMigration.String(m.h.Name),
		telemetry.KeyPhaseTo.String(mv.To.String()), keyForced.Bool(mv.Force), keyStatements.Int(len(mv.SQL))))
	defer func() { telemetry.EndSpan(span, moveOutcome(err), err) }()
	return m.move(ctx, span, mv)
}

// move is Move, in span.
func (m *Migration) move(ctx context.Context, span trace.Span, mv Move) (State, error) {
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
	stmts, unsafe, err := m.s.checkLocks(ctx, mv.SQL, mv.Overrides)
	if err != nil {
		return State{}, err
	}
	cur, err := m.State(ctx)
	if err != nil {
		return State{}, err
	}
	span.SetAttributes(telemetry.KeyPhaseFrom.String(cur.Phase.String()))
	if mv.Version == 0 {
		mv.Version = cur.Version
	}
	if mv.Version != cur.Version {
		return State{}, m.conflict(ctx, cur, mv)
	}
	k := m.s.m
	warnings, refusal, err := m.check(ctx, cur, mv)
	switch {
	case err != nil:
		return State{}, err
	case refusal != nil:
		return State{}, m.refuse(ctx, cur, mv, refusal, refusal.Reason)
	case unsafe != nil:
		err := fmt.Errorf("expandcontract: %q from %s to %s: %w", cur.Name, cur.Phase, mv.To, unsafe)
		return State{}, m.refuse(ctx, cur, mv, err, "a statement would lock or rewrite a table")
	}
	kind := "move"
	if mv.Force {
		kind = "force"
	}
	ev := Event{Actor: mv.Actor, Kind: kind, From: cur.Phase, To: mv.To,
		Version: cur.Version + 1, Reason: mv.Reason, Detail: strings.Join(warnings, "; ")}
	if err := m.apply(ctx, cur, mv, stmts, ev); err != nil {
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

// Span names and attribute keys of moves, retires and their statements.
const (
	spanMove      = "cutover.expandcontract.move"
	spanRetire    = "cutover.expandcontract.retire"
	spanStatement = "cutover.expandcontract.statement"

	keyForced         = attribute.Key("cutover.forced")          // the move or retire was forced
	keyStatements     = attribute.Key("cutover.statements")      // how many statements it was given
	keyStatementIndex = attribute.Key("cutover.statement.index") // a statement's index among them, from 0
	keyAttempt        = attribute.Key("cutover.attempt")         // the try of the statements, from 1
)

// Outcomes of a move's or a retire's span, as its cutover.outcome says.
const (
	outcomeOK       = "ok"       // moved, or retired
	outcomeRefused  = "refused"  // an illegal move, a guard or a lock-safety rule refused it
	outcomeConflict = "conflict" // the migration's version was not the one the move applied to
	outcomeError    = "error"    // anything else: bad input, a failed statement or read
)

// moveOutcome classifies the error of a move or a retire.
func moveOutcome(err error) string {
	var me *MoveError
	var ce *ConflictError
	switch {
	case err == nil:
		return outcomeOK
	case errors.As(err, &me), errors.Is(err, lockcheck.ErrUnsafe):
		return outcomeRefused
	case errors.As(err, &ce):
		return outcomeConflict
	}
	return outcomeError
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

// refuse records refusal, the error of a move that may not go ahead, in
// the history, counts and logs it with why, and returns it.
func (m *Migration) refuse(ctx context.Context, cur State, mv Move, refusal error, why string) error {
	k := m.s.m
	m.s.moves.Add(ctx, moveRefused)
	ev := Event{Actor: mv.Actor, Kind: "refuse", From: cur.Phase, To: mv.To,
		Version: cur.Version, Reason: mv.Reason, Detail: refusal.Error()}
	if err := m.addEvent(ctx, k.DB, ev); err != nil {
		return errors.Join(refusal, fmt.Errorf("expandcontract: record refusal: %w", err))
	}
	k.Logger.WarnContext(ctx, "cutover: phase move refused", "migration", m.h.Name, "from", cur.Phase.String(),
		"to", mv.To.String(), "actor", mv.Actor, "why", why)
	return refusal
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

// apply runs stmts, the checked statements of mv, and swaps the phase,
// retrying while a statement times out on a lock.
//
// The move also clears the migration's ceiling, if one is set, and says
// so in ev's detail.
func (m *Migration) apply(ctx context.Context, cur State, mv Move, stmts []lockcheck.Statement, ev Event) error {
	k := m.s.m
	run := &ddlRun{m: m, from: cur.Phase, to: mv.To, version: cur.Version, actor: mv.Actor, reason: mv.Reason, stmts: stmts}
	detail := ev.Detail
	return run.do(ctx, &ev, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, k.Q(`UPDATE `+k.T.Migrations+
			` SET phase = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?`),
			mv.To.String(), meta.Micros(k.Now()), cur.Name, cur.Version)
		if err != nil {
			return fmt.Errorf("expandcontract: move %q to %s: %w", cur.Name, mv.To, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &ConflictError{Migration: cur.Name, Expected: cur.Version}
		}
		// An operator's move lifts the ceiling, the one read here under the
		// row's lock, which a demotion since the move's first read may have
		// set.
		st, err := m.lockedState(ctx, tx)
		if err != nil {
			return err
		}
		lifted, err := m.clearCeiling(ctx, tx, st)
		ev.Detail = detail // a try again after a lock timeout starts anew
		if err != nil || lifted == "" {
			return err
		}
		ev.Detail = strings.Join(slices.DeleteFunc([]string{detail, lifted}, func(s string) bool { return s == "" }), "; ")
		return nil
	})
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
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("lock timeout; retrying", trace.WithAttributes(keyAttempt.Int64(attempt+1)))
		}
		if err := backoff.Sleep(ctx, lockRetries.Wait(attempt)); err != nil {
			return fmt.Errorf("expandcontract: %q, statements for %s: %w", m.h.Name, to, err)
		}
	}
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
	all, err := m.s.instances(ctx, m.h.Name, m.s.m.Now(), nil)
	return all[m.h.Name], err
}

// instances reads the instances that reported a stage for the migration
// name, or for any migration if name is "", within [InstanceWindow]
// before at: for each migration, by id. A row whose stage is not one is an
// error wrapping [ErrCorrupt], unless skip is not nil: then it gets the
// error, and the row is left out.
func (s *Store) instances(ctx context.Context, name string, at time.Time, skip func(error)) (map[string][]Instance, error) {
	var rows []struct {
		Migration string `db:"migration"`
		ID        string `db:"instance"`
		Stage     string `db:"stage"`
		SeenAt    int64  `db:"seen_at"`
	}
	k := s.m
	q, args := `SELECT migration, instance, stage, seen_at FROM `+k.T.Instances+` WHERE seen_at >= ?`,
		[]any{meta.Micros(at.Add(-InstanceWindow))}
	if name != "" {
		q, args = q+` AND migration = ?`, append(args, name)
	}
	if err := k.DB.SelectContext(ctx, &rows, k.Q(q+` ORDER BY migration, instance`), args...); err != nil {
		if name != "" {
			return nil, fmt.Errorf("expandcontract: read instances of %q: %w", name, err)
		}
		return nil, fmt.Errorf("expandcontract: read instances: %w", err)
	}
	out := map[string][]Instance{}
	for _, r := range rows {
		st, err := cutover.ParseStage(r.Stage)
		if err != nil {
			err = fmt.Errorf("%w: instance %q of %q: %w", ErrCorrupt, r.ID, r.Migration, err)
			if skip == nil {
				return nil, err
			}
			skip(err)
			continue
		}
		out[r.Migration] = append(out[r.Migration], Instance{ID: r.ID, Stage: st, SeenAt: time.UnixMicro(r.SeenAt).UTC()})
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
