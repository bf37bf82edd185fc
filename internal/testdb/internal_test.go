package testdb

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    []string
		wantErr string
	}{
		{"", []string{"sqlite", "postgres", "mysql"}, ""},
		{"  ", []string{"sqlite", "postgres", "mysql"}, ""},
		{"sqlite", []string{"sqlite"}, ""},
		{"MySQL, sqlite", []string{"sqlite", "mysql"}, ""},
		{"postgres,postgres,", []string{"postgres"}, ""},
		{"sqlite,oracle", nil, `unknown database "oracle"`},
		{",", nil, "selects no database"},
	} {
		t.Setenv(EnvDatabases, tc.env)
		got, err := enabled()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "testdb: ") {
				t.Errorf("%q: error %v, want one containing %q", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
}

func TestPostgresDSN(t *testing.T) {
	for _, tc := range []struct{ admin, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/t_x?sslmode=disable"},
		{"postgresql://u:p@127.0.0.1/", "postgresql://u:p@127.0.0.1/t_x"},
		{"host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=t_x"},
	} {
		got, err := postgresDSN(tc.admin, "t_x")
		if err != nil || got != tc.want {
			t.Errorf("postgresDSN(%q) = %q, %v; want %q", tc.admin, got, err, tc.want)
		}
	}
}

func TestMySQLDSN(t *testing.T) {
	got, err := mysqlDSN("root@tcp(127.0.0.1:3306)/", "t_x")
	if want := "root@tcp(127.0.0.1:3306)/t_x?parseTime=true"; err != nil || got != want {
		t.Errorf("mysqlDSN = %q, %v; want %q", got, err, want)
	}
	got, err = mysqlDSN("root:pw@tcp(127.0.0.1:3306)/mysql?multiStatements=true&timeout=5s", "t_x")
	if want := "root:pw@tcp(127.0.0.1:3306)/t_x?parseTime=true&timeout=5s"; err != nil || got != want {
		t.Errorf("mysqlDSN = %q, %v; want %q", got, err, want)
	}
	if _, err := mysqlDSN("not a dsn", "t_x"); err == nil || !strings.Contains(err.Error(), EnvMySQLDSN) {
		t.Errorf("bad DSN: error %v", err)
	}
	admin, err := mysqlAdminDSN("root@tcp(127.0.0.1:3306)/")
	if want := "root@tcp(127.0.0.1:3306)/?lock_wait_timeout=10"; err != nil || admin != want {
		t.Errorf("mysqlAdminDSN = %q, %v; want %q", admin, err, want)
	}
}

func TestDatabaseName(t *testing.T) {
	name := databaseName(t)
	if !strings.HasPrefix(name, "t_testdatabasename_") || len(name) > 63 {
		t.Errorf("databaseName = %q", name)
	}
	if databaseName(t) == name {
		t.Error("two calls returned the same name")
	}
	t.Run("Weird/Name with spaces & ünïcode; DROP", func(t *testing.T) {
		name := databaseName(t)
		for _, r := range name {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_') {
				t.Fatalf("databaseName = %q", name)
			}
		}
	})
}

// TestOwnServers starts and stops a PostgreSQL and a MariaDB server of its
// own, even when the environment names servers for the other tests, so that
// starting servers is tested in every run.
func TestOwnServers(t *testing.T) {
	for _, s := range []*server{
		{name: "postgres", driver: "pgx", launch: launchPostgres, ready: make(chan struct{})},
		{name: "mysql", driver: "mysql", launch: launchMySQL, ready: make(chan struct{})},
	} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			// envVar is "": no variable names a server for s.
			if err := s.ensure(); err != nil {
				t.Fatal(err)
			}
			if s.proc == nil {
				t.Fatal("no process started")
			}
			pid, dir := s.proc.pid(), s.dir
			t.Logf("%s: pid %d ready after %v", s.name, pid, s.startup.Round(time.Millisecond))
			var version string
			if err := s.admin.QueryRow("SELECT version()").Scan(&version); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", s.name, version)
			t0 := time.Now()
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: stopped in %v", s.name, time.Since(t0).Round(time.Millisecond))
			if groupAlive(pid) {
				t.Errorf("process group %d still has processes", pid)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("temp dir %s not removed: %v", dir, err)
			}
			if err := s.ensure(); !errors.Is(err, errStopped) {
				t.Errorf("ensure after stop: %v", err)
			}
		})
	}
}

