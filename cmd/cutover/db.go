package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Environment variables the command reads.
const (
	envDriver = "CUTOVER_DRIVER" // the default of --driver
	envDSN    = "CUTOVER_DSN"    // the default of --dsn
)

// connectTimeout bounds reaching the database.
const connectTimeout = 15 * time.Second

// sqliteBusyTimeout is added to a SQLite DSN that sets none, so that the
// command waits for the services' writes instead of failing on them.
const sqliteBusyTimeout = "_pragma=busy_timeout(5000)"

// connFlags are the flags that say which database and tables to open.
type connFlags struct {
	driver, dsn, prefix string
}

func (f *connFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.driver, "driver", "", "database driver: sqlite, sqlite3, pgx, postgres or mysql (default $"+envDriver+")")
	fs.StringVar(&f.dsn, "dsn", "", "data source name of the service's database (default $"+envDSN+")")
	fs.StringVar(&f.prefix, "prefix", expandcontract.DefaultTablePrefix, "prefix of the metadata tables")
}

// fill takes what the flags left empty from the environment.
func (f *connFlags) fill(getenv func(string) string) {
	if f.driver == "" {
		f.driver = getenv(envDriver)
	}
	if f.dsn == "" {
		f.dsn = getenv(envDSN)
	}
}

// driverName returns the database/sql driver for the name an operator
// gave, or a usage error.
func driverName(name string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "sqlite", "sqlite3":
		return "sqlite", nil
	case "pgx", "pgx/v5", "postgres", "postgresql":
		return "pgx", nil
	case "mysql", "mariadb":
		return "mysql", nil
	case "":
		return "", usageErrorf("no database driver: give --driver or set %s (sqlite, sqlite3, pgx, postgres or mysql)", envDriver)
	}
	return "", usageErrorf("unknown database driver %q (want sqlite, sqlite3, pgx, postgres or mysql)", name)
}

// openDB opens and reaches the database dsn of the named driver. A DSN
// that does not parse is a usage error; a database that cannot be
// reached, or a SQLite file that does not exist (which opening would
// create), fails.
func openDB(ctx context.Context, driver, dsn, what string) (*sqlx.DB, error) {
	d, err := driverName(driver)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, usageErrorf("no %s: give --dsn or set %s", what, envDSN)
	}
	switch d {
	case "pgx":
		if _, err := pgx.ParseConfig(dsn); err != nil {
			return nil, usageErrorf("%s: bad PostgreSQL DSN: %v", what, err)
		}
	case "mysql":
		if _, err := mysql.ParseDSN(dsn); err != nil {
			return nil, usageErrorf("%s: bad MySQL DSN: %v", what, err)
		}
	case "sqlite":
		if dsn, err = sqliteDSN(dsn); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	db, err := sqlx.Open(d, dsn)
	if err != nil {
		return nil, usageErrorf("%s: %v", what, err)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: connect: %w", what, err)
	}
	return db, nil
}

// sqliteDSN checks that the SQLite database file of dsn exists, since
// opening one that does not creates it, and adds a busy timeout to a DSN
// that has none.
func sqliteDSN(dsn string) (string, error) {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path != ":memory:" && path != "" && !strings.Contains(query, "mode=memory") {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("SQLite database file %q: %w", path, err)
		}
	}
	if strings.Contains(query, "busy_timeout") {
		return dsn, nil
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&" + sqliteBusyTimeout, nil
	}
	return dsn + "?" + sqliteBusyTimeout, nil
}

// open opens the database and the store of the metadata tables, which must
// exist at the schema version of the library: the command never creates
// or upgrades them.
func (f *connFlags) open(ctx context.Context) (*sqlx.DB, *expandcontract.Store, error) {
	db, err := openDB(ctx, f.driver, f.dsn, "database")
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, db, f.prefix)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, store, nil
}

// openStore opens the store of the metadata tables named by prefix in db,
// after checking that they are there at the library's schema version, and
// with expandcontract.WithoutSchemaChanges, so that nothing is created or
// upgraded.
func openStore(ctx context.Context, db *sqlx.DB, prefix string) (*expandcontract.Store, error) {
	d, err := sqldialect.For(db)
	if err != nil {
		return nil, err
	}
	schema, err := d.QuoteIdent(prefix + "schema")
	if err != nil {
		return nil, usageErrorf("table prefix %q: %v", prefix, err)
	}
	var version int64
	err = db.GetContext(ctx, &version, `SELECT version FROM `+schema+` WHERE id = 1`)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, &notFoundError{msg: fmt.Sprintf("the metadata tables %s* hold no schema version: "+
			"start a service on the library once, which creates them", prefix)}
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, &notFoundError{msg: fmt.Sprintf("no metadata tables %s* in the %s database (is --dsn or --prefix wrong?): %v",
			prefix, d.Name(), err)}
	case version > expandcontract.SchemaVersion:
		return nil, fmt.Errorf("the metadata tables %s* are at schema version %d, newer than the %d this command knows: "+
			"install a newer cutover", prefix, version, expandcontract.SchemaVersion)
	case version < expandcontract.SchemaVersion:
		return nil, fmt.Errorf("the metadata tables %s* are at schema version %d, older than the %d this command knows: "+
			"upgrade the services first (expandcontract.Open upgrades the tables; 'cutover ddl --upgrade-from %[2]d' "+
			"prints the statements), or use a cutover of their version",
			prefix, version, expandcontract.SchemaVersion)
	}
	store, err := expandcontract.Open(ctx, db, expandcontract.WithTablePrefix(prefix),
		expandcontract.WithoutSchemaChanges(), expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	return store, nil
}

// migration returns the handle of the migration name and its state, or a
// not-found error naming it.
func (c *call) migration(name string) (*expandcontract.Migration, expandcontract.State, error) {
	if err := c.open(); err != nil {
		return nil, expandcontract.State{}, err
	}
	m, err := c.store.Migration(name)
	if err != nil {
		return nil, expandcontract.State{}, err
	}
	st, err := m.State(c.ctx)
	if errors.Is(err, expandcontract.ErrNotFound) {
		return nil, st, &notFoundError{msg: fmt.Sprintf("no migration %q in %smigrations", name, c.conn.prefix)}
	}
	return m, st, err
}
