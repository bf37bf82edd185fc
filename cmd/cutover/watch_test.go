package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
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
