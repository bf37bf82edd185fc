package expandcontract

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/sqltext"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// This file runs the statements of a move or a retire. How they run:
//
//   - Every statement is checked by [lockcheck.Check] first; nothing runs
//     unless all pass (or are overridden).
//   - On MySQL every statement runs before the phase changes, one at a
//     time on one pinned connection, since MySQL commits DDL at once.
//   - On PostgreSQL, the statements up to and including the last one that
//     must run on its own (Statement.Outside) run before the
//     phase changes, on one pinned connection: each Outside statement on
//     its own, and each run of other statements between them in one
//     transaction of its own. The statements after the last Outside one,
//     and on SQLite all of them, run in the transaction that changes the
//     phase.
//   - Each statement that runs before the phase changes is recorded in the
//     history when it succeeds, as an event of kind "ddl" (see
//     [ddlDetail]); a retry of the same move skips those recorded done.

// checkLocks checks stmts with [lockcheck.Check] for the store's database.
// It returns the statements as they are to run, or unsafe, the error for
// statements that break a lock-safety rule (the caller records the
// refusal), or err, for bad input or a failed catalog read.
func (s *Store) checkLocks(ctx context.Context, stmts []string, overrides []lockcheck.Override) (checked []lockcheck.Statement, unsafe, err error) {
	checked, err = lockcheck.Check(ctx, s.m.DB, s.m.Dialect.Name(), stmts, overrides...)
	switch {
	case err == nil:
		return checked, nil, nil
	case errors.Is(err, lockcheck.ErrInvalidInput), errors.Is(err, lockcheck.ErrParse):
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	case errors.Is(err, lockcheck.ErrUnsafe):
		return nil, err, nil
	}
	return nil, nil, fmt.Errorf("expandcontract: check statements: %w", err)
}

// ddlRun is one run of the statements of a move or a retire: from is the
// migration's phase, to the phase moved to (the same for a retire), and
// version the migration's version the statements apply to.
type ddlRun struct {
	m             *Migration
	from, to      Phase
	version       int64
	actor, reason string
	stmts         []lockcheck.Statement
}

// do runs the statements, then, in the transaction that runs the last of
// them on PostgreSQL and SQLite, change (if not nil), the override events
// and ev, the event of the move or retire; all of it again, up to the
// store's DDL attempts, while a statement times out on a lock.
func (r *ddlRun) do(ctx context.Context, ev *Event, change func(tx *sqlx.Tx) error) error {
	return r.m.withLockRetries(ctx, r.to, func() error {
		first, err := r.before(ctx)
		if err != nil {
			return err
		}
		return r.m.s.m.InTx(ctx, func(tx *sqlx.Tx) error {
			if err := r.inTx(ctx, tx, first); err != nil {
				return err
			}
			if change != nil {
				if err := change(tx); err != nil {
					return err
				}
			}
			if err := r.overrides(ctx, tx, ev.Version); err != nil {
				return err
			}
			if err := r.m.addEvent(ctx, tx, *ev); err != nil {
				return fmt.Errorf("expandcontract: record %s: %w", ev.Kind, err)
			}
			return nil
		})
	})
}

// split returns how many of the leading statements run before the phase
// changes: all of them on MySQL; on PostgreSQL those up to and including
// the last that must run outside a transaction; none on SQLite.
func (r *ddlRun) split() int {
	if r.m.s.m.Dialect.Name() == sqldialect.MySQL {
		return len(r.stmts)
	}
	for i := len(r.stmts) - 1; i >= 0; i-- {
		if r.stmts[i].Outside {
			return i + 1
		}
	}
	return 0
}

