package cdc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/cdc"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// Environment of a child process, set by the parent.
const (
	envRole = "CUTOVER_CDC_ROLE"    // "applier"
	envOld  = "CUTOVER_CDC_OLD_DSN" // the old database
	envNew  = "CUTOVER_CDC_NEW_DSN" // the new store's database, which holds the metadata too
	envHold = "CUTOVER_CDC_HOLD"    // "1": hold a half-applied transaction, uncommitted, to be killed
)

// msgPrefix starts every protocol line a child writes on its stdout.
const msgPrefix = "cdc-msg "

const (
	migration = "accounts by the log"
	keys      = 200
)

// TestChildProcess is the applier of a child process; without
// CUTOVER_CDC_ROLE it does nothing.
func TestChildProcess(t *testing.T) {
	if os.Getenv(envRole) != "applier" {
		return
	}
	say := func(event string) { fmt.Printf("%s%s\n", msgPrefix, event) }
	ctx := context.Background()
	old := sqlx.MustOpen("pgx", os.Getenv(envOld))
	defer old.Close()
	new := sqlx.MustOpen("pgx", os.Getenv(envNew))
	defer new.Close()
	store, err := expandcontract.Open(ctx, new, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	defer store.Close()
	rows, err := cdc.SQLApply(new, cdc.Table{Source: "accounts"}, cdc.Table{Source: "key_seq"})
	require.NoError(t, err)
	hold := os.Getenv(envHold) == "1"
	calls := 0
	apply := func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		if err := rows(ctx, tx, txn); err != nil {
			return err
		}
		for _, c := range txn.Changes {
			if c.Table != "public.key_seq" {
				continue
			}
			id, _ := c.Get("id")
			seq, _ := c.Get("seq")
			if _, err := tx.ExecContext(ctx, `INSERT INTO applied_log (id, seq, commit_lsn) VALUES ($1, $2, $3)`,
				id, seq, int64(txn.CommitLSN)); err != nil {
				return err
			}
		}
		if calls++; hold && calls == 30 {
			say("holding") // its changes written in tx, not committed
			time.Sleep(time.Hour)
		}
		return nil
	}
	a, err := cdc.New(suite.Migration(store, migration), cdc.Source{DB: old, DSN: os.Getenv(envOld), Tables: []string{"accounts", "key_seq"}},
		new, apply, cdc.WithMaxGroup(20), cdc.WithFlushInterval(5*time.Millisecond), cdc.WithPollInterval(50*time.Millisecond),
		cdc.WithStatusInterval(100*time.Millisecond), cdc.WithSlotWait(60*time.Second))
	require.NoError(t, err)
	say("running")
	if err := a.Run(ctx); err != nil {
		say("error " + err.Error())
		t.Fatal(err)
	}
	say("done")
}

// child is a child process as the parent sees it.
type child struct {
	name   string
	cmd    *exec.Cmd
	msgs   chan string
	exited chan struct{}
	mu     sync.Mutex
	output strings.Builder
}

func (c *child) log(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.output.WriteString(line + "\n")
}

func (c *child) out() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.output.String()
}

// startChild starts an applier child on the databases old and new; it is
// killed and waited for when the test ends.
func startChild(t *testing.T, name string, old, new *testdb.DB, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestChildProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envRole+"=applier", envOld+"="+old.DSN, envNew+"="+new.DSN)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = childAttr()
	c := &child{name: name, cmd: cmd, msgs: make(chan string, 16), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start child %s", name)
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m, ok := strings.CutPrefix(sc.Text(), msgPrefix); ok {
				c.msgs <- m
			} else {
				c.log(sc.Text())
			}
		}
	})
	readers.Go(func() {
		b, _ := io.ReadAll(stderr)
		c.log(string(b))
	})
	go func() {
		readers.Wait()
		close(c.msgs)
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("child %s still running 10s after SIGKILL", name)
		}
		if t.Failed() {
			t.Logf("child %s output:\n%s", name, c.out())
		}
	})
	return c
}

