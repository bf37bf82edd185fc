package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestBadInput checks that bad input gets a clear message and the
// documented exit status, and changes nothing in the metadata, on each
// database.
func TestBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		store := serviceStore(t, db, nil)
		m, err := store.Migration("users-email")
		require.NoError(t, err)
		_, err = m.Ensure(t.Context(), "svc-1")
		require.NoError(t, err)
		before := takeSnapshot(t, m)

		for _, tc := range []struct {
			name   string
			args   []string
			code   int
			stderr string
		}{
			{"unknown migration", []string{"status", "nope"}, exitNotFound,
				`cutover: status nope: not found: no migration "nope" in cutover_migrations`},
			{"move of an unknown migration", []string{"move", "nope", "dualwrite", "--actor", "a", "--reason", "r"}, exitNotFound,
				`cutover: move nope: not found: no migration "nope"`},
			{"pause of an unknown migration", []string{"backfill", "pause", "nope", "--actor", "a", "--reason", "r"}, exitNotFound,
				`cutover: backfill pause nope: not found: no migration "nope"`},
			{"repairs of an unknown migration", []string{"repairs", "list", "nope"}, exitNotFound,
				`cutover: repairs list nope: not found: no migration "nope"`},
			{"unknown phase", []string{"move", "users-email", "done", "--actor", "a", "--reason", "r"}, exitUsage,
				`cutover: move users-email: expandcontract: unknown phase "done" (want expand, dualwrite, backfill, switchreads or contract)`},
			{"move without an actor", []string{"move", "users-email", "dualwrite", "--reason", "r"}, exitUsage,
				"cutover: move users-email: missing --actor"},
			{"pause without a reason", []string{"backfill", "pause", "users-email", "--actor", "a"}, exitUsage,
				"cutover: backfill pause users-email: missing --reason"},
			{"backfill set without a setting", []string{"backfill", "set", "users-email", "--actor", "a", "--reason", "r"}, exitUsage,
				"cutover: backfill set users-email: give --rate, --batch-size or both"},
			{"backfill set with a bad rate", []string{"backfill", "set", "users-email", "--rate", "-1", "--actor", "a", "--reason", "r"},
				exitUsage, "cutover: backfill set users-email: --rate -1 is not 0 (lift the limit) or a rate up to 1e+09 rows per second"},
			{"verify without its sides", []string{"verify", "users-email", "--old-table", "users"}, exitUsage,
				"cutover: verify users-email: missing --key, --old-value, --new-value"},
			{"verify with an unknown key kind", []string{"verify", "users-email", "--old-table", "users", "--key", "id",
				"--old-value", "a", "--new-value", "b", "--kind", "uuid"}, exitUsage, `unknown key kind "uuid"`},
			{"verify with a config that is not there", []string{"verify", "users-email", "--config", "/nonexistent/verify.json"},
				exitUsage, "cutover: verify users-email: --config: open /nonexistent/verify.json"},
			{"unknown flag", []string{"status", "users-email", "--bogus"}, exitUsage,
				"cutover: status: flag provided but not defined: -bogus; run 'cutover status -h' for its usage"},
			{"bad flag value", []string{"history", "users-email", "--limit", "many"}, exitUsage,
				`cutover: history: invalid value "many" for flag -limit`},
			{"missing argument", []string{"move", "users-email"}, exitUsage, "cutover: move: missing PHASE"},
			{"extra argument", []string{"instances", "users-email", "more"}, exitUsage, `cutover: instances: unexpected argument "more"`},
			{"unknown command", []string{"frobnicate"}, exitUsage, `cutover: unknown command "frobnicate"; run 'cutover help' for the list`},
			{"unknown subcommand", []string{"backfill", "rewind", "users-email"}, exitUsage, `cutover: unknown command "backfill rewind"`},
			{"missing subcommand", []string{"repairs"}, exitUsage, "cutover: repairs: missing subcommand"},
			{"no command", nil, exitUsage, "usage: cutover COMMAND"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := runCLI(t, db, tc.args...)
				assert.Equal(t, tc.code, r.code, "%s", r)
				assert.Contains(t, r.stderr, tc.stderr)
				assert.Empty(t, r.stdout)
			})
		}

		// An illegal move is refused and recorded, and changes nothing else.
		r := runCLI(t, db, "move", "users-email", "switchreads", "--actor", "a", "--reason", "skip ahead")
		assert.Equal(t, exitRefused, r.code, "%s", r)
		assert.Contains(t, r.stderr, `cutover: move users-email: refused: expandcontract: illegal phase move: "users-email" from expand to switchreads: phases move one step at a time`)
		after := takeSnapshot(t, m)
		assert.Equal(t, before.State, after.State)
		require.Equal(t, before.Events+1, after.Events)
		events, err := m.Events(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "refuse", events[len(events)-1].Kind)

		// Everything else above changed nothing at all.
		before = after
		for _, args := range [][]string{
			{"move", "users-email", "dualwrite", "--reason", "r"},
			{"status", "users-email", "--bogus"},
			{"backfill", "pause", "users-email", "--actor", "a"},
			{"backfill", "set", "users-email", "--rate", "5", "--batch-size", "0.5", "--actor", "a", "--reason", "r"},
		} {
			r := runCLI(t, db, args...)
			require.Equal(t, exitUsage, r.code, "%s", r)
		}
		assert.Equal(t, before, takeSnapshot(t, m))
	})
}