// before runs the statements that run before the phase changes, skipping
// those the history records done, and returns how many there are: the
// rest run in the transaction that changes the phase ([ddlRun.inTx]).
func (r *ddlRun) before(ctx context.Context) (int, error) {
	n := r.split()
	if n == 0 {
		return 0, nil
	}
	done, err := r.m.doneStatements(ctx, r.to, r.version)
	if err != nil {
		return 0, err
	}
	ss, err := r.m.s.openSession(ctx)
	if err != nil {
		return 0, fmt.Errorf("expandcontract: %q, statements for %s: %w", r.m.h.Name, r.to, err)
	}
	defer ss.close(ctx)
	alone := r.m.s.m.Dialect.Name() == sqldialect.MySQL
	for i := 0; i < n; {
		if alone || r.stmts[i].Outside {
			if err := r.runAlone(ctx, ss.conn, i, done[i] == r.stmts[i].SQL); err != nil {
				return 0, err
			}
			i++
			continue
		}
		j := i
		for j < n && !r.stmts[j].Outside {
			j++
		}
		if err := r.runGroup(ctx, ss.conn, i, j, done); err != nil {
			return 0, err
		}
		i = j
	}
	return n, nil
}

// runAlone runs statement i on conn, outside any transaction, unless done.
// A concurrent index build first looks its index up: a valid one is
// there already, and an INVALID one, left by a build that failed or was
// interrupted, is dropped and built again.
func (r *ddlRun) runAlone(ctx context.Context, conn *sqlx.Conn, i int, done bool) error {
	st := r.stmts[i]
	if st.Index != "" && r.m.s.m.Dialect.Name() == sqldialect.Postgres {
		name, valid, err := indexState(ctx, conn, st.Index)
		switch {
		case err != nil:
			return r.stmtErr(i, "look up its index", err)
		case name != "" && valid:
			r.skipped(ctx, i, "its index is built")
			if done {
				return nil
			}
			return r.record(ctx, conn, i, -1)
		case name != "":
			r.m.s.m.Logger.WarnContext(ctx, "cutover: dropping the INVALID index a failed concurrent build left behind",
				"migration", r.m.h.Name, "to", r.to.String(), "statement", i, "index", name)
			if err := r.exec(ctx, conn, i, `DROP INDEX CONCURRENTLY IF EXISTS `+name, "drop the INVALID index "+name+" a failed build left"); err != nil {
				return err
			}
		case done:
			r.skipped(ctx, i, "recorded done")
			return nil // recorded built, and dropped since: the history decides
		}
	} else if done {
		r.skipped(ctx, i, "recorded done")
		return nil
	}
	start := time.Now()
	if err := r.exec(ctx, conn, i, st.SQL, ""); err != nil {
		return err
	}
	return r.record(ctx, conn, i, time.Since(start))
}

// exec runs query, statement i of the run or (doing says what) a statement
// run for it, through e, in a span of its own under the move's or retire's,
// and returns its error named by [ddlRun.stmtErr].
func (r *ddlRun) exec(ctx context.Context, e sqlx.ExecerContext, i int, query, doing string) error {
	ctx, span := telemetry.Child(ctx, r.m.s.tracer, spanStatement, trace.WithAttributes(
		telemetry.KeyMigration.String(r.m.h.Name), telemetry.KeyPhaseTo.String(r.to.String()),
		keyStatementIndex.Int(i), telemetry.KeyStatement.String(sqltext.Abbreviate(query))))
	_, err := e.ExecContext(ctx, query)
	outcome := telemetry.OK
	if err != nil {
		err = r.stmtErr(i, doing, err)
		switch {
		case ctx.Err() != nil:
			outcome = telemetry.Canceled
		case r.m.s.m.Dialect.IsLockTimeout(err):
			outcome = telemetry.Timeout
		default:
			outcome = telemetry.Error
		}
	}
	telemetry.EndSpan(span, outcome.String(), err)
	return err
}

// skipped notes, in the span of the move or retire, that statement i did
// not run, and why.
func (r *ddlRun) skipped(ctx context.Context, i int, why string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("statement skipped: "+why, trace.WithAttributes(keyStatementIndex.Int(i),
			telemetry.KeyStatement.String(sqltext.Abbreviate(r.stmts[i].SQL))))
	}
}

