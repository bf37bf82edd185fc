// Package recipe writes the statements of lock-safe schema changes, one
// move's worth each, for the databases cutover runs on: a column made NOT
// NULL, a foreign key, a unique constraint, and a column type change that
// no server makes online, done through a new table that takes the old
// one's place.
//
// Each function returns the statements for [expandcontract.Move].SQL (or
// [expandcontract.Retire].SQL) and passes [lockcheck.Check] without
// overrides. Names are validated and quoted for the dialect; a name that
// is not a plain identifier (see [sqldialect.ValidIdentifier]: ASCII
// letters, digits and underscores, optionally schema.table) is refused with
// an error wrapping [ErrInvalidInput], and a change the dialect cannot make
// online with one wrapping [ErrUnsupported]. Which move each recipe
// belongs to, what each statement locks and for how long, is said on each
// function; docs/lock-safety.md lists them too.
package recipe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// ErrInvalidInput is wrapped by the error of a recipe given a name it does
// not accept (empty, not a plain identifier, too long), an unknown
// dialect, or a fragment of SQL that does not hold exactly one clause.
var ErrInvalidInput = errors.New("recipe: invalid input")

// ErrUnsupported is wrapped by the error of a recipe asked for a dialect
// that cannot make the change online; the error says what to do instead.
var ErrUnsupported = errors.New("recipe: not supported online on this database")

// dialectOf returns the dialect named by name: "postgres", "mysql" or
// "sqlite", as [expandcontract.Store.Driver] names them, or a
// database/sql driver name such as "pgx".
func dialectOf(name string) (sqldialect.Dialect, error) {
	d, err := sqldialect.ForDriver(name)
	if err != nil {
		return sqldialect.Dialect{}, fmt.Errorf("%w: unknown dialect %q (want %q, %q or %q)",
			ErrInvalidInput, name, sqldialect.Postgres, sqldialect.MySQL, sqldialect.SQLite)
	}
	return d, nil
}

// names validates and quotes the names of one recipe, keeping the first
// error: tables may be schema.table, every other name is one identifier.
type names struct {
	d   sqldialect.Dialect
	err error
}

// table quotes a table's name, schema.table or table.
func (n *names) table(what, s string) string {
	if n.err != nil {
		return ""
	}
	q, err := n.d.QuoteIdent(s)
	if err != nil {
		n.err = fmt.Errorf("%w: %s: %w", ErrInvalidInput, what, err)
	}
	return q
}

// ident quotes the name of a column, constraint or index: one identifier.
func (n *names) ident(what, s string) string {
	if n.err == nil && strings.Contains(s, ".") {
		n.err = fmt.Errorf("%w: %s %q: a %s has no schema part", ErrInvalidInput, what, s, what)
		return ""
	}
	return n.table(what, s)
}

// list quotes a list of columns, joined by ", "; it must not be empty.
func (n *names) list(what string, cols []string) string {
	if n.err == nil && len(cols) == 0 {
		n.err = fmt.Errorf("%w: no %s given", ErrInvalidInput, what)
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = n.ident(what, c)
	}
	return strings.Join(q, ", ")
}

// unqualified returns the name part of schema.table.
func unqualified(table string) string {
	if _, name, ok := strings.Cut(table, "."); ok {
		return name
	}
	return table
}

// unsupported returns the error for a recipe the dialect d cannot run
// online, saying why and what to do instead.
func unsupported(recipe string, d sqldialect.Dialect, why string) error {
	return fmt.Errorf("%w: %s on %s: %s", ErrUnsupported, recipe, d.Name(), why)
}

// checkFragment refuses stmts, which embed SQL given by the caller (a
// column definition, alter specifications), unless each holds exactly one
// statement that the dialect's lockcheck parser reads.
func checkFragment(d sqldialect.Dialect, stmts []string) error {
	if _, err := lockcheck.Check(context.Background(), nil, d.Name(), stmts); err != nil &&
		(errors.Is(err, lockcheck.ErrInvalidInput) || errors.Is(err, lockcheck.ErrParse)) {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return nil
}
