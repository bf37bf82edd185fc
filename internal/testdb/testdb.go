package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Environment variables read by this package.
const (
	// EnvPostgresDSN names a PostgreSQL server to use instead of starting
	// one: an administrative DSN, as a postgres:// URL or a keyword/value
	// string, whose user may create and drop databases.
	EnvPostgresDSN = "CUTOVER_POSTGRES_DSN"
	// EnvMySQLDSN names a MySQL or MariaDB server to use instead of
	// starting one: an administrative DSN in the go-sql-driver/mysql
	// format, whose user may create and drop databases and end sessions.
	EnvMySQLDSN = "CUTOVER_MYSQL_DSN"
	// EnvDatabases restricts, for local development only, the databases
	// [Each] runs on: a comma-separated list of "sqlite", "postgres" and
	// "mysql". Unset or empty means all three; CI never sets it.
	EnvDatabases = "CUTOVER_TEST_DATABASES"
)

// names lists the database names that Open accepts and Each runs on, in
// the order Each runs them.
var names = []string{sqldialect.SQLite, sqldialect.Postgres, sqldialect.MySQL}

// opTimeout bounds creating, opening and dropping one database.
const opTimeout = 30 * time.Second

// DB is a throwaway database for one test, open through sqlx. Its
// connection pool is closed, and the database dropped, when the test that
// opened it ends.
type DB struct {
	// DB is the connection pool, opened with the database/sql driver
	// "sqlite", "pgx" or "mysql".
	*sqlx.DB
	// Dialect is the SQL dialect of the database.
	Dialect sqldialect.Dialect
	// DSN is the data source name that DB was opened with, for opening
	// more connection pools to the same database.
	DSN string
	// Name is "sqlite", "postgres" or "mysql", the same as Dialect.Name().
	Name string
}

// SQLite returns a new SQLite database in a file in tb.TempDir(), opened
// with modernc.org/sqlite the way a user would: in WAL mode, with a busy
// timeout of 10 s, foreign keys enforced and synchronous=NORMAL, and
// without _txlock=immediate, so that the tests see the transactions users
// get (the library takes the write lock first in its own; see package
// expandcontract). It is closed when the test ends.
func SQLite(tb testing.TB) *DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "test.db")
	dsn := path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)"
	return open(tb, "sqlite", dsn)
}

// Postgres returns a new, empty PostgreSQL database (CREATE DATABASE
// t_...) on the process's shared server, opened with the pgx driver. The
// database is dropped when the test ends, ending any sessions still
// connected to it. The test fails if no server can be started or reached.
func Postgres(tb testing.TB) *DB {
	tb.Helper()
	return onServer(tb, postgresServer, postgresDSN, createPostgres, dropPostgres)
}

// MySQL returns a new, empty database with character set utf8mb4 on the
// process's shared MariaDB (or MySQL) server, opened with the mysql driver
// with parseTime=true and one statement per query. The database is
// dropped when the test ends, after ending the sessions still using it.
// The test fails if no server can be started or reached.
func MySQL(tb testing.TB) *DB {
	tb.Helper()
	return onServer(tb, mysqlServer, mysqlDSN, createMySQL, dropMySQL)
}

// Open returns a new database of the named kind: "sqlite", "postgres" or
// "mysql", as [SQLite], [Postgres] and [MySQL] do. Any other name fails the
// test.
func Open(tb testing.TB, name string) *DB {
	tb.Helper()
	switch name {
	case sqldialect.SQLite:
		return SQLite(tb)
	case sqldialect.Postgres:
		return Postgres(tb)
	case sqldialect.MySQL:
		return MySQL(tb)
	}
	tb.Fatalf("testdb: unknown database %q (want one of %s)", name, strings.Join(names, ", "))
	return nil
}

// Each runs fn as the subtests "sqlite", "postgres" and "mysql" of t, each
// with a new database of that kind, one after the other (fn may call
// t.Parallel). [EnvDatabases] can restrict the list for local runs. The
// servers a run needs are started together when Each begins, so that one
// waits for the slowest start-up rather than the sum of them.
func Each(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	run, err := enabled()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range run {
		switch n {
		case sqldialect.Postgres:
			go func() { _ = postgresServer.ensure() }() // the subtest reports errors
		case sqldialect.MySQL:
			go func() { _ = mysqlServer.ensure() }()
		}
	}
	for _, n := range run {
		t.Run(n, func(t *testing.T) {
			fn(t, Open(t, n))
		})
	}
}

