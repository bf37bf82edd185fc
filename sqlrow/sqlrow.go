// Package sqlrow writes, copies and repairs the rows of SQL tables that
// carry a version column, on SQLite, PostgreSQL and MySQL or MariaDB, so
// that no store ever goes back to an older value, whatever order racing
// dual writes, backfill copies and repairs land in.
//
// A [Rows] describes one table in one database: its key column, its version
// column and the columns that hold the values. [Rows.Save] is the write
// function of a versioned dual write (see dualwrite.Writer.WriteVersioned):
// it applies a write only over a lower version, and tells the call that
// orders the key's writes when the row holds a higher one, so that the
// writer stamps it higher. [Rows.Put] is the conditional write on its own, [CopyRange] copies a
// range of keys for a backfill, and [Pair.Repair] is a ready repair
// function: it copies a key from the store holding the newer version to the
// other.
//
// The version column must be an integer column of 64 bits (BIGINT NOT NULL
// DEFAULT 0): versions from dualwrite's clock are microseconds shifted left
// by a few bits. Rows written before versions were kept hold 0, older than
// every versioned write.
//
// Every statement is built once by [New] from names that are validated and
// quoted, never spliced raw. Values are passed to the driver as given, and
// read back as the driver returns them, except that []byte values are read
// as strings, so that text copies between databases of different kinds; a
// binary column is therefore copied as a string.
//
// Deletes are not versioned: a row that is gone has no version to compare.
// [Rows.Delete] deletes only over a lower version, but a late write of an
// older value can bring a deleted row back. Where that matters, delete by
// writing a tombstone column as a value and purge tombstones once the
// migration is complete.
//
// Everything here is safe for concurrent use.
package sqlrow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// ErrInvalidInput is wrapped by the errors that [New] returns for a bad
// table description, and by those the methods return for a wrong number
// of values. Each names what was wrong.
var ErrInvalidInput = errors.New("sqlrow: invalid input")

// ErrInvalidIdentifier is wrapped by the error [New] returns for a table or
// column name that is not a plain SQL identifier.
var ErrInvalidIdentifier = sqldialect.ErrInvalidIdentifier

// Table describes a table whose rows carry a version. The zero value
// describes no table; New refuses it.
type Table struct {
	Name    string   // the table, optionally as schema.table
	Key     string   // the key column, unique
	Version string   // the version column, a 64-bit integer
	Columns []string // the value columns, in the order values are passed and returned
}

// Row is one row as [Rows.Get] reads it. The zero value is a row that is
// not there.
type Row struct {
	Found   bool            // whether the table has the key
	Version cutover.Version // the row's version; 0 if not found or never versioned
	Values  []any           // the values of Table.Columns, in order
}

// Rows reads and writes the rows of one [Table] in one kind of database.
// Create it with [New]; the zero value is not usable. It is safe for
// concurrent use.
type Rows struct {
	table   Table
	dialect sqldialect.Dialect
	update  string // UPDATE ... WHERE key = ? AND version < ?
	insert  string // INSERT of a row that is not there
	version string // SELECT version WHERE key = ?
	get     string // SELECT version, columns WHERE key = ?
	scan    string // SELECT key, version, columns, to which readRange adds its range
	key     string // the key column, quoted
	del     string // DELETE WHERE key = ? AND version < ?
	delAt   string // DELETE WHERE key = ? AND version = ?
	swap    string // UPDATE ... WHERE key = ? AND version = ?
}

