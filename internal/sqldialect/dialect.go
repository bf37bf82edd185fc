package sqldialect

import (
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Names of the supported dialects, as returned by [Dialect.Name].
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// kind identifies one supported database; the zero kind marks the zero
// Dialect, which is not usable.
type kind uint8

const (
	kindNone kind = iota
	kindSQLite
	kindPostgres
	kindMySQL
)

// Dialect describes one SQL database: how to write placeholders, quote
// identifiers and declare columns for it, and how to read its errors. A
// Dialect is a small immutable value, safe for concurrent use and cheap to
// copy. Obtain one with [For] or [ForDriver]; the zero Dialect is not
// usable: its Name is "", its error predicates report false and its other
// methods panic.
type Dialect struct {
	k kind
}

// drivers maps the database/sql driver names this package understands to
// the database behind them.
var drivers = map[string]kind{
	"sqlite":   kindSQLite,   // modernc.org/sqlite
	"sqlite3":  kindSQLite,   // github.com/mattn/go-sqlite3, or modernc.org/sqlite registered under its name
	"pgx":      kindPostgres, // github.com/jackc/pgx/v5/stdlib
	"pgx/v5":   kindPostgres, // github.com/jackc/pgx/v5/stdlib, versioned name
	"postgres": kindPostgres, // github.com/lib/pq, and the dialect name itself
	"mysql":    kindMySQL,    // github.com/go-sql-driver/mysql
}

// For returns the Dialect of db, chosen by the name of the database/sql
// driver it was opened with (db.DriverName()). It accepts "sqlite"
// (modernc.org/sqlite) and "sqlite3" (github.com/mattn/go-sqlite3's name,
// under which programs also register modernc.org/sqlite), "pgx" and
// "pgx/v5" (github.com/jackc/pgx/v5/stdlib), "postgres" and "mysql"
// (github.com/go-sql-driver/mysql); any other driver, or a nil db, is an
// error.
func For(db *sqlx.DB) (Dialect, error) {
	if db == nil {
		return Dialect{}, errors.New("sqldialect: nil *sqlx.DB")
	}
	return ForDriver(db.DriverName())
}

// ForDriver returns the Dialect for a database/sql driver name, as accepted
// by [For]. The dialect names [SQLite], [Postgres] and [MySQL] are accepted
// too, so ForDriver(d.Name()) returns d.
func ForDriver(driverName string) (Dialect, error) {
	k, ok := drivers[driverName]
	if !ok {
		return Dialect{}, fmt.Errorf("sqldialect: unsupported database/sql driver %q (supported: \"sqlite\", \"sqlite3\", \"pgx\", \"pgx/v5\", \"postgres\", \"mysql\")", driverName)
	}
	return Dialect{k: k}, nil
}

// Name returns the dialect's name: [SQLite], [Postgres] or [MySQL] (the
// last also for MariaDB). It returns "" for the zero Dialect.
func (d Dialect) Name() string {
	switch d.k {
	case kindSQLite:
		return SQLite
	case kindPostgres:
		return Postgres
	case kindMySQL:
		return MySQL
	}
	return ""
}

// String returns the dialect's name, as [Dialect.Name] does.
func (d Dialect) String() string { return d.Name() }

// must panics if d is the zero Dialect.
func (d Dialect) must() {
	if d.k == kindNone {
		panic("sqldialect: use of the zero Dialect; obtain one with sqldialect.For or sqldialect.ForDriver")
	}
}

// pick returns the value for d's database.
func (d Dialect) pick(sqlite, postgres, mysql string) string {
	switch d.k {
	case kindSQLite:
		return sqlite
	case kindPostgres:
		return postgres
	case kindMySQL:
		return mysql
	}
	d.must()
	return ""
}

// BindType returns the sqlx bind type of the dialect's placeholders:
// sqlx.DOLLAR for PostgreSQL and sqlx.QUESTION otherwise. It is what
// sqlx.BindNamed and similar functions need; sqlx.BindType cannot be used
// because it does not know every driver name that [For] accepts.
func (d Dialect) BindType() int {
	d.must()
	if d.k == kindPostgres {
		return sqlx.DOLLAR
	}
	return sqlx.QUESTION
}

// Rebind turns a query written with '?' placeholders into the dialect's
// placeholder style: $1, $2, ... on PostgreSQL; SQLite and MySQL queries
// are returned unchanged. Every '?' is replaced, including one inside a
// string literal or a comment, so such text must be passed as an argument.
func (d Dialect) Rebind(query string) string {
	return sqlx.Rebind(d.BindType(), query)
}

// ForUpdate returns the clause that, appended to a SELECT inside a
// transaction, locks the rows it reads until the transaction ends: " FOR
// UPDATE" (with its leading space) on PostgreSQL and MySQL, and "" on
// SQLite, which has no row locks. On SQLite the write lock covers the whole
// database and is taken by the transaction's first write, or by BEGIN
// IMMEDIATE if the database was opened with _txlock=immediate; see the
// package documentation.
func (d Dialect) ForUpdate() string {
	return d.pick("", " FOR UPDATE", " FOR UPDATE")
}
