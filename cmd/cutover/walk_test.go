package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// walkRows is the number of rows the walk's table holds.
const walkRows = 200

// createUsers creates the table users, whose email the walk copies to
// email_new, with walkRows rows.
func createUsers(t *testing.T, db *testdb.DB) {
	t.Helper()
	d := db.Dialect
	_, err := db.ExecContext(t.Context(), `CREATE TABLE users (id `+d.TypeBigInt()+` PRIMARY KEY,
		email `+d.TypeKeyText()+` NOT NULL, email_new `+d.TypeKeyText()+`)`)
	require.NoError(t, err)
	for i := 1; i <= walkRows; i++ {
		_, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO users (id, email) VALUES (?, ?)`),
			i, fmt.Sprintf("user%d@example.com", i))
		require.NoError(t, err)
	}
}

// logged is a slog handler that keeps the messages logged, so that the
// test can wait for the backfill runner to reach a state it logs.
type logged struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logged) WithGroup(string) slog.Handler            { return l }
func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

// has reports whether a message containing want was logged.
func (l *logged) has(want string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.msgs, func(m string) bool { return strings.Contains(m, want) })
}

// service is the service side of the walk: a backfill runner over the
// users table, in this process, whose batches wait for the test's word.
type service struct {
	m       *expandcontract.Migration
	gate    chan struct{} // each batch takes one token; closed, it lets every batch go
	mu      sync.Mutex
	batches []batchReport // the batches committed, in order
	done    chan error
}

// batchReport is what the runner reported after a batch.
type batchReport struct {
	rows      int64   // rows the batch copied
	rateLimit float64 // the rate limit the runner applies from then on
	batchSize int     // the batch size it applies from then on
}

// startBackfill starts the runner as the service would.
func startBackfill(t *testing.T, db *testdb.DB, m *expandcontract.Migration) *service {
	t.Helper()
	s := &service{m: m, gate: make(chan struct{}), done: make(chan error, 1)}
	copyRange := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		q, args := `UPDATE users SET email_new = email WHERE id <= ?`, []any{r.To}
		if r.From != nil {
			q, args = q+` AND id > ?`, append(args, r.From)
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
	var last int64
	runner, err := backfill.New(m, backfill.Keyset{Table: "users", Column: "id"}, copyRange,
		backfill.WithBatchSize(10), backfill.WithPollInterval(20*time.Millisecond), backfill.WithOwner("svc-1"),
		// The batches wait here, outside any transaction, so that the
		// command's writes never wait for a batch held open.
		backfill.WithThrottle(func(ctx context.Context) (time.Duration, error) {
			select {
			case <-s.gate:
				return 0, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}),
		backfill.WithProgress(func(p backfill.Progress) {
			s.mu.Lock()
			if !p.Done {
				s.batches = append(s.batches, batchReport{rows: p.Rows - last, rateLimit: p.RateLimit, batchSize: p.BatchSize})
				last = p.Rows
			}
			s.mu.Unlock()
		}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// step lets n batches go.
func (s *service) step(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case s.gate <- struct{}{}:
		case err := <-s.done:
			s.done <- err
			t.Fatalf("the backfill ended early: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("waited 30s for the backfill to ask for a batch")
		}
	}
}

// finish lets every batch go and waits for the run to end.
func (s *service) finish(t *testing.T) {
	t.Helper()
	close(s.gate)
	select {
	case err := <-s.done:
		s.done <- err
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("waited 60s for the backfill to finish")
	}
}

// reports returns the batches reported so far.
func (s *service) reports() []batchReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.batches)
}

func (s *service) rows(t *testing.T) int64 {
	t.Helper()
	st, err := s.m.State(t.Context())
	require.NoError(t, err)
	return st.Backfill.Rows
}

// TestWalk walks a whole migration from the command alone, on each
// database, with a backfill runner and a repairer in this process as the
// service would run them, checking the metadata after each step.
func TestWalk(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUsers(t, db)
		logs := &logged{}
		store := serviceStore(t, db, logs)
		m, err := store.Migration("users-email")
		require.NoError(t, err)
		_, err = m.Ensure(ctx, "svc-1")
		require.NoError(t, err)
		require.NoError(t, m.ReportStage(ctx, "api-1", cutover.Off))

		var st statusJSON
		okJSON(t, db, &st, "status", "users-email")
		assert.Equal(t, "expand", st.Phase)
		assert.Equal(t, []string{"off"}, st.Stages)
		assert.Equal(t, map[string]int{"off": 1}, st.ByStage)

		// Expand to dual writes, then to the backfill.
		var mv struct {
			From, To string
			Version  int64
		}
		okJSON(t, db, &mv, "move", "users-email", "dualwrite", "--actor", "alice", "--reason", "start dual writes")
		assert.Equal(t, "expand", mv.From)
		assert.Equal(t, "dualwrite", mv.To)
		requirePhase(t, m, expandcontract.DualWrite)
		r := ok(t, db, "move", "users-email", "backfill", "--actor", "alice", "--reason", "copy the old rows")
		assert.Contains(t, r.stdout, "users-email: moved from dualwrite to backfill")
		requirePhase(t, m, expandcontract.Backfill)

		// The backfill runs in the service; the command pauses it.
		svc := startBackfill(t, db, m)
		svc.step(t, 2)
		waitFor(t, "two batches committed", func() bool { return svc.rows(t) == 20 })
		r = ok(t, db, "backfill", "pause", "users-email", "--actor", "bob", "--reason", "load peak")
		assert.Contains(t, r.stdout, "users-email: pause asked for")
		svc.step(t, 1) // the next batch sees the pause instead of committing
		waitFor(t, "the runner to log its pause", func() bool { return logs.has("cutover: backfill paused") })
		okJSON(t, db, &st, "status", "users-email")
		assert.True(t, st.Backfill.Paused)
		assert.Equal(t, int64(20), st.Backfill.Rows)
		assert.Equal(t, int64(walkRows), st.Backfill.Total)
		assert.Equal(t, "svc-1", st.Backfill.LeaseOwner)
		assert.Equal(t, int64(20), svc.rows(t), "a paused backfill committed a batch")

		// Settings changed while it is paused: both are checked before
		// either is made, and the runner applies them within one batch.
		before := takeSnapshot(t, m)
		r = runCLI(t, db, "backfill", "set", "users-email", "--rate", "100000", "--batch-size", "-5", "--actor", "bob", "--reason", "r")
		require.Equal(t, exitUsage, r.code, "%s", r)
		assert.Contains(t, r.stderr, "cutover: backfill set users-email: --batch-size -5 is not 0 (lift the size) or a size up to 1000000 keys")
		assert.Equal(t, before, takeSnapshot(t, m))
		var set struct {
			Backfill backfillJSON `json:"backfill"`
		}
		okJSON(t, db, &set, "backfill", "set", "users-email", "--rate", "100000", "--batch-size", "25",
			"--actor", "bob", "--reason", "faster off-peak")
		assert.Equal(t, 100000.0, set.Backfill.RateLimit)
		assert.Equal(t, 25, set.Backfill.BatchSize)
		seenBefore := len(svc.reports())

		// A watch started while paused ends by itself when the backfill is
		// done.
		watch, watchOut := startWatch(t, db)

		// Resumed, the backfill finishes with the new settings.
		r = ok(t, db, "backfill", "resume", "users-email", "--actor", "bob", "--reason", "peak over")
		assert.Contains(t, r.stdout, "users-email: resumed")
		svc.finish(t)
		st0, err := m.State(ctx)
		require.NoError(t, err)
		require.True(t, st0.Backfill.Done())
		assert.Equal(t, int64(walkRows), st0.Backfill.Rows)
		waitWatch(t, watch, watchOut)
		after := svc.reports()[seenBefore:]
		require.NotEmpty(t, after)
		for i, b := range after[1:] { // the first may still be of the old size
			assert.Equal(t, 100000.0, b.rateLimit, "batch %d after the change", i+1)
			assert.Equal(t, 25, b.batchSize, "batch %d after the change", i+1)
			if i+2 < len(after) {
				assert.Equal(t, int64(25), b.rows, "batch %d after the change", i+1)
			}
		}
		okJSON(t, db, &st, "status", "users-email")
		assert.Equal(t, 100000.0, st.Backfill.RateLimit)
		assert.Equal(t, 25, st.Backfill.BatchSize)

		// A row the backfill's copy missed: verify finds it and records it
		// for repair.
		_, err = db.ExecContext(ctx, `UPDATE users SET email_new = 'stale' WHERE id = 7`)
		require.NoError(t, err)
		verifyArgs := []string{"verify", "users-email", "--old-table", "users", "--key", "id",
			"--old-value", "email", "--new-value", "email_new", "--chunk-size", "50"}
		var res resultJSON
		okJSON(t, db, &res, append(verifyArgs, "--repair")...)
		assert.False(t, res.Clean)
		assert.Equal(t, int64(walkRows), res.Rows)
		assert.Equal(t, int64(1), res.Changed)
		assert.Equal(t, []string{"7"}, res.Keys)
		st0, err = m.State(ctx)
		require.NoError(t, err)
		assert.False(t, st0.Verification.Clean)
		assert.Equal(t, int64(1), st0.Verification.Differences)

		// Reads may not move on a verification that is not clean.
		before = takeSnapshot(t, m)
		r = runCLI(t, db, "move", "users-email", "switchreads", "--actor", "alice", "--reason", "try")
		require.Equal(t, exitRefused, r.code, "%s", r)
		assert.Contains(t, r.stderr, "cutover: move users-email: refused: ")
		assert.Contains(t, r.stderr, "the last verification found 1 differing keys")
		refused := takeSnapshot(t, m)
		assert.Equal(t, before.State, refused.State)
		assert.Equal(t, before.Events+1, refused.Events, "a refusal adds its record to the history, and nothing else")

		// The service's repairer fails on the key until it is stuck; the
		// command lists it and makes it due again, and the repairer, fixed,
		// repairs it.
		log, err := repair.NewLog(m)
		require.NoError(t, err)
		failing, err := repair.New(log, func(context.Context, cutover.Repair) error {
			return errors.New("new store read-only")
		}, repair.WithMaxAttempts(1))
		require.NoError(t, err)
		_, err = failing.RunOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, failing.Close())
		var list struct {
			Entries []entryJSON `json:"entries"`
		}
		okJSON(t, db, &list, "repairs", "list", "users-email", "--stuck")
		require.Len(t, list.Entries, 1)
		assert.Equal(t, "7", list.Entries[0].Key)
		assert.Equal(t, "new store read-only", list.Entries[0].LastError)
		assert.True(t, list.Entries[0].Stuck)
		okJSON(t, db, &st, "status", "users-email")
		assert.Equal(t, int64(1), st.Repairs.Pending)
		assert.Equal(t, int64(1), st.Repairs.Stuck)
		require.NotNil(t, st.Repairs.Oldest)
		require.NotEmpty(t, st.Repairs.History)
		assert.Equal(t, int64(1), st.Repairs.History[len(st.Repairs.History)-1].Pending)
		var retried struct{ Retried int64 }
		okJSON(t, db, &retried, "repairs", "retry", "users-email")
		assert.Equal(t, int64(1), retried.Retried)
		stuck, err := log.Stuck(ctx)
		require.NoError(t, err)
		assert.Zero(t, stuck)
		fixed, err := repair.New(log, func(ctx context.Context, r cutover.Repair) error {
			_, err := db.ExecContext(ctx, db.Rebind(`UPDATE users SET email_new = email WHERE id = ?`), r.Key)
			return err
		})
		require.NoError(t, err)
		stats, err := fixed.RunOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, fixed.Close())
		assert.Equal(t, 1, stats.Repaired)

		// Verified clean, reads move, and then the old store is contracted.
		okJSON(t, db, &res, verifyArgs...)
		assert.True(t, res.Clean)
		okJSON(t, db, &mv, "move", "users-email", "switchreads", "--actor", "alice", "--reason", "verified clean")
		assert.Equal(t, "switchreads", mv.To)
		requirePhase(t, m, expandcontract.SwitchReads)
		var contract struct {
			To       string
			Warnings []string
		}
		okJSON(t, db, &contract, "move", "users-email", "contract", "--actor", "alice", "--reason", "reads moved")
		assert.Equal(t, "contract", contract.To)
		require.Len(t, contract.Warnings, 1, "api-1 still reports off")
		assert.Contains(t, contract.Warnings[0], "api-1 (off)")
		requirePhase(t, m, expandcontract.Contract)

		// The history holds every step, with who asked and why.
		var hist struct {
			Events []eventJSON `json:"events"`
		}
		okJSON(t, db, &hist, "history", "users-email", "--limit", "0")
		var moves, controls []string
		for _, ev := range hist.Events {
			switch {
			case ev.Kind == "move":
				moves = append(moves, ev.To+" by "+ev.Actor+": "+ev.Reason)
			case ev.Kind == "backfill" && ev.Actor == "bob":
				controls = append(controls, ev.Detail+" ("+ev.Reason+")")
			}
		}
		assert.Equal(t, []string{"pause: paused false -> true (load peak)", "rate limit: none -> 100000 rows/s (faster off-peak)",
			"batch size: none -> 25 keys (faster off-peak)", "resume: paused true -> false (peak over)"}, controls)
		assert.Equal(t, []string{"dualwrite by alice: start dual writes", "backfill by alice: copy the old rows",
			"switchreads by alice: verified clean", "contract by alice: reads moved"}, moves)
		r = ok(t, db, "history", "users-email", "--limit", "3")
		assert.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 4, "a header and 3 events:\n%s", r.stdout)

		var insts struct {
			Instances []instanceJSON `json:"instances"`
		}
		okJSON(t, db, &insts, "instances", "users-email")
		require.Len(t, insts.Instances, 1)
		assert.Equal(t, "api-1", insts.Instances[0].ID)
		r = ok(t, db, "status", "users-email")
		assert.Contains(t, r.stdout, "contract (version 5), moved ")
		assert.Contains(t, r.stdout, " by alice: reads moved")
		assert.Contains(t, r.stdout, "done ")

		// Every migration, one line each.
		other, err := store.Migration("orders-split")
		require.NoError(t, err)
		_, err = other.Ensure(ctx, "svc-2")
		require.NoError(t, err)
		var all struct {
			Migrations []statusJSON `json:"migrations"`
		}
		okJSON(t, db, &all, "status")
		require.Len(t, all.Migrations, 2)
		assert.Equal(t, "orders-split", all.Migrations[0].Name)
		assert.Equal(t, "expand", all.Migrations[0].Phase)
		assert.Equal(t, "users-email", all.Migrations[1].Name)
		assert.Equal(t, "contract", all.Migrations[1].Phase)
		r = ok(t, db, "status")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 3, r.stdout)
		assert.Regexp(t, `^orders-split +expand +1 +- +- +0 \(0 stuck\) +none$`, lines[1])
		assert.Regexp(t, `^users-email +contract +5 +done +clean .* ago +0 \(0 stuck\) +1 off$`, lines[2])
	})
}

// requirePhase checks the migration's phase in the metadata.
func requirePhase(t *testing.T, m *expandcontract.Migration, want expandcontract.Phase) {
	t.Helper()
	st, err := m.State(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, st.Phase)
}

// lockedBuffer is a buffer that a child process writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWatch starts status --watch on the walk's migration, and waits for
// its first line, which shows the backfill paused.
func startWatch(t *testing.T, db *testdb.DB) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "status", "users-email", "--watch", "--interval", "50ms")
	cmd.Env = cliEnv(db)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // waitWatch did not wait for it
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitFor(t, "the first line of status --watch", func() bool { return strings.Contains(out.String(), "\n") })
	assert.Contains(t, out.String(), "paused")
	return cmd, out
}

// waitWatch waits for the watch to end by itself and checks what it
// printed last.
func waitWatch(t *testing.T, cmd *exec.Cmd, out *lockedBuffer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "status --watch:\n%s", out)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("status --watch did not end within 30s of the backfill's end:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Regexp(t, `^users-email: done .*, 200 rows$`, lines[len(lines)-1])
}
