package faults

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// errNotFound is what a table answers for a key it does not hold. It is an
// answer, not a failure: breakers and shadow comparisons must not count it
// against the store.
var errNotFound = errors.New("faults: user not found")

// User is one row of the users table that the suite migrates.
type User struct {
	ID      string `db:"id"`
	Name    string `db:"name"`
	Version int64  `db:"version"`
}

// userAt returns the row that version v of key id holds: the name is
// derived from the version, so that two rows of one key at the same
// version are always equal.
func userAt(id string, v int64) User {
	return User{ID: id, Name: fmt.Sprintf("%s-v%d", id, v), Version: v}
}

// StoreError is the error of a call to one of the two stores. Every error a
// store function returns is one, so that an error reaching the caller says
// which store it came from.
type StoreError struct {
	Side cutover.Side // the store that failed
	Op   string       // "put", "get" or "rows"
	Err  error
}

// Error names the store, the operation and the cause.
func (e *StoreError) Error() string { return fmt.Sprintf("%s store: %s: %v", e.Side, e.Op, e.Err) }

// Unwrap returns the cause.
func (e *StoreError) Unwrap() error { return e.Err }

// errorSide returns the store a caller's error came from, and false if it
// names none: a *StoreError names its store, and the refusal of the new
// store's breaker stands for the new store.
func errorSide(err error) (cutover.Side, bool) {
	var se *StoreError
	switch {
	case errors.As(err, &se):
		return se.Side, true
	case errors.Is(err, breaker.ErrOpen):
		return cutover.New, true
	}
	return cutover.Old, false
}

// Table is the users table in one store, reached through one connection
// pool. Writes are conditional on the version: a row is only ever replaced
// by a newer version of itself, so a late write, a retried repair or a
// backfill of an old copy can never take a key back in time.
type Table struct {
	side    cutover.Side
	db      *sqlx.DB
	timeout time.Duration // bound on each query; 0 leaves it to the caller's context
	put     string
	get     string
	rows    string
}

// CreateUsers creates the users table in db.
func CreateUsers(ctx context.Context, db *sqlx.DB) error {
	d, err := sqldialect.For(db)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `CREATE TABLE users (id `+d.TypeKeyText()+` PRIMARY KEY, name `+
		d.TypeText()+` NOT NULL, version `+d.TypeBigInt()+` NOT NULL)`)
	return err
}

// NewTable returns the users table of db for side, each query bounded by
// timeout if it is positive.
func NewTable(side cutover.Side, db *sqlx.DB, timeout time.Duration) (*Table, error) {
	d, err := sqldialect.For(db)
	if err != nil {
		return nil, err
	}
	t := &Table{side: side, db: db, timeout: timeout,
		get:  d.Rebind(`SELECT id, name, version FROM users WHERE id = ?`),
		rows: `SELECT id, name, version FROM users ORDER BY id`,
	}
	switch d.Name() {
	case sqldialect.MySQL:
		// name is assigned first, so it still sees the stored version.
		t.put = `INSERT INTO users (id, name, version) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE
			name = IF(VALUES(version) > version, VALUES(name), name),
			version = GREATEST(version, VALUES(version))`
	default:
		t.put = d.Rebind(`INSERT INTO users (id, name, version) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE
			SET name = excluded.name, version = excluded.version WHERE users.version < excluded.version`)
	}
	return t, nil
}

func (t *Table) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, t.timeout)
}

func (t *Table) fail(op string, err error) error {
	return &StoreError{Side: t.side, Op: op, Err: err}
}

// Put writes u unless the table holds u.ID at u.Version or a newer one.
func (t *Table) Put(ctx context.Context, u User) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	if _, err := t.db.ExecContext(ctx, t.put, u.ID, u.Name, u.Version); err != nil {
		return t.fail("put", err)
	}
	return nil
}

// Get returns the row of id, or an error wrapping errNotFound.
func (t *Table) Get(ctx context.Context, id string) (User, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	var u User
	err := t.db.GetContext(ctx, &u, t.get, id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, t.fail("get", fmt.Errorf("%w: %q", errNotFound, id))
	}
	if err != nil {
		return User{}, t.fail("get", err)
	}
	return u, nil
}

// Rows returns every row, by key, with no timeout but the caller's.
func (t *Table) Rows(ctx context.Context) (map[string]User, error) {
	var all []User
	if err := t.db.SelectContext(ctx, &all, t.rows); err != nil {
		return nil, t.fail("rows", err)
	}
	m := make(map[string]User, len(all))
	for _, u := range all {
		m[u.ID] = u
	}
	return m, nil
}

// isStoreFailure reports whether err says the store is unwell rather than
// answering: anything but "not found".
func isStoreFailure(err error) bool { return err != nil && !errors.Is(err, errNotFound) }
