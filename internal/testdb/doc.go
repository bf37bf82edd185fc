// Package testdb gives tests throwaway SQL databases, so that one test runs
// unchanged on SQLite, PostgreSQL and MySQL (MariaDB):
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
//
//	func TestSaveLoad(t *testing.T) {
//		testdb.Each(t, func(t *testing.T, db *testdb.DB) {
//			_, err := db.ExecContext(ctx, "CREATE TABLE users (id "+db.Dialect.TypeKeyText()+" PRIMARY KEY)")
//			...
//		})
//	}
//
// Every [DB] is a new, empty database that no other test sees, dropped
// (or deleted) when its test ends: [SQLite] makes a file in the test's temp
// directory, [Postgres] and [MySQL] create a database with a random name on
// a server shared by all tests of the process.
//
// # Servers
//
// If CUTOVER_POSTGRES_DSN or CUTOVER_MYSQL_DSN is set, it is the
// administrative DSN of a server to create the databases on, for example
//
//	CUTOVER_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	CUTOVER_MYSQL_DSN=root@tcp(127.0.0.1:3306)/
//
// Otherwise the first test that needs a server starts a throwaway one, used
// by the rest of the process's tests and stopped by [Main] (or [Run]) after
// they finish: PostgreSQL from the initdb and postgres programs on PATH or
// in /usr/lib/postgresql/VERSION/bin (run as the postgres OS user when the
// tests run as root, which PostgreSQL refuses), and MariaDB from mariadbd
// and mariadb-install-db. Each has a new data directory under the system's
// temp directory and a free port on 127.0.0.1, so the processes that
// go test ./... runs side by side do not collide, and settings that trade
// durability for speed. The servers are child processes that the kernel
// kills if the test binary dies without stopping them. Starting one takes
// about a second; scripts/dbs.sh starts one of each for a whole test run
// instead and prints the variables to set, and scripts/test.sh does so
// around go test.
//
// A server that cannot be started or reached fails the test that needed
// it, with the end of the server's log; tests never skip for want of a
// database.
//
// Because a server may be shared by every test process of a run, a test
// keeps to its own database: it must not change server-wide settings (SET
// GLOBAL, ALTER SYSTEM) or create server-wide objects such as roles under
// fixed names.
//
// # Choosing databases
//
// For local work only, CUTOVER_TEST_DATABASES, a comma-separated list of
// "sqlite", "postgres" and "mysql", restricts the databases [Each] runs on;
// it defaults to all three. CI never sets it. It does not affect [Open],
// [SQLite], [Postgres] or [MySQL], which always open what they are asked
// for.
package testdb
