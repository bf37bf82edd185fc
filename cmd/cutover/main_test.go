package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// bin is the cutover binary the tests run, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-cmd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "cutover")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := testdb.Run(m)
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(testdb.IgnoreForkThread); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines still running after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// cmdTimeout bounds one run of the binary.
const cmdTimeout = 60 * time.Second

// result is how one run of the binary ended.
type result struct {
	stdout, stderr string
	code           int
}

// String shows the run for a failure message.
func (r result) String() string {
	return fmt.Sprintf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs the binary with args, on db unless db is nil (through
// CUTOVER_DRIVER and CUTOVER_DSN), and returns how it ended.
func runCLI(t *testing.T, db *testdb.DB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cliEnv(db)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("cutover %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// cliEnv is the environment of the binary: this process's, without any
// CUTOVER_DRIVER or CUTOVER_DSN, with db's if db is not nil.
func cliEnv(db *testdb.DB) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envDriver+"=") && !strings.HasPrefix(kv, envDSN+"=") {
			env = append(env, kv)
		}
	}
	if db != nil {
		env = append(env, envDriver+"="+db.DriverName(), envDSN+"="+db.DSN)
	}
	return env
}

// ok runs the binary and fails the test unless it exits with status 0.
func ok(t *testing.T, db *testdb.DB, args ...string) result {
	t.Helper()
	r := runCLI(t, db, args...)
	require.Equal(t, exitOK, r.code, "cutover %s\n%s", strings.Join(args, " "), r)
	return r
}

// okJSON runs the binary with --json, which must succeed, and decodes what
// it printed into v.
func okJSON(t *testing.T, db *testdb.DB, v any, args ...string) {
	t.Helper()
	r := ok(t, db, append(args, "--json")...)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), v), "cutover %s --json printed\n%s", strings.Join(args, " "), r.stdout)
}

// serviceStore opens the metadata tables on db as a service would, logging
// to log (nil: nowhere).
func serviceStore(t *testing.T, db *testdb.DB, log slog.Handler) *expandcontract.Store {
	t.Helper()
	if log == nil {
		log = slog.DiscardHandler
	}
	s, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithLogger(slog.New(log)))
	require.NoError(t, err)
	return s
}

// snapshot is what the metadata holds of a migration, to check that a
// command changed nothing.
type snapshot struct {
	State  expandcontract.State
	Events int
}

func takeSnapshot(t *testing.T, m *expandcontract.Migration) snapshot {
	t.Helper()
	st, err := m.State(t.Context())
	require.NoError(t, err)
	ev, err := m.Events(t.Context())
	require.NoError(t, err)
	return snapshot{State: st, Events: len(ev)}
}

// waitFor polls cond every 10ms until it holds, failing the test after
// 30s with what it waited for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
