package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// replicaTimeout bounds the wait for a new replica to stream from its
// primary; a variable so that tests can shorten it.
var replicaTimeout = 60 * time.Second

// Replicated is a PostgreSQL primary and a streaming replica of it,
// started for one test by [PostgresReplica].
type Replicated struct {
	// Primary is the primary's postgres database, with wal_level=replica.
	Primary *DB
	// Replica is the replica's postgres database, a hot standby that
	// streams from Primary and answers read-only queries.
	Replica *DB
	// PrimaryPort and ReplicaPort are the servers' ports on 127.0.0.1.
	PrimaryPort, ReplicaPort int
}

// PostgresReplica starts a PostgreSQL primary of its own, not the
// process's shared server, takes a base backup of it with pg_basebackup
// -R, starts a replica on the backup on another port of 127.0.0.1, and
// waits until the primary's pg_stat_replication shows the replica
// streaming. Both servers are stopped, and their directory removed, when
// the test ends, however it ends; a step that fails stops what was
// started and fails the test, with the end of the servers' logs. It takes
// a few seconds.
func PostgresReplica(tb testing.TB) *Replicated {
	tb.Helper()
	var (
		procs []*proc
		dir   string
	)
	tb.Cleanup(func() {
		for i := len(procs) - 1; i >= 0; i-- {
			if err := procs[i].stop(); err != nil {
				tb.Errorf("testdb: stop postgres: %v", err)
			}
		}
		if dir != "" {
			if err := os.RemoveAll(dir); err != nil {
				tb.Errorf("testdb: %v", err)
			}
		}
	})
	fail := func(step string, err error) {
		tb.Helper()
		tb.Fatalf("testdb: postgres replica: %s: %v", step, err)
	}
	bin, err := postgresBinDir()
	if err != nil {
		fail("find PostgreSQL", err)
	}
	cred, err := postgresCredential()
	if err != nil {
		fail("find PostgreSQL's user", err)
	}
	if dir, err = tempDir("postgres"); err != nil {
		fail("make a directory", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			fail("make a directory", err)
		}
	}

	primaryLog, primaryData := filepath.Join(dir, "primary.log"), filepath.Join(dir, "primary")
	err = runSetup(cred, primaryLog, filepath.Join(bin, "initdb"),
		"-D", primaryData, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if err != nil {
		fail("initdb", err)
	}
	primary, primaryDSN, primaryPort, err := startPostgres(cred, bin, dir, primaryData, primaryLog,
		"wal_level=replica", "max_wal_senders=5")
	if err != nil {
		fail("start the primary", err)
	}
	procs = append(procs, primary)

	replicaLog, replicaData := filepath.Join(dir, "replica.log"), filepath.Join(dir, "replica")
	err = runSetup(cred, replicaLog, filepath.Join(bin, "pg_basebackup"),
		"-R", "-D", replicaData, "-h", "127.0.0.1", "-p", fmt.Sprint(primaryPort), "-U", "postgres",
		"--no-sync", "-X", "stream", "-c", "fast")
	if err != nil {
		fail("pg_basebackup", err)
	}
	replica, replicaDSN, replicaPort, err := startPostgres(cred, bin, dir, replicaData, replicaLog, "hot_standby=on")
	if err != nil {
		fail("start the replica", err)
	}
	procs = append(procs, replica)

	r := &Replicated{Primary: open(tb, "pgx", primaryDSN), Replica: open(tb, "pgx", replicaDSN),
		PrimaryPort: primaryPort, ReplicaPort: replicaPort}
	if err := awaitStreaming(r); err != nil {
		fail("wait for the replica to stream", fmt.Errorf("%w\n%s\n%s", err, logTail(primaryLog), logTail(replicaLog)))
	}
	return r
}

// awaitStreaming waits, at most replicaTimeout, until the primary of r
// shows a walsender in state streaming.
func awaitStreaming(r *Replicated) error {
	ctx, cancel := context.WithTimeout(context.Background(), replicaTimeout)
	defer cancel()
	for {
		var n int
		err := r.Primary.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'`)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("no replica streaming after %v", replicaTimeout), err)
		case <-time.After(pollEvery):
		}
	}
}
