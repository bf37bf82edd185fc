package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// toBackfill creates the migration users-email on db and moves it to the
// backfill phase.
func toBackfill(t *testing.T, db *testdb.DB) *expandcontract.Migration {
	t.Helper()
	m, err := serviceStore(t, db, nil).Migration("users-email")
	require.NoError(t, err)
	_, err = m.Ensure(t.Context(), "svc-1")
	require.NoError(t, err)
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		_, err := m.Move(t.Context(), expandcontract.Move{To: p, Actor: "svc-1"})
		require.NoError(t, err)
	}
	return m
}

// TestWatchRedraws checks that status --watch on a terminal redraws its
// line in place, and ends the line when it stops.
func TestWatchRedraws(t *testing.T) {
	db := testdb.SQLite(t)
	m := toBackfill(t, db)
	require.NoError(t, backfill.MarkDone(t.Context(), m, "svc-1", ""))
	var out, errs bytes.Buffer
	e := &env{stdout: &out, stderr: &errs, terminal: true,
		getenv: getenv(map[string]string{envDriver: db.DriverName(), envDSN: db.DSN})}
	code := run(t.Context(), []string{"status", "users-email", "--watch", "--interval", "10ms"}, e)
	require.Equal(t, exitOK, code, errs.String())
	assert.Regexp(t, "^\r\033\\[Kusers-email: done .*, 0 rows\n$", out.String())

	// Not on a terminal, and in JSON, a line each time.
	out.Reset()
	e.terminal = false
	code = run(t.Context(), []string{"status", "users-email", "--watch", "--json"}, e)
	require.Equal(t, exitOK, code, errs.String())
	assert.Regexp(t, `^\{"migration":"users-email",.*"ended":"done"\}\n$`, out.String())
}

// TestWatchInterrupt checks that SIGINT ends status --watch, with status
// 0, while the backfill is paused.
func TestWatchInterrupt(t *testing.T) {
	db := testdb.SQLite(t)
	m := toBackfill(t, db)
	require.NoError(t, backfill.Pause(t.Context(), m, "svc-1", ""))
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "status", "users-email", "--watch", "--interval", "20ms")
	cmd.Env = cliEnv(db)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	waitFor(t, "two lines of status --watch", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "status --watch after SIGINT:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		assert.Equal(t, "users-email: not started  paused", line)
	}
}

// gatedRows is a RowSource whose second Checksum waits, once it closed
// entered, until the test closes release or the run's context ends.
type gatedRows struct {
	verify.RowSource
	n       atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (g *gatedRows) Checksum(ctx context.Context, r expandcontract.KeyRange, d verify.Digest) (verify.Checksum, error) {
	if g.n.Add(1) == 2 {
		close(g.entered)
		select {
		case <-g.release:
		case <-ctx.Done():
			return verify.Checksum{}, ctx.Err()
		}
	}
	return g.RowSource.Checksum(ctx, r, d)
}

// TestWatchFollowsAVerification holds a verification of a migration whose
// backfill is done after its first key range: status prints its line,
// status --watch its bar until it ends, and --json carries it.
func TestWatchFollowsAVerification(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := toBackfill(t, db)
		require.NoError(t, backfill.MarkDone(t.Context(), m, "svc-1", ""))
		_, err := db.ExecContext(t.Context(), `UPDATE cutover_migrations SET backfill_total = 30`)
		require.NoError(t, err)
		for _, table := range []string{"vold", "vnew"} {
			_, err := db.ExecContext(t.Context(), `CREATE TABLE `+table+` (id `+db.Dialect.TypeBigInt()+` PRIMARY KEY, v `+
				db.Dialect.TypeText()+`)`)
			require.NoError(t, err)
			for i := range 30 {
				_, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO `+table+` (id, v) VALUES (?, ?)`), i, fmt.Sprint("v", i))
				require.NoError(t, err)
			}
		}
		old := &gatedRows{RowSource: &verify.SQLRows{DB: db.DB, Table: "vold", Key: "id", Value: "v"},
			entered: make(chan struct{}), release: make(chan struct{})}
		v, err := verify.New(m, old, &verify.SQLRows{DB: db.DB, Table: "vnew", Key: "id", Value: "v"},
			verify.WithChunkSize(10), verify.WithConcurrency(1), verify.WithOwner("svc-2"),
			verify.WithProgressInterval(10*time.Millisecond))
		require.NoError(t, err)
		var runErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, runErr = v.Run(t.Context())
		}()
		t.Cleanup(func() {
			select {
			case <-old.release:
			default:
				close(old.release)
			}
			<-done
		})
		<-old.entered
		bar := `\[##########\.{20}\]  33%  10/30 rows`
		waitFor(t, "the first range's rows in the metadata", func() bool {
			return regexp.MustCompile(bar).MatchString(ok(t, db, "status", "users-email").stdout)
		})
		assert.Regexp(t, "(?m)^verifying +"+bar+".*, started .* by svc-2$", ok(t, db, "status", "users-email").stdout)
		var st struct {
			Verifying *struct {
				Owner string `json:"owner"`
				Rows  int64  `json:"rows"`
				Total int64  `json:"total"`
			} `json:"verifying"`
		}
		okJSON(t, db, &st, "status", "users-email")
		require.NotNil(t, st.Verifying)
		assert.Equal(t, "svc-2", st.Verifying.Owner)
		assert.Equal(t, [2]int64{10, 30}, [2]int64{st.Verifying.Rows, st.Verifying.Total})

		// The watch goes on while the verification runs, though the backfill is done.
		out := &lockedBuffer{}
		e := &env{stdout: out, stderr: out, getenv: getenv(map[string]string{envDriver: db.DriverName(), envDSN: db.DSN})}
		watched := make(chan int, 1)
		go func() {
			watched <- run(t.Context(), []string{"status", "users-email", "--watch", "--interval", "10ms"}, e)
		}()
		waitFor(t, "two lines of status --watch", func() bool { return strings.Count(out.String(), "\n") >= 2 })
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			assert.Regexp(t, "^users-email: done .*, 0 rows; verifying "+bar+".*, started .* by svc-2$", line)
		}
		close(old.release)
		<-done
		require.NoError(t, runErr)
		require.Equal(t, exitOK, <-watched, out.String())
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		assert.Regexp(t, "^users-email: done .*, 0 rows$", lines[len(lines)-1], "once the verification ended")

		// In JSON, the last line has no verification and ends the watch.
		var last struct {
			Verifying *json.RawMessage `json:"verifying"`
			Ended     string           `json:"ended"`
		}
		r := ok(t, db, "status", "users-email", "--watch", "--json")
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &last), r.stdout)
		assert.Nil(t, last.Verifying)
		assert.Equal(t, "done", last.Ended)
	})
}