func TestTempDirRemovesLeftovers(t *testing.T) {
	// A directory of a process that no longer exists: the largest PID
	// Linux hands out is below 1<<22.
	stale := filepath.Join(os.TempDir(), "cutover-testdb-unit-p4194999-1")
	if err := os.MkdirAll(filepath.Join(stale, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(os.TempDir(), "cutover-testdb-unit-p"+strconv.Itoa(os.Getpid())+"-live")
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)
	dir, err := tempDir("unit")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover %s not removed: %v", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("directory of a live process removed: %v", err)
	}
	if !strings.HasPrefix(filepath.Base(dir), "cutover-testdb-unit-p"+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("tempDir = %s", dir)
	}
}

func TestServerExitsDuringStartup(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	p, err := startServer(nil, syscall.SIGTERM, logPath, "sh", "-c", "echo could not bind: address in use; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	exited, err := p.waitReady(func(context.Context) error { return errors.New("refused") })
	if !exited || err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "could not bind: address in use") {
		t.Errorf("waitReady = %v, %v; want an exit reported with the log's tail", exited, err)
	}
}

func TestServerNeverReady(t *testing.T) {
	defer func(d time.Duration) { readyTimeout = d }(readyTimeout)
	readyTimeout = 200 * time.Millisecond
	logPath := filepath.Join(t.TempDir(), "log")
	p, err := startServer(nil, syscall.SIGTERM, logPath, "sh", "-c", "echo starting; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	exited, err := p.waitReady(func(context.Context) error { return errors.New("refused") })
	if exited || err == nil || !strings.Contains(err.Error(), "not ready after 200ms: refused") || !strings.Contains(err.Error(), "starting") {
		t.Errorf("waitReady = %v, %v", exited, err)
	}
}

func TestStopKillsAServerThatIgnoresTheSignal(t *testing.T) {
	defer func(d time.Duration) { stopTimeout = d }(stopTimeout)
	stopTimeout = 300 * time.Millisecond
	logPath := filepath.Join(t.TempDir(), "log")
	// The shell ignores SIGTERM and so does its child, in the same group.
	p, err := startServer(nil, syscall.SIGTERM, logPath, "sh", "-c", `trap "" TERM; sleep 60 & wait; wait`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the trap be set
	err = p.stop()
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Errorf("stop = %v, want a report that it was killed", err)
	}
	if groupAlive(p.pid()) {
		t.Error("process group still alive")
	}
}

func TestUnreachableServerFromEnvironment(t *testing.T) {
	t.Setenv("CUTOVER_TEST_UNREACHABLE_DSN", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	s := &server{name: "postgres", envVar: "CUTOVER_TEST_UNREACHABLE_DSN", driver: "pgx", ready: make(chan struct{}),
		launch: func() (*proc, string, string, error) {
			t.Error("launched a server")
			return nil, "", "", errors.New("no")
		}}
	err := s.ensure()
	if err == nil || !strings.HasPrefix(err.Error(), "testdb: postgres server from CUTOVER_TEST_UNREACHABLE_DSN: ") {
		t.Errorf("ensure = %v", err)
	}
	if err2 := s.ensure(); err2 != err {
		t.Errorf("second ensure = %v, want the first error again", err2)
	}
	if err := s.stop(); err != nil {
		t.Error(err)
	}
}

func TestLaunchFailureIsReported(t *testing.T) {
	s := &server{name: "mysql", driver: "mysql", ready: make(chan struct{}),
		launch: func() (*proc, string, string, error) { return nil, "", "", errors.New("mariadbd not found") }}
	if err := s.ensure(); err == nil || err.Error() != "testdb: start mysql: mariadbd not found" {
		t.Errorf("ensure = %v", err)
	}
}
