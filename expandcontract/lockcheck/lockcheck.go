// Package lockcheck checks the SQL statements of a migration's moves before
// any of them runs, so that a schema change never locks or rewrites a busy
// table by accident: a plain CREATE INDEX, a column type change that
// rewrites the table, a SET NOT NULL that scans it under an exclusive lock.
// A statement that would is refused with the rule it breaks, why, and what
// to run instead; an [Override] lets one through, for a table small enough.
//
// Check also says how each statement must run: on PostgreSQL some
// statements (CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX
// CONCURRENTLY, ALTER TYPE ... ADD VALUE, VACUUM) cannot run in a
// transaction block, and an ALTER TABLE ... VALIDATE CONSTRAINT must run in
// a transaction of its own, so that its scan holds no lock an earlier
// statement took; package expandcontract runs all of them on their own,
// before the phase changes ([Statement].Outside). A concurrent index build
// names the index that a failed build leaves behind INVALID, to be dropped
// before a retry.
//
// # PostgreSQL
//
// PostgreSQL statements are parsed with PostgreSQL's own parser
// (libpg_query, compiled to WebAssembly and run in pure Go: no cgo), and
// the rules read its syntax tree. The first parse in a process takes about
// a second, to compile the parser; later ones take microseconds. Nothing is
// compiled before that first parse, so a program that never checks a
// PostgreSQL statement pays nothing at start, but the parser makes a binary
// that imports this package (as package expandcontract does) about 16 MB
// larger. Rules that
// depend on the table (a column's current type, its validated CHECK
// constraints, whether a default's function is volatile) read the catalog
// through the db given to [Check]; without one they refuse what they
// cannot prove safe. A table created by an earlier statement of the same
// call is exempt from the rules, since no other session can use it yet.
//
// # MySQL and MariaDB
//
// Whether an ALTER TABLE can run without locking the table is for the
// server to say: it depends on the storage engine, the version, the
// column's definition and the row format. So Check adds ALGORITHM=INPLACE
// and LOCK=NONE to every ALTER TABLE, CREATE INDEX and DROP INDEX that
// does not give them (MariaDB reads INPLACE as "in place or better", so an
// INSTANT change stays instant), and the server then refuses a change it
// cannot make online instead of locking the table; clauses that ask for a
// lock are refused by [RuleMySQLOnlineDDL]. MariaDB's DROP INDEX takes no
// such clauses, so it is rewritten as the ALTER TABLE ... DROP INDEX that
// means the same.
//
// MySQL statements are split into tokens by a small lexer of this package
// (identifiers, backquoted identifiers, strings, numbers, comments and
// punctuation, with the depth of parentheses), and the rule reads their
// top-level tokens. No Go MySQL parser fits this module: vitess's would
// bring its logging and metrics libraries into every user's module graph,
// and the lighter ones drop the ALTER TABLE clauses the rule is about. An
// executable comment (/*! ... */) is refused as unparsable, since the
// server would run what lockcheck does not read.
//
// # SQLite
//
// SQLite has no rules: a write of any kind takes the one lock of the whole
// database, so no statement holds a lock that others do not, and ALTER
// TABLE ... ADD COLUMN changes only the schema.
//
// The rules, what each refuses and why, and what to run instead are listed
// in docs/lock-safety.md.
package lockcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqltext"
)

// Dialect names, as the database/sql driver's dialect is named throughout
// cutover.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
	SQLite   = "sqlite"
)

// ErrInvalidInput is wrapped by the errors [Check] returns for arguments it
// cannot check: an unknown dialect, an empty statement, a statement that
// holds several, an override naming no statement or no rule.
var ErrInvalidInput = errors.New("lockcheck: invalid input")

// ErrParse is wrapped by the error of a statement the dialect's parser
// refuses.
var ErrParse = errors.New("lockcheck: statement does not parse")

// ErrUnsafe is wrapped by every [*UnsafeError].
var ErrUnsafe = errors.New("lockcheck: statement would lock or rewrite a table")

// Rule names one lock-safety rule. Rules are stable strings, recorded in
// a migration's history when an [Override] lets a statement break one.
type Rule string

// Statement is one checked statement, as it is to run. The zero value is
// no statement.
type Statement struct {
	// SQL is the statement to run: the one given, or on MySQL the one
	// given with the clauses that make the server refuse it rather than
	// lock the table (ALGORITHM, LOCK=NONE).
	SQL string
	// Outside is true for a statement that must run on its own, outside
	// the transaction that changes the phase: one that cannot run in a
	// transaction block (CREATE INDEX CONCURRENTLY and the like), or one
	// that must run in a transaction of its own, so that no lock an
	// earlier statement took is held while it runs (on PostgreSQL, an
	// ALTER TABLE that only validates constraints: its scan then holds
	// only a SHARE UPDATE EXCLUSIVE lock). Package expandcontract runs
	// each such statement alone, on a connection of its own, and the
	// statements before it first, in a transaction that commits before it
	// starts.
	Outside bool
	// Index names the index a concurrent index build creates, qualified
	// with the table's schema if the statement names one (PostgreSQL puts
	// an index in its table's schema), so that a retry can find and drop
	// the INVALID index a failed build leaves behind. It is empty for every
	// other statement.
	Index string
	// Overridden lists the overrides that let this statement run although
	// it breaks their rules.
	Overridden []Override
}

// Override lets one statement run although it breaks a rule: for a table
// small enough that the lock does not matter, or a window with no traffic.
// Who asked is the actor of the move; the override is recorded in the
// migration's history with it.
type Override struct {
	Statement int    // the statement's index among those checked, from 0
	Rule      Rule   // the rule it may break
	Why       string // why that is fine; required
}

