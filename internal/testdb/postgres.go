package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// postgresBinDir returns the directory holding initdb and postgres: that
// of the initdb on PATH (symbolic links resolved), or else the newest
// /usr/lib/postgresql/VERSION/bin, Debian's location.
func postgresBinDir() (string, error) {
	has := func(dir string) bool {
		for _, n := range []string{"initdb", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(r)) {
			return filepath.Dir(r), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("initdb and postgres not found on PATH or in /usr/lib/postgresql/*/bin; install PostgreSQL or set %s", EnvPostgresDSN)
}

// launchPostgres initialises a throwaway PostgreSQL cluster in a new temp
// directory and starts a server on it, listening on a free port of
// 127.0.0.1. As root it runs both as the postgres OS user.
func launchPostgres() (p *proc, dir, dsn string, err error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, "", "", err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, "", "", err
	}
	dir, err = tempDir("postgres")
	if err != nil {
		return nil, "", "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, "", "", err
		}
	}
	logPath := filepath.Join(dir, "postgres.log")
	data := filepath.Join(dir, "data")
	err = runSetup(cred, logPath, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if err != nil {
		return nil, "", "", err
	}
	p, dsn, _, err = startPostgres(cred, bin, dir, data, logPath)
	if err != nil {
		return nil, "", "", err
	}
	return p, dir, dsn, nil
}

// startPostgres starts a PostgreSQL server on the data directory data,
// its socket in dir and its log at logPath, listening on a free port of
// 127.0.0.1, and waits until it answers. It returns the process, its admin
// DSN and its port.
func startPostgres(cred *syscall.Credential, bin, dir, data, logPath string, settings ...string) (*proc, string, int, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, "", 0, err
		}
		args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=300",
			"-c", "shared_buffers=32MB",
			// Logical decoding, for the change data capture tests, with
			// slots and senders for many tests at once; a primary at
			// wal_level=logical serves streaming replicas too.
			"-c", "wal_level=logical",
			"-c", "max_replication_slots=100",
			"-c", "max_wal_senders=100",
		}
		for _, set := range settings {
			args = append(args, "-c", set)
		}
		p, err := startServer(cred, syscall.SIGINT, logPath, filepath.Join(bin, "postgres"), args...)
		if err != nil {
			return nil, "", 0, err
		}
		dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		retry, err := awaitReady(p, "pgx", dsn, attempt == 3)
		if err == nil {
			return p, dsn, port, nil
		}
		if !retry {
			return nil, "", 0, err
		}
	}
}

// postgresDSN returns the DSN of database name on the server of the admin
// DSN, which is a URL (postgres://...) or a keyword/value string.
func postgresDSN(admin, name string) (string, error) {
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvPostgresDSN, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return admin + " dbname=" + name, nil // a later keyword wins
}

// createPostgres creates database name on the PostgreSQL server.
func createPostgres(ctx context.Context, admin *sql.DB, name string) error {
	_, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`)
	return err
}

// dropPostgres drops database name, ending any sessions still connected
// to it. Replication slots of the database, which would keep WAL on the
// shared server and stop the drop, are dropped first, and reported as an
// error: a test must drop the slots it creates.
func dropPostgres(ctx context.Context, admin *sql.DB, name string) error {
	left, err := dropSlots(ctx, admin, name)
	if err != nil {
		return err
	}
	if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("replication slots left behind by the test, dropped: %s", strings.Join(left, ", "))
	}
	return nil
}

// dropSlots drops the replication slots of database name, ending the
// walsenders that use them, and returns their names.
func dropSlots(ctx context.Context, admin *sql.DB, name string) ([]string, error) {
	var left []string
	for attempt := 0; ; attempt++ {
		rows, err := admin.QueryContext(ctx, `SELECT slot_name, COALESCE(active_pid, 0) FROM pg_replication_slots WHERE database = $1`, name)
		if err != nil {
			return nil, err
		}
		var slots []string
		var pids []int64
		for rows.Next() {
			var slot string
			var pid int64
			if err := rows.Scan(&slot, &pid); err != nil {
				rows.Close()
				return nil, err
			}
			slots, pids = append(slots, slot), append(pids, pid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(slots) == 0 {
			return left, nil
		}
		for i, slot := range slots {
			if !slices.Contains(left, slot) {
				left = append(left, slot)
			}
			if pids[i] != 0 {
				_, _ = admin.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pids[i])
				continue
			}
			_, _ = admin.ExecContext(ctx, `SELECT pg_drop_replication_slot($1)`, slot)
		}
		if attempt == 200 {
			return left, fmt.Errorf("replication slots %s of database %s could not be dropped", strings.Join(slots, ", "), name)
		}
		time.Sleep(pollEvery)
	}
}
