package testdb_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain runs the tests, lets testdb stop the servers, and then checks
// that every server process this binary started, and every process in its
// process group (PostgreSQL's backends), is gone.
func TestMain(m *testing.M) {
	code := testdb.Run(m)
	for _, s := range testdb.Servers() {
		if s.PID == 0 {
			continue
		}
		if testdb.GroupAlive(s.PID) {
			fmt.Fprintf(os.Stderr, "testdb_test: %s server (pid %d) or one of its processes still running after testdb.Run\n", s.Name, s.PID)
			code = 1
		}
	}
	os.Exit(code)
}

// databaseName returns the name of the database db is connected to.
func databaseName(t *testing.T, db *testdb.DB) string {
	t.Helper()
	q := map[string]string{
		"sqlite":   "SELECT file FROM pragma_database_list WHERE name = 'main'",
		"postgres": "SELECT current_database()",
		"mysql":    "SELECT DATABASE()",
	}[db.Name]
	var name string
	if err := db.QueryRowxContext(context.Background(), q).Scan(&name); err != nil {
		t.Fatalf("%s: database name: %v", db.Name, err)
	}
	return name
}

// databaseExists reports whether a database called name exists on the
// server of db.
func databaseExists(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	var q string
	switch db.Name {
	case "postgres":
		q = "SELECT COUNT(*) FROM pg_database WHERE datname = ?"
	case "mysql":
		q = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?"
	case "sqlite":
		_, err := os.Stat(name)
		return err == nil
	}
	var n int
	if err := db.QueryRowxContext(context.Background(), db.Rebind(q), name).Scan(&n); err != nil {
		t.Fatalf("%s: look for database %s: %v", db.Name, name, err)
	}
	return n > 0
}

func TestEachCreateInsertSelect(t *testing.T) {
	var ran []string
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ran = append(ran, t.Name())
		ctx := context.Background()
		if db.Name != db.Dialect.Name() || db.Name != db.DriverName() && !(db.Name == "postgres" && db.DriverName() == "pgx") {
			t.Errorf("Name %q, Dialect %q, driver %q", db.Name, db.Dialect.Name(), db.DriverName())
		}
		if db.DSN == "" {
			t.Error("empty DSN")
		}
		_, err := db.ExecContext(ctx, "CREATE TABLE notes (id "+db.Dialect.TypeKeyText()+" PRIMARY KEY, body "+db.Dialect.TypeText()+" NOT NULL)")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"b", "a", "B"} {
			if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO notes (id, body) VALUES (?, ?)"), id, "note "+id+" ✓"); err != nil {
				t.Fatal(err)
			}
		}
		var got []struct {
			ID   string `db:"id"`
			Body string `db:"body"`
		}
		if err := db.SelectContext(ctx, &got, "SELECT id, body FROM notes ORDER BY id"); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].ID != "B" || got[1].ID != "a" || got[2].ID != "b" || got[2].Body != "note b ✓" {
			t.Errorf("rows: %+v", got)
		}
	})
	want := []string{t.Name() + "/sqlite", t.Name() + "/postgres", t.Name() + "/mysql"}
	if v := os.Getenv(testdb.EnvDatabases); v != "" {
		want = slices.DeleteFunc(want, func(n string) bool { return !strings.Contains(v, n[strings.LastIndexByte(n, '/')+1:]) })
	}
	if !slices.Equal(ran, want) {
		t.Errorf("Each ran %q, want %q", ran, want)
	}
}

func TestTwoTestsGetDifferentDatabases(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := testdb.Open(t, name), testdb.Open(t, name)
			if a.DSN == b.DSN {
				t.Fatalf("both databases have DSN %q", a.DSN)
			}
			if na, nb := databaseName(t, a), databaseName(t, b); na == nb {
				t.Fatalf("both connected to database %q", na)
			}
			if _, err := a.ExecContext(ctx, "CREATE TABLE only_in_a (x INTEGER)"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ExecContext(ctx, "SELECT x FROM only_in_a"); err == nil {
				t.Fatal("table created in one database is visible in the other")
			}
			if _, err := b.ExecContext(ctx, "CREATE TABLE only_in_a (x INTEGER)"); err != nil {
				t.Fatalf("same table name in the second database: %v", err)
			}
		})
	}
}

// TestDroppedAtCleanup checks that a database is gone after its test ends,
// even when the test left a transaction open that holds locks in it.
func TestDroppedAtCleanup(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			var dbName string
			t.Run("leaky", func(t *testing.T) {
				db := testdb.Open(t, name)
				dbName = databaseName(t, db)
				ctx := context.Background()
				if _, err := db.ExecContext(ctx, "CREATE TABLE locked (x INTEGER)"); err != nil {
					t.Fatal(err)
				}
				tx, err := db.BeginTxx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO locked (x) VALUES (1)"); err != nil {
					t.Fatal(err)
				}
				// tx is neither committed nor rolled back.
			})
			other := testdb.Open(t, name)
			if databaseExists(t, other, dbName) {
				t.Errorf("database %s still exists after its test ended", dbName)
			}
		})
	}
}

func TestParallelOpens(t *testing.T) {
	const n = 4
	for _, name := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[string]bool{}
			for i := range n {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					t.Parallel()
					db := testdb.Open(t, name)
					dbName := databaseName(t, db)
					mu.Lock()
					defer mu.Unlock()
					if seen[dbName] {
						t.Errorf("database %s handed out twice", dbName)
					}
					seen[dbName] = true
				})
			}
		})
	}
}

// recorder is a testing.TB that records a fatal failure instead of
// failing the real test.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func TestOpenUnknownName(t *testing.T) {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testdb.Open(r, "oracle")
	}()
	<-done
	if !strings.Contains(r.failed, `testdb: unknown database "oracle"`) {
		t.Errorf("failure %q", r.failed)
	}
}

func TestServersReported(t *testing.T) {
	testdb.Postgres(t)
	testdb.MySQL(t)
	got := testdb.Servers()
	if len(got) != 2 || got[0].Name != "postgres" || got[1].Name != "mysql" {
		t.Fatalf("Servers() = %+v", got)
	}
	for _, s := range got {
		if s.DSN == "" {
			t.Errorf("%s: empty DSN", s.Name)
		}
		external := os.Getenv(map[string]string{"postgres": testdb.EnvPostgresDSN, "mysql": testdb.EnvMySQLDSN}[s.Name]) != ""
		if external != (s.PID == 0) {
			t.Errorf("%s: PID %d with the server from the environment: %v", s.Name, s.PID, external)
		}
		if s.PID != 0 {
			if err := syscall.Kill(s.PID, 0); err != nil {
				t.Errorf("%s: server pid %d not running: %v", s.Name, s.PID, err)
			}
		}
		t.Logf("%s: pid %d, ready after %v", s.Name, s.PID, s.Startup.Round(time.Millisecond))
	}
}
