package crashtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-go/cutover/internal/testdb"
)

// Environment of a child process. The parent sets them; a child inherits
// the rest of the parent's environment, CUTOVER_* included.
const (
	envRole      = "CUTOVER_CRASH_ROLE"       // "backfill", "mover" or "leaser"
	envDriver    = "CUTOVER_CRASH_DRIVER"     // database/sql driver name
	envDSN       = "CUTOVER_CRASH_DSN"        // the database the parent test created
	envOwner     = "CUTOVER_CRASH_OWNER"      // backfill owner, or actor of moves
	envBatch     = "CUTOVER_CRASH_BATCH"      // keys per batch
	envHoldAfter = "CUTOVER_CRASH_HOLD_AFTER" // batches to commit before holding
	envLease     = "CUTOVER_CRASH_LEASE"      // lease TTL, as time.ParseDuration reads it
	envKillAt    = "CUTOVER_CRASH_KILL_AT"    // where a backfill waits to be killed: "batch" or "checkpoint"
)

// msgPrefix starts every protocol line a child writes to its stdout; the
// testing package's own output on stdout ("PASS") has none.
const msgPrefix = "crashtest-msg "

// Events of the protocol.
const (
	evReady    = "ready"     // the child opened the store and waits for commands
	evMidBatch = "mid-batch" // a batch changed its rows and waits, uncommitted, to be killed
	evHolding  = "holding"   // the runner holds the lease, between batches, and waits to be killed
	evHeld     = "held"      // Run was refused: Owner holds the lease until Until
	evDone     = "done"      // Run returned nil
	evInTx     = "in-tx"     // the move's transaction began; the child waits for "proceed"
	evMoved    = "moved"     // the move won: the migration is at Version, Phase
	evConflict = "conflict"  // the move lost: *ConflictError with Expected, Actual, Phase
	evRefused  = "refused"   // the move was refused: *MoveError, in Error
	evError    = "error"     // anything else, in Error; the child then fails
)

// msg is one line of a child's protocol.
type msg struct {
	Event    string    `json:"event"`
	Owner    string    `json:"owner,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	Rows     int64     `json:"rows,omitempty"`
	Version  int64     `json:"version,omitempty"`
	Expected int64     `json:"expected,omitempty"`
	Actual   int64     `json:"actual,omitempty"`
	Phase    string    `json:"phase,omitempty"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at,omitzero"` // for holding and held: when the child held or tried
}

// String shows m as the child wrote it.
func (m msg) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// child is a child process as its parent sees it.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	msgs   chan msg      // protocol messages; closed at the end of stdout
	exited chan struct{} // closed once the process was waited for
	state  *os.ProcessState
	output tail // stderr, and stdout lines that are not messages
}

// childTimeout bounds a child's run, should it be forgotten.
const childTimeout = 2 * time.Minute

// startChild starts the test binary as a child process in role, on the
// database of db, with the extra environment variables env ("K=V"). The
// child is killed and waited for when the test ends.
func startChild(t *testing.T, db *testdb.DB, name, role string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find the test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^TestChildProcess$", "-test.count=1",
		"-test.timeout="+childTimeout.String())
	cmd.Env = append(os.Environ(), envRole+"="+role, envDriver+"="+db.DriverName(), envDSN+"="+db.DSN, envOwner+"="+name)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = childAttr()
	c := &child{name: name, cmd: cmd, msgs: make(chan msg, 256), exited: make(chan struct{})}
	cmd.Stderr = &c.output
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			body, ok := strings.CutPrefix(line, msgPrefix)
			if !ok {
				fmt.Fprintln(&c.output, line)
				continue
			}
			var m msg
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				m = msg{Event: evError, Error: fmt.Sprintf("undecodable message %q: %v", body, err)}
			}
			c.msgs <- m
		}
		close(c.msgs)
		_ = cmd.Wait() // after the last read of stdout, as os/exec wants
		c.state = cmd.ProcessState
		close(c.exited)
	}()
	t.Cleanup(func() {
		if !c.kill() {
			t.Errorf("child %s: still running 10s after SIGKILL; output:\n%s", name, c.output.String())
			return
		}
		if t.Failed() {
			t.Logf("child %s (%v) output:\n%s", name, c.state, c.output.String())
		}
	})
	return c
}