// expect waits, at most d, for the child's message want.
func (c *child) expect(t *testing.T, want string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				<-c.exited
				t.Fatalf("child %s exited (%v) before %q; output:\n%s", c.name, c.cmd.ProcessState, want, c.out())
			}
			if m == want {
				return
			}
			if strings.HasPrefix(m, "error") {
				t.Fatalf("child %s: %s", c.name, m)
			}
		case <-timeout:
			t.Fatalf("child %s: no %q within %v; output:\n%s", c.name, want, d, c.out())
		}
	}
}

// kill kills the child with SIGKILL and checks that SIGKILL ended it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Kill())
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("child %s still running 10s after SIGKILL", c.name)
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child %s ended with %v, not by SIGKILL; output:\n%s",
		c.name, c.cmd.ProcessState, c.out())
}

// waitFor polls cond every 20ms for at most bound, and fails the test
// naming what it waited for.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(t *testing.T, db *sqlx.DB, q string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.GetContext(context.Background(), &n, q))
	return n
}

// write runs n transactions on the old database, each on one key (one in
// ten on two), bumping the key's sequence number and inserting, updating
// or deleting its account.
func write(ctx context.Context, old *sqlx.DB, r *rand.Rand, n int) error {
	for range n {
		if ctx.Err() != nil {
			return nil
		}
		ids := []int64{r.Int64N(keys) + 1}
		if r.IntN(10) == 0 {
			other := r.Int64N(keys) + 1
			if other != ids[0] {
				ids = append(ids, other)
				if other < ids[0] {
					ids[0], ids[1] = other, ids[0]
				}
			}
		}
		tx, err := old.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		for _, id := range ids {
			var seq int64
			if err := tx.GetContext(ctx, &seq, `UPDATE key_seq SET seq = seq + 1 WHERE id = $1 RETURNING seq`, id); err != nil {
				_ = tx.Rollback()
				return err
			}
			var q string
			switch r.IntN(3) {
			case 0:
				q = `INSERT INTO accounts VALUES ($1, $2, 'i') ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, note = 'r'`
			case 1:
				q = `UPDATE accounts SET balance = balance + $2, note = 'u' WHERE id = $1`
			default:
				q = `DELETE FROM accounts WHERE id = $1 AND $2::bigint > 0`
			}
			if _, err := tx.ExecContext(ctx, q, id, seq); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// TestKilledApplierResumes: see the package documentation.
func TestKilledApplierResumes(t *testing.T) {
	ctx := t.Context()
	old, new := testdb.Postgres(t), testdb.Postgres(t)
	for _, db := range []*testdb.DB{old, new} {
		db.MustExec(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL, note text)`)
		db.MustExec(`CREATE TABLE key_seq (id bigint PRIMARY KEY, seq bigint NOT NULL)`)
	}
	old.MustExec(`INSERT INTO key_seq SELECT g, 0 FROM generate_series(1, $1::bigint) AS g`, keys)
	new.MustExec(`CREATE TABLE applied_log (pos bigserial PRIMARY KEY, id bigint NOT NULL, seq bigint NOT NULL, commit_lsn bigint NOT NULL)`)
	store, err := expandcontract.Open(ctx, new.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	mig := suite.Migration(store, migration)
	_, err = mig.Ensure(ctx, "test")
	require.NoError(t, err)
	move := func(p expandcontract.Phase) {
		t.Helper()
		_, err := mig.Move(ctx, expandcontract.Move{To: p, Actor: "test", Reason: "walk"})
		require.NoError(t, err)
	}
	move(expandcontract.DualWrite)
	slot, err := cdc.SlotFor(old.DB, migration)
	require.NoError(t, err)
	t.Cleanup(func() {
		if ok, err := slot.Exists(context.Background()); err != nil || ok {
			t.Errorf("slot %s left behind (%v); dropping it", slot.Name(), err)
			_ = slot.Drop(context.Background())
		}
	})

	c := startChild(t, "applier-1", old, new)
	c.expect(t, "running", 60*time.Second)
	waitFor(t, 60*time.Second, "the slot", func() bool {
		ok, err := slot.Exists(ctx)
		return err == nil && ok
	})

	// The load: 4 writers of 1200 transactions each, bounded in time too.
	wctx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	var writers sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		writers.Go(func() { errs[i] = write(wctx, old.DB, rand.New(rand.NewPCG(uint64(i), 7)), 1200) })
	}

	const kills = 5
	last := int64(0)
	for k := 1; k <= kills; k++ {
		waitFor(t, 60*time.Second, fmt.Sprintf("progress of applier %d", k), func() bool {
			return count(t, new.DB, `SELECT count(*) FROM applied_log`) >= last+150
		})
		if k == 3 {
			// The next applier holds a transaction half applied: killed
			// there, its rows are rolled back by the server.
			c.kill(t)
			c = startChild(t, fmt.Sprintf("applier-%d", k+1), old, new, envHold+"=1")
			c.expect(t, "holding", 60*time.Second)
		}
		last = count(t, new.DB, `SELECT count(*) FROM applied_log`)
		c.kill(t)
		t.Logf("killed applier %d after %d sequence numbers applied", k, last)
		c = startChild(t, fmt.Sprintf("applier-%d", k+1), old, new)
		c.expect(t, "running", 60*time.Second)
	}
	writers.Wait()
	for i, err := range errs {
		require.NoError(t, err, "writer %d", i)
	}
	total := count(t, old.DB, `SELECT sum(seq) FROM key_seq`)
	require.GreaterOrEqual(t, total, int64(4*1200), "each transaction bumps one or two keys")
	waitFor(t, 2*time.Minute, fmt.Sprintf("all %d sequence numbers applied", total), func() bool {
		return count(t, new.DB, `SELECT count(*) FROM applied_log`) == total
	})

	// Exactly once, in commit order.
	var log []struct {
		ID  int64 `db:"id"`
		Seq int64 `db:"seq"`
		LSN int64 `db:"commit_lsn"`
	}
	require.NoError(t, new.SelectContext(ctx, &log, `SELECT id, seq, commit_lsn FROM applied_log ORDER BY pos`))
	next := map[int64]int64{}
	var lsn int64
	for i, e := range log {
		require.Equalf(t, next[e.ID]+1, e.Seq, "log entry %d: key %d", i, e.ID)
		next[e.ID] = e.Seq
		require.GreaterOrEqualf(t, e.LSN, lsn, "log entry %d: its commit position goes back", i)
		lsn = e.LSN
	}
	var want []struct {
		ID  int64 `db:"id"`
		Seq int64 `db:"seq"`
	}
	require.NoError(t, old.SelectContext(ctx, &want, `SELECT id, seq FROM key_seq ORDER BY id`))
	for _, w := range want {
		require.Equalf(t, w.Seq, next[w.ID], "key %d", w.ID)
	}
	t.Logf("%d transactions' %d sequence numbers applied exactly once in commit order across %d kills", 4*1200, total, kills+1)

	// The stores are equal by the library's verification.
	move(expandcontract.Backfill)
	require.NoError(t, backfill.MarkDone(ctx, mig, "test", "the log carried every row: the old table was empty when the slot was made"))
	for _, tc := range []struct{ table, value string }{
		{"accounts", "balance::text || ':' || COALESCE(note, '')"},
		{"key_seq", "seq::text"},
	} {
		res, err := suite.Verify(ctx, mig,
			&verify.SQLRows{DB: old.DB, Table: tc.table, Key: "id", Value: tc.value},
			&verify.SQLRows{DB: new.DB, Table: tc.table, Key: "id", Value: tc.value})
		require.NoError(t, err)
		assert.True(t, res.Clean(), "%s: %d differences, keys %v", tc.table, res.Differences, res.Keys)
		assert.Equal(t, count(t, old.DB, `SELECT count(*) FROM `+tc.table), res.Rows, tc.table)
	}

	// The migration ends: the running applier drops its slot and stops.
	move(expandcontract.SwitchReads)
	move(expandcontract.Contract)
	c.expect(t, "done", 60*time.Second)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the last applier did not exit within 30s of dropping its slot")
	}
	require.True(t, c.cmd.ProcessState.Success(), "the last applier: %v", c.cmd.ProcessState)
	assert.Zero(t, count(t, old.DB, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`), "slots left")
	assert.Zero(t, count(t, old.DB, `SELECT count(*) FROM pg_publication`), "publications left")
}