// TestBadDatabase checks the errors for a database that cannot be used:
// a DSN that does not parse, a server that does not answer, a file that is
// not there, tables that are not there. None creates anything.
func TestBadDatabase(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.db")
	for _, tc := range []struct {
		name        string
		driver, dsn string
		code        int
		stderr      string
	}{
		{name: "no driver", dsn: "x", code: exitUsage, stderr: "cutover: status users-email: no database driver: give --driver or set CUTOVER_DRIVER"},
		{name: "unknown driver", driver: "oracle", dsn: "x", code: exitUsage, stderr: `unknown database driver "oracle" (want sqlite, sqlite3, pgx, postgres or mysql)`},
		{name: "no DSN", driver: "pgx", code: exitUsage, stderr: "cutover: status users-email: no database: give --dsn or set CUTOVER_DSN"},
		{name: "bad MySQL DSN", driver: "mysql", dsn: "root@127.0.0.1:3306", code: exitUsage, stderr: "cutover: status users-email: database: bad MySQL DSN: invalid DSN"},
		{name: "bad PostgreSQL DSN", driver: "postgres", dsn: "postgres://a b@%%/x", code: exitUsage, stderr: "cutover: status users-email: database: bad PostgreSQL DSN:"},
		{name: "PostgreSQL not answering", driver: "pgx", dsn: "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5",
			code: exitFailed, stderr: "cutover: status users-email: database: connect:"},
		{name: "MySQL not answering", driver: "mysql", dsn: "root@tcp(127.0.0.1:1)/x?timeout=5s",
			code: exitFailed, stderr: "cutover: status users-email: database: connect:"},
		{name: "SQLite file not there", driver: "sqlite3", dsn: "file:" + missing + "?_pragma=journal_mode(WAL)",
			code: exitFailed, stderr: `cutover: status users-email: database: SQLite database file "` + missing + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"status", "users-email"}
			if tc.driver != "" {
				args = append(args, "--driver", tc.driver)
			}
			if tc.dsn != "" {
				args = append(args, "--dsn", tc.dsn)
			}
			r := runCLI(t, nil, args...)
			assert.Equal(t, tc.code, r.code, "%s", r)
			assert.Contains(t, r.stderr, tc.stderr)
			assert.Empty(t, r.stdout)
		})
	}
	_, err := os.Stat(missing)
	assert.ErrorIs(t, err, os.ErrNotExist, "the command created the SQLite file")

	// A database without the metadata tables: not found, and still
	// without them.
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		r := runCLI(t, db, "status", "users-email")
		assert.Equal(t, exitNotFound, r.code, "%s", r)
		assert.Contains(t, r.stderr, "cutover: status users-email: not found: no metadata tables cutover_* in the "+db.Name+" database (is --dsn or --prefix wrong?)")
		_, err := db.ExecContext(t.Context(), `SELECT version FROM cutover_schema`)
		assert.Error(t, err, "the command created the metadata tables")

		// The tables under another prefix are not these.
		_, err = expandcontract.Open(t.Context(), db.DB, expandcontract.WithTablePrefix("app_"))
		require.NoError(t, err)
		r = runCLI(t, db, "status", "users-email")
		assert.Equal(t, exitNotFound, r.code, "%s", r)
		r = runCLI(t, db, "status", "users-email", "--prefix", "app_")
		assert.Equal(t, exitNotFound, r.code, "%s", r)
		assert.Contains(t, r.stderr, `no migration "users-email" in app_migrations`)
		r = runCLI(t, db, "status", "users-email", "--prefix", "app-")
		assert.Equal(t, exitUsage, r.code, "%s", r)
		assert.Contains(t, r.stderr, `table prefix "app-"`)

		// Tables of another schema version are neither used nor upgraded.
		for _, tc := range []struct {
			version int64
			says    string
		}{
			{expandcontract.SchemaVersion - 1, "older than the"},
			{expandcontract.SchemaVersion + 1, "newer than the"},
		} {
			_, err = db.ExecContext(t.Context(), db.Rebind(`UPDATE app_schema SET version = ?`), tc.version)
			require.NoError(t, err)
			r = runCLI(t, db, "status", "users-email", "--prefix", "app_")
			assert.Equal(t, exitFailed, r.code, "%s", r)
			assert.Contains(t, r.stderr, fmt.Sprintf("the metadata tables app_* are at schema version %d, %s %d this command knows",
				tc.version, tc.says, expandcontract.SchemaVersion))
			var v int64
			require.NoError(t, db.GetContext(t.Context(), &v, `SELECT version FROM app_schema`))
			assert.Equal(t, tc.version, v)
		}
	})
}

// TestHelp checks that help and -h print usage on stdout with status 0.
func TestHelp(t *testing.T) {
	r := ok(t, nil, "help")
	assert.Contains(t, r.stdout, "usage: cutover COMMAND")
	for _, c := range commands {
		assert.Contains(t, r.stdout, "  "+c.name+" ")
		args := append(strings.Fields(c.name), "-h")
		r := ok(t, nil, args...)
		assert.Contains(t, r.stdout, "usage: cutover "+c.name+" "+c.args)
		assert.Contains(t, r.stdout, "--json")
		assert.Equal(t, r.stdout, ok(t, nil, append([]string{"help"}, strings.Fields(c.name)...)...).stdout)
	}
	r = runCLI(t, nil, "help", "frobnicate")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `cutover: help: unknown command "frobnicate"`)
}
