package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/shadowread"
	"github.com/cutover-go/cutover/sqlrow"
)

// User is one row of the users table. Version grows by one with every save
// of the user, so the newer of two copies is always the one to keep.
type User struct {
	ID      string `db:"id"`
	Name    string `db:"name"`
	Email   string `db:"email"`
	Version int64  `db:"version"`
}

// UserRepo is the service's data access for users.
type UserRepo interface {
	Get(ctx context.Context, id string) (User, error)
	Save(ctx context.Context, u User) error
}

var (
	// ErrNotFound is returned by Get for a user that does not exist.
	ErrNotFound = errors.New("user not found")
	// ErrStale is returned by Save when the store already holds the same or a
	// newer version of the user.
	ErrStale = errors.New("user version is stale")
	// errInjected is what the flaky new store fails with.
	errInjected = errors.New("injected failure")
)

// sqlRepo is a UserRepo on one SQLite database. Its rows carry the user's
// version, which package sqlrow compares: a save, a backfill copy or a
// repair writes a row only over an older version.
type sqlRepo struct {
	db   *sqlx.DB
	rows *sqlrow.Rows
}

var usersTable = sqlrow.Table{Name: "users", Key: "id", Version: "version", Columns: []string{"name", "email"}}

// openSQLite opens (creating if needed) the SQLite database file path with
// write-ahead logging and a busy timeout, so concurrent writers wait for each
// other instead of failing with SQLITE_BUSY.
func openSQLite(path string) (*sqlRepo, error) {
	db, err := sqlx.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	const schema = `CREATE TABLE IF NOT EXISTS users (
		id      TEXT PRIMARY KEY,
		name    TEXT NOT NULL,
		email   TEXT NOT NULL,
		version INTEGER NOT NULL)`
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create users table in %s: %w", path, err)
	}
	rows, err := sqlrow.New("sqlite", usersTable)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &sqlRepo{db: db, rows: rows}, nil
}

func (r *sqlRepo) Get(ctx context.Context, id string) (User, error) {
	var u User
	err := r.db.GetContext(ctx, &u, `SELECT id, name, email, version FROM users WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return u, err
}

func (r *sqlRepo) Save(ctx context.Context, u User) error {
	applied, err := r.putIfNewer(ctx, u)
	if err == nil && !applied {
		return fmt.Errorf("%w: %q version %d", ErrStale, u.ID, u.Version)
	}
	return err
}

// putIfNewer inserts u, or overwrites the stored row if u is newer, and
// reports whether it did. Backfill uses it too, so a copy that races with
// a save can never put an older row over a newer one.
func (r *sqlRepo) putIfNewer(ctx context.Context, u User) (bool, error) {
	return r.rows.Put(ctx, r.db, u.ID, cutover.Version(u.Version), u.Name, u.Email)
}

// all returns every row, ordered by id.
func (r *sqlRepo) all(ctx context.Context) ([]User, error) {
	var us []User
	err := r.db.SelectContext(ctx, &us, `SELECT id, name, email, version FROM users ORDER BY id`)
	return us, err
}

// flakyRepo fails a share of the calls to the repository it wraps, and every
// call while down is set, without touching the database.
type flakyRepo struct {
	next     UserRepo
	failRate float64
	down     atomic.Bool
}

func (f *flakyRepo) fail() error {
	if f.down.Load() {
		return fmt.Errorf("%w: store unreachable", errInjected)
	}
	if rand.Float64() < f.failRate {
		return errInjected
	}
	return nil
}

func (f *flakyRepo) Get(ctx context.Context, id string) (User, error) {
	if err := f.fail(); err != nil {
		return User{}, err
	}
	return f.next.Get(ctx, id)
}

func (f *flakyRepo) Save(ctx context.Context, u User) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.next.Save(ctx, u)
}

// migratingRepo is the UserRepo the service uses while users move from
// stores[cutover.Old] to stores[cutover.New]: the stage flag decides, call
// by call, which store is written and read.
type migratingRepo struct {
	stores [2]UserRepo
	saves  *dualwrite.Writer
	gets   *shadowread.Reader[User]
}

func (r *migratingRepo) Save(ctx context.Context, u User) error {
	return r.saves.Write(ctx, u.ID, func(ctx context.Context, side cutover.Side) error {
		return r.stores[side].Save(ctx, u)
	})
}

func (r *migratingRepo) Get(ctx context.Context, id string) (User, error) {
	return r.gets.Read(ctx, id, func(ctx context.Context, side cutover.Side) (User, error) {
		return r.stores[side].Get(ctx, id)
	})
}