// UnsafeError reports a statement that breaks a rule. It wraps
// [ErrUnsafe]. The library returns only filled ones and does not change
// them afterwards, so one is safe for concurrent use by readers.
type UnsafeError struct {
	Statement int    // the statement's index among those checked, from 0
	SQL       string // the statement
	Rule      Rule   // the rule it breaks
	Reason    string // what it would do to the table
	Instead   string // what to run instead
}

// Error describes the statement, the rule and the alternative.
func (e *UnsafeError) Error() string {
	return fmt.Sprintf("lockcheck: statement %d (%s) breaks rule %s: %s; instead, %s",
		e.Statement, sqltext.Abbreviate(e.SQL), e.Rule, e.Reason, e.Instead)
}

// Unwrap returns [ErrUnsafe].
func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// Check checks stmts, the statements of one move or retire, for the
// database named by dialect ([Postgres], [MySQL] or [SQLite]), and returns
// how each is to run. Each entry of stmts must hold one statement.
//
// db, if not nil, is read for what some PostgreSQL rules need from the
// catalog (a column's current type, a table's constraints, a function's
// volatility); it is only read, and the other dialects do not read it.
// Without it those rules assume the worst and refuse.
//
// Every statement is checked before Check returns: the error joins one
// [*UnsafeError] per rule broken and not overridden, so a caller sees all
// of them at once. Bad input (an unknown dialect, an empty entry, an
// override for no statement or without a reason) fails with an error
// wrapping [ErrInvalidInput]; a statement that does not parse, with one
// wrapping [ErrParse]; a catalog read that fails, with that error. Check
// is safe for concurrent use.
//
// The statements are checked in order, and what an earlier one does counts
// for a later one only where the rules say so: a table it creates is
// exempt from them, and a CHECK (col IS NOT NULL) constraint that earlier
// statements add NOT VALID and then validate, in a statement that only
// validates, lets a SET NOT NULL of col through [RuleSetNotNullCheck].
func Check(ctx context.Context, db sqlx.QueryerContext, dialect string, stmts []string, overrides ...Override) ([]Statement, error) {
	var c checker
	switch dialect {
	case Postgres:
		c = newPostgresChecker(db)
	case MySQL:
		c = newMySQLChecker()
	case SQLite:
		c = sqliteChecker{}
	default:
		return nil, fmt.Errorf("%w: unknown dialect %q (want %q, %q or %q)", ErrInvalidInput, dialect, Postgres, MySQL, SQLite)
	}
	if err := checkOverrides(len(stmts), overrides); err != nil {
		return nil, err
	}
	out := make([]Statement, len(stmts))
	var errs []error
	for i, sql := range stmts {
		if strings.TrimSpace(sql) == "" {
			return nil, fmt.Errorf("%w: statement %d is empty", ErrInvalidInput, i)
		}
		st, found, err := c.check(ctx, i, sql)
		if err != nil {
			return nil, err
		}
		for _, u := range merge(i, sql, found) {
			if o, ok := overridden(overrides, i, u.Rule); ok {
				st.Overridden = append(st.Overridden, o)
				continue
			}
			errs = append(errs, u)
		}
		out[i] = st
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// A checker checks the statements of one call to [Check], in order, and
// remembers what earlier statements did (the tables they created).
type checker interface {
	check(ctx context.Context, i int, sql string) (Statement, []finding, error)
}

// A finding is one rule that one part of a statement breaks.
type finding struct {
	rule    Rule
	reason  string
	instead string
}

// merge turns the findings of statement i into one [*UnsafeError] per
// rule, in the order the rules were first found, joining the reasons and
// alternatives of the parts of the statement that break the same rule.
func merge(i int, sql string, found []finding) []*UnsafeError {
	var out []*UnsafeError
	byRule := map[Rule]*UnsafeError{}
	for _, f := range found {
		u, ok := byRule[f.rule]
		if !ok {
			u = &UnsafeError{Statement: i, SQL: sql, Rule: f.rule, Reason: f.reason, Instead: f.instead}
			byRule[f.rule] = u
			out = append(out, u)
			continue
		}
		if !strings.Contains(u.Reason, f.reason) {
			u.Reason += "; " + f.reason
		}
		if !strings.Contains(u.Instead, f.instead) {
			u.Instead += "; " + f.instead
		}
	}
	return out
}

// sqliteChecker checks nothing: SQLite has one lock for the whole
// database, which every write takes, and its ALTER TABLE ADD COLUMN and
// CREATE INDEX have no online form to ask for (see docs/lock-safety.md).
type sqliteChecker struct{}

func (sqliteChecker) check(_ context.Context, _ int, sql string) (Statement, []finding, error) {
	return Statement{SQL: sql}, nil, nil
}

func checkOverrides(n int, overrides []Override) error {
	for _, o := range overrides {
		switch {
		case o.Statement < 0 || o.Statement >= n:
			return fmt.Errorf("%w: override for statement %d, of %d", ErrInvalidInput, o.Statement, n)
		case o.Rule == "":
			return fmt.Errorf("%w: override for statement %d names no rule", ErrInvalidInput, o.Statement)
		case strings.TrimSpace(o.Why) == "":
			return fmt.Errorf("%w: override of rule %s for statement %d gives no reason", ErrInvalidInput, o.Rule, o.Statement)
		}
	}
	return nil
}

func overridden(overrides []Override, i int, r Rule) (Override, bool) {
	for _, o := range overrides {
		if o.Statement == i && o.Rule == r {
			return o, true
		}
	}
	return Override{}, false
}