// New returns the Rows of t for the database/sql driver named driver:
// "sqlite" (or "sqlite3"), "pgx" (or "postgres") or "mysql". An unknown
// driver, an empty or invalid name, no value columns or a column named
// twice makes New fail with an error wrapping [ErrInvalidInput] (and
// [ErrInvalidIdentifier] for a bad name) that names every problem.
func New(driver string, t Table) (*Rows, error) {
	d, err := sqldialect.ForDriver(driver)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var errs []error
	quote := func(what, name string) string {
		q, err := d.QuoteIdent(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return q
	}
	table := quote("table", t.Name)
	key := quote("key column", t.Key)
	version := quote("version column", t.Version)
	if len(t.Columns) == 0 {
		errs = append(errs, errors.New("no value columns"))
	}
	cols := make([]string, len(t.Columns))
	seen := map[string]bool{t.Key: true, t.Version: true}
	for i, c := range t.Columns {
		cols[i] = quote(fmt.Sprintf("column %d", i+1), c)
		if seen[c] && c != "" {
			errs = append(errs, fmt.Errorf("column %q named twice", c))
		}
		seen[c] = true
	}
	if t.Key != "" && t.Key == t.Version {
		errs = append(errs, fmt.Errorf("key and version are the same column %q", t.Key))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	r := &Rows{table: t, dialect: d}
	r.table.Columns = append([]string(nil), t.Columns...)
	set := strings.Join(cols, " = ?, ") + " = ?"
	all := strings.Join(cols, ", ")
	r.update = d.Rebind(fmt.Sprintf("UPDATE %s SET %s, %s = ? WHERE %s = ? AND %s < ?", table, set, version, key, version))
	insert := fmt.Sprintf("INSERT INTO %s (%s, %s, %s) VALUES (?%s)", table, key, all, version, strings.Repeat(", ?", len(cols)+1))
	if d.Name() != sqldialect.MySQL {
		// MySQL has no DO NOTHING that reports the conflict unambiguously;
		// there a duplicate key error says the row is there, and it leaves
		// the transaction usable, unlike PostgreSQL.
		insert += fmt.Sprintf(" ON CONFLICT (%s) DO NOTHING", key)
	}
	r.insert = d.Rebind(insert)
	r.version = d.Rebind(fmt.Sprintf("SELECT %s FROM %s WHERE %s = ?", version, table, key))
	r.get = d.Rebind(fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s = ?", version, all, table, key))
	r.scan = fmt.Sprintf("SELECT %s, %s, %s FROM %s", key, version, all, table)
	r.key = key
	r.del = d.Rebind(fmt.Sprintf("DELETE FROM %s WHERE %s = ? AND %s < ?", table, key, version))
	r.swap = d.Rebind(fmt.Sprintf("UPDATE %s SET %s, %s = ? WHERE %s = ? AND %s = ?", table, set, version, key, version))
	r.delAt = d.Rebind(fmt.Sprintf("DELETE FROM %s WHERE %s = ? AND %s = ?", table, key, version))
	return r, nil
}

// Table returns the table description given to [New].
func (r *Rows) Table() Table {
	t := r.table
	t.Columns = append([]string(nil), t.Columns...)
	return t
}

func (r *Rows) checkValues(values []any) error {
	if len(values) != len(r.table.Columns) {
		return fmt.Errorf("%w: %s: %d values for %d columns", ErrInvalidInput, r.table.Name, len(values), len(r.table.Columns))
	}
	return nil
}

// Put writes the row of key with values at version v if the table holds no
// row for key, or one with a lower version, and reports whether it wrote.
// A row with version v or higher is left alone: it holds the same write or
// a later one.
func (r *Rows) Put(ctx context.Context, db sqlx.ExtContext, key any, v cutover.Version, values ...any) (bool, error) {
	applied, _, err := r.put(ctx, db, key, v, values)
	return applied, err
}

// put is Put that also returns, when the row was left alone, the version
// it holds.
func (r *Rows) put(ctx context.Context, db sqlx.ExtContext, key any, v cutover.Version, values []any) (bool, cutover.Version, error) {
	if err := r.checkValues(values); err != nil {
		return false, 0, err
	}
	version, err := toColumn(v)
	if err != nil {
		return false, 0, err
	}
	args := make([]any, 0, len(values)+3)
	args = append(append(args, values...), version, key, version)
	// Two tries: an insert that finds the row there, inserted by a write
	// racing this one, updates it instead.
	for range 2 {
		n, err := affected(db.ExecContext(ctx, r.update, args...))
		if err != nil {
			return false, 0, fmt.Errorf("sqlrow: %s: update %v: %w", r.table.Name, key, err)
		}
		if n > 0 {
			return true, v, nil
		}
		ins := append(append(append(make([]any, 0, len(values)+2), key), values...), version)
		n, err = affected(db.ExecContext(ctx, r.insert, ins...))
		switch {
		case err != nil && r.dialect.IsUniqueViolation(err):
		case err != nil:
			return false, 0, fmt.Errorf("sqlrow: %s: insert %v: %w", r.table.Name, key, err)
		case n > 0:
			return true, v, nil
		}
		// The row is there. Unless it was inserted between the two
		// statements, with a lower version, it holds v or higher.
		cur, found, err := r.Version(ctx, db, key)
		if err != nil {
			return false, 0, err
		}
		if found && cur >= v {
			return false, cur, nil
		}
	}
	return false, 0, fmt.Errorf("sqlrow: %s: put %v: the row kept changing under the write", r.table.Name, key)
}

// Save is the store function of a versioned dual write: it writes the row
// of key with values as the stamp s says, with [Rows.Put], and returns
// s.Version. If the row holds a higher version, or the same one with First
// set, Save leaves it alone and returns the row's version and an error
// wrapping cutover.ErrStaleVersion, so that the writer stamps the write
// above it and calls again (see dualwrite.Writer.WriteVersioned). A row
// that holds s.Version already, without First, is this write: Save
// succeeds. s.Side is not used: choose the database and the Rows of that
// side before calling.
func (r *Rows) Save(ctx context.Context, db sqlx.ExtContext, s cutover.Stamp, key any, values ...any) (cutover.Version, error) {
	applied, cur, err := r.put(ctx, db, key, s.Version, values)
	switch {
	case err != nil:
		return 0, err
	case applied || !s.First && cur == s.Version:
		return s.Version, nil
	}
	return cur, fmt.Errorf("sqlrow: %s: save %v at version %d: %w (%d)", r.table.Name, key, s.Version, cutover.ErrStaleVersion, cur)
}

// Version returns the version of the row of key, and whether there is one.
func (r *Rows) Version(ctx context.Context, db sqlx.QueryerContext, key any) (cutover.Version, bool, error) {
	var v int64
	err := db.QueryRowxContext(ctx, r.version, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sqlrow: %s: read version of %v: %w", r.table.Name, key, err)
	}
	return cutover.Version(v), true, nil
}

// Get reads the row of key.
func (r *Rows) Get(ctx context.Context, db sqlx.QueryerContext, key any) (Row, error) {
	values := make([]any, len(r.table.Columns))
	var v int64
	dest := make([]any, 0, len(values)+1)
	dest = append(dest, &v)
	for i := range values {
		dest = append(dest, &values[i])
	}
	err := db.QueryRowxContext(ctx, r.get, key).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return Row{}, nil
	}
	if err != nil {
		return Row{}, fmt.Errorf("sqlrow: %s: read %v: %w", r.table.Name, key, err)
	}
	textual(values)
	return Row{Found: true, Version: cutover.Version(v), Values: values}, nil
}

// Delete deletes the row of key if its version is lower than v, and
// reports whether it did. See the package documentation for why deletes
// cannot be fully versioned.
func (r *Rows) Delete(ctx context.Context, db sqlx.ExtContext, key any, v cutover.Version) (bool, error) {
	version, err := toColumn(v)
	if err != nil {
		return false, err
	}
	n, err := affected(db.ExecContext(ctx, r.del, key, version))
	if err != nil {
		return false, fmt.Errorf("sqlrow: %s: delete %v: %w", r.table.Name, key, err)
	}
	return n > 0, nil
}

// textual turns the []byte values a driver returns for text into strings,
// which every driver writes back as text.
func textual(values []any) {
	for i, v := range values {
		if b, ok := v.([]byte); ok {
			values[i] = string(b)
		}
	}
}

func toColumn(v cutover.Version) (int64, error) {
	if v > 1<<63-1 {
		return 0, fmt.Errorf("%w: version %d does not fit a signed 64-bit column", ErrInvalidInput, v)
	}
	return int64(v), nil
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