// runGroup runs statements i to j-1, none of which is Outside, in one
// transaction on conn, with the events that record them done.
func (r *ddlRun) runGroup(ctx context.Context, conn *sqlx.Conn, i, j int, done map[int]string) error {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("expandcontract: %q, statements for %s: %w", r.m.h.Name, r.to, err)
	}
	defer tx.Rollback()
	for ; i < j; i++ {
		if done[i] == r.stmts[i].SQL {
			r.skipped(ctx, i, "recorded done")
			continue
		}
		start := time.Now()
		if err := r.exec(ctx, tx, i, r.stmts[i].SQL, ""); err != nil {
			return err
		}
		if err := r.record(ctx, tx, i, time.Since(start)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("expandcontract: %q, statements for %s: commit: %w", r.m.h.Name, r.to, err)
	}
	return nil
}

// inTx runs the statements from the index first on in tx, the transaction
// that changes the phase, under the store's lock timeout.
func (r *ddlRun) inTx(ctx context.Context, tx *sqlx.Tx, first int) error {
	if first == len(r.stmts) {
		return nil
	}
	if err := r.m.s.m.Dialect.SetLockTimeout(ctx, tx, r.m.s.lockTimeout); err != nil {
		return fmt.Errorf("expandcontract: set lock timeout: %w", err)
	}
	for i := first; i < len(r.stmts); i++ {
		if err := r.exec(ctx, tx, i, r.stmts[i].SQL, ""); err != nil {
			return err
		}
	}
	return nil
}

// overrides records, in tx, one event of kind "override" for every
// override that let a statement through, with version, the migration's
// version after the transaction.
func (r *ddlRun) overrides(ctx context.Context, tx sqlx.ExecerContext, version int64) error {
	for _, st := range r.stmts {
		for _, o := range st.Overridden {
			ev := Event{Actor: r.actor, Kind: "override", From: r.from, To: r.to, Version: version, Reason: r.reason,
				Detail: fmt.Sprintf("rule %s, statement %d (%s): %s", o.Rule, o.Statement, st.SQL, o.Why)}
			if err := r.m.addEvent(ctx, tx, ev); err != nil {
				return fmt.Errorf("expandcontract: record override: %w", err)
			}
		}
	}
	return nil
}

// stmtErr wraps err, the error of statement i (or of what doing does for
// it), naming the migration, the statement and the phase.
func (r *ddlRun) stmtErr(i int, doing string, err error) error {
	if doing != "" {
		doing = ": " + doing
	}
	return fmt.Errorf("expandcontract: %q, statement %d (%s) for %s%s: %w",
		r.m.h.Name, i, sqltext.Abbreviate(r.stmts[i].SQL), r.to, doing, err)
}

// ddlDetail is the detail of a "ddl" event: "statement I done in D: SQL",
// with I the statement's index among those of the move or retire, from 0,
// D how long it ran, as time.Duration prints it, and SQL the statement as
// it ran; or "statement I found done: SQL" for a concurrent index build
// whose index was found built and valid.
func ddlDetail(i int, took time.Duration, sql string) string {
	if took < 0 {
		return fmt.Sprintf("statement %d found done: %s", i, sql)
	}
	return fmt.Sprintf("statement %d done in %s: %s", i, took.Round(time.Microsecond), sql)
}

// parseDDLDetail returns the index and the statement of a "ddl" event's
// detail, and false for a detail of another shape.
func parseDDLDetail(detail string) (int, string, bool) {
	head, sql, ok := strings.Cut(detail, ": ")
	f := strings.Fields(head)
	if !ok || len(f) < 3 || f[0] != "statement" || (f[2] != "done" && f[2] != "found") {
		return 0, "", false
	}
	i, err := strconv.Atoi(f[1])
	return i, sql, err == nil
}

// record adds the event that says statement i ran in took (found done
// for a negative took), through e.
func (r *ddlRun) record(ctx context.Context, e sqlx.ExecerContext, i int, took time.Duration) error {
	ev := Event{Actor: r.actor, Kind: "ddl", From: r.from, To: r.to, Version: r.version, Reason: r.reason,
		Detail: ddlDetail(i, took, r.stmts[i].SQL)}
	if err := r.m.addEvent(ctx, e, ev); err != nil {
		return r.stmtErr(i, "record it done", err)
	}
	r.m.s.m.Logger.InfoContext(ctx, "cutover: migration statement done", "migration", r.m.h.Name, "to", r.to.String(),
		"statement", i, "took", max(took, 0))
	return nil
}