// enabled returns the database names EnvDatabases selects, in the order
// of names.
func enabled() ([]string, error) {
	v := strings.TrimSpace(os.Getenv(EnvDatabases))
	if v == "" {
		return names, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("testdb: %s=%q: unknown database %q (want a comma-separated list of %s)", EnvDatabases, v, n, strings.Join(names, ", "))
		}
		want[n] = true
	}
	var out []string
	for _, n := range names {
		if want[n] {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("testdb: %s=%q selects no database", EnvDatabases, v)
	}
	return out, nil
}

// IgnoreForkThread is the goleak option that ignores the goroutine that
// forks the servers: it lives as long as the process, by design (see
// start). A TestMain that checks for leaks itself, after [Run], passes it.
var IgnoreForkThread = goleak.IgnoreAnyFunction("github.com/cutover-go/cutover/internal/testdb.start.func1.1")

// Main runs the tests of m, stops the database servers the process
// started, and exits with the tests' exit code, or 1 if stopping failed or
// if a goroutine the tests started is still running once they passed (a
// leak: a connection pool never closed, a loop never stopped). Call it
// from TestMain:
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
func Main(m *testing.M) {
	code := Run(m)
	if code == 0 {
		if err := goleak.Find(IgnoreForkThread); err != nil {
			fmt.Fprintln(os.Stderr, "testdb: goroutines still running after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Run is [Main] without the exit: it runs the tests of m, stops the servers
// (SIGINT for PostgreSQL, a fast shutdown that ends open sessions, SIGTERM
// for MariaDB, then SIGKILL after 10 s), removes their temp directories and
// returns the exit code, 1 if the tests passed but stopping failed. It is
// for a TestMain that has more to do after the tests.
func Run(m *testing.M) int {
	code := m.Run()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.stop())
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// onServer creates a database on server s and opens it.
func onServer(tb testing.TB, s *server,
	dsnFor func(admin, name string) (string, error),
	create, drop func(ctx context.Context, admin *sql.DB, name string) error,
) *DB {
	tb.Helper()
	if err := s.ensure(); err != nil {
		tb.Fatal(err)
	}
	name := databaseName(tb)
	dsn, err := dsnFor(s.dsn, name)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := create(ctx, s.admin, name); err != nil {
		tb.Fatalf("testdb: create %s database %s: %v", s.name, name, err)
	}
	dropIt := func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := drop(ctx, s.admin, name); err != nil {
			tb.Errorf("testdb: drop %s database %s: %v", s.name, name, err)
		}
	}
	// Cleanups run last in, first out: the database is dropped after the
	// pool that open registers is closed.
	tb.Cleanup(dropIt)
	return open(tb, s.driver, dsn)
}

// open opens dsn with driver, checks the connection and closes the pool
// when the test ends.
func open(tb testing.TB, driver, dsn string) *DB {
	tb.Helper()
	d, err := sqldialect.ForDriver(driver)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		tb.Fatalf("testdb: open %s: %v", d.Name(), err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("testdb: connect to %s database: %v", d.Name(), err)
	}
	return &DB{DB: db, Dialect: d, DSN: dsn, Name: d.Name()}
}

// openAdmin opens the administrative connection pool of a server and
// checks that it answers.
func openAdmin(driver, dsn string) (*sql.DB, error) {
	if driver == "mysql" {
		var err error
		if dsn, err = mysqlAdminDSN(dsn); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// databaseName returns a new database name: "t_", up to 20 characters of
// the test's name (lower case letters and digits only) to tell whose it
// is, and 12 random hexadecimal digits.
func databaseName(tb testing.TB) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(tb.Name()) {
		if b.Len() >= 22 {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case r == '/' || r == '_':
			b.WriteByte('_')
		}
	}
	random := make([]byte, 6)
	rand.Read(random)
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(random))
	return b.String()
}