// kill sends SIGKILL unless the child exited, and waits for it, dropping
// the messages not yet read. It reports whether the child is gone.
func (c *child) kill() bool {
	select {
	case <-c.exited:
		return true
	default:
	}
	_ = c.cmd.Process.Kill() // fails only if it is gone already
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	msgs := c.msgs
	for {
		select {
		case _, ok := <-msgs:
			if !ok {
				msgs = nil
			}
		case <-c.exited:
			return true
		case <-timeout.C:
			return false
		}
	}
}

// killNow kills the child with SIGKILL, waits for it, and fails the test
// unless SIGKILL is what ended it. It returns the messages the child wrote
// but the test had not read.
func (c *child) killNow(t *testing.T) []msg {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("child %s exited (%v) before it was killed; output:\n%s", c.name, c.state, c.output.String())
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child %s: %v", c.name, err)
	}
	var rest []msg
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	msgs := c.msgs
	for msgs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				break
			}
			rest = append(rest, m)
		case <-timeout.C:
			t.Fatalf("child %s: still running 10s after SIGKILL", c.name)
		}
	}
	<-c.exited
	ws, ok := c.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child %s ended with %v, not by SIGKILL", c.name, c.state)
	}
	return rest
}

// waitExit waits for the child to exit by itself and fails the test unless
// it exited with status 0.
func (c *child) waitExit(t *testing.T, d time.Duration) {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	msgs := c.msgs
	for msgs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				break
			}
			t.Errorf("child %s: unexpected message %v", c.name, m)
		case <-timeout.C:
			t.Fatalf("child %s did not exit within %v; output:\n%s", c.name, d, c.output.String())
		}
	}
	<-c.exited
	if !c.state.Success() {
		t.Fatalf("child %s ended with %v; output:\n%s", c.name, c.state, c.output.String())
	}
}

// send writes a line of command to the child's stdin.
func (c *child) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("write to child %s: %v", c.name, err)
	}
}

// next returns the child's next message, failing the test if none comes
// within d, if the child reports an error or if it exits.
func (c *child) next(t *testing.T, d time.Duration) msg {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	select {
	case m, ok := <-c.msgs:
		return c.check(t, m, ok)
	case <-timeout.C:
		t.Fatalf("child %s: no message within %v; output:\n%s", c.name, d, c.output.String())
	}
	panic("unreachable")
}

// expect returns the child's next message and fails the test unless it is
// of the event want.
func (c *child) expect(t *testing.T, want string, d time.Duration) msg {
	t.Helper()
	m := c.next(t, d)
	if m.Event != want {
		t.Fatalf("child %s: got %v, want a %q message", c.name, m, want)
	}
	return m
}

// check fails the test for a message that reports an error or for the end
// of the child's messages.
func (c *child) check(t *testing.T, m msg, ok bool) msg {
	t.Helper()
	if !ok {
		<-c.exited
		t.Fatalf("child %s exited (%v) unexpectedly; output:\n%s", c.name, c.state, c.output.String())
	}
	if m.Event == evError {
		t.Fatalf("child %s failed: %s; output:\n%s", c.name, m.Error, c.output.String())
	}
	return m
}

// nextOf returns the next message of either child, as next does.
func nextOf(t *testing.T, a, b *child, d time.Duration) (*child, msg) {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	select {
	case m, ok := <-a.msgs:
		return a, a.check(t, m, ok)
	case m, ok := <-b.msgs:
		return b, b.check(t, m, ok)
	case <-timeout.C:
		t.Fatalf("children %s and %s: no message within %v; output:\n%s\n%s", a.name, b.name, d,
			a.output.String(), b.output.String())
	}
	panic("unreachable")
}

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 32 << 10

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - tailSize; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