// doneStatements returns the statements recorded done, by index, for a
// move to (or a retire in) phase to at version: the "ddl" events with that
// target phase and version since the migration's last completed move or
// retire.
func (m *Migration) doneStatements(ctx context.Context, to Phase, version int64) (map[int]string, error) {
	k := m.s.m
	var details []string
	err := k.DB.SelectContext(ctx, &details, k.Q(`SELECT detail FROM `+k.T.Events+
		` WHERE migration = ? AND kind = 'ddl' AND version = ? AND to_phase = ? AND id > (SELECT COALESCE(MAX(id), 0) FROM `+
		k.T.Events+` WHERE migration = ? AND kind IN ('move', 'force', 'retire')) ORDER BY id`),
		m.h.Name, version, to.String(), m.h.Name)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read the statements of %q done for %s: %w", m.h.Name, to, err)
	}
	done := make(map[int]string, len(details))
	for _, d := range details {
		if i, sql, ok := parseDDLDetail(d); ok {
			done[i] = sql
		}
	}
	return done, nil
}

// indexState looks up the index a concurrent build names: "name" or
// "schema.name", as lockcheck gives it, found in that schema or else
// through the search_path. It returns the index's quoted, qualified name
// and whether it is valid, or "" if there is no such index.
func indexState(ctx context.Context, conn *sqlx.Conn, index string) (name string, valid bool, err error) {
	schema, rel, ok := strings.Cut(index, ".")
	if !ok {
		schema, rel = "", index
	}
	var rows []struct {
		Name  string `db:"name"`
		Valid bool   `db:"valid"`
	}
	err = conn.SelectContext(ctx, &rows, `SELECT format('%I.%I', n.nspname, c.relname) AS name, i.indisvalid AS valid
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indexrelid = to_regclass(CASE WHEN $1::text = '' THEN format('%I', $2::text) ELSE format('%I.%I', $1::text, $2::text) END)`,
		schema, rel)
	if err != nil || len(rows) == 0 {
		return "", false, err
	}
	return rows[0].Name, rows[0].Valid, nil
}

// session is a connection pinned for statements that run outside a
// transaction, with the store's lock timeout set for the session.
type session struct {
	conn  *sqlx.Conn
	reset string // the statement that takes the timeout off again
}

// resetTimeout bounds giving a session's connection back as it was.
const resetTimeout = 5 * time.Second

// openSession pins a connection of the store's database and sets the lock
// timeout on it for the session: on PostgreSQL lock_timeout, on MySQL
// innodb_lock_wait_timeout and lock_wait_timeout. [session.close] resets
// them.
func (s *Store) openSession(ctx context.Context) (*session, error) {
	conn, err := s.m.DB.Connx(ctx)
	if err != nil {
		return nil, err
	}
	ss := &session{conn: conn}
	switch s.m.Dialect.Name() {
	case sqldialect.Postgres:
		ms := (s.lockTimeout + time.Millisecond - 1) / time.Millisecond
		ss.reset = `RESET lock_timeout`
		_, err = conn.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, false)`, strconv.FormatInt(int64(ms), 10)+"ms")
	case sqldialect.MySQL:
		ss.reset = `SET SESSION innodb_lock_wait_timeout = DEFAULT, SESSION lock_wait_timeout = DEFAULT`
		// The setting is the session's: the transaction only lends
		// SetLockTimeout the connection.
		var tx *sqlx.Tx
		if tx, err = conn.BeginTxx(ctx, nil); err == nil {
			err = errors.Join(s.m.Dialect.SetLockTimeout(ctx, tx, s.lockTimeout), tx.Commit())
		}
	}
	if err != nil {
		ss.close(ctx)
		return nil, fmt.Errorf("set the session's lock timeout: %w", err)
	}
	return ss, nil
}

// close resets the session's lock timeout and gives the connection back to
// the pool, or closes it if the reset failed, so that no later user of the
// pool inherits the timeout.
func (ss *session) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resetTimeout)
	defer cancel()
	if ss.reset != "" {
		if _, err := ss.conn.ExecContext(ctx, ss.reset); err != nil {
			_ = ss.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	_ = ss.conn.Close()
}
