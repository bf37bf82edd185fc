package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds on waiting for server processes; variables so that tests can
// shorten them.
var (
	readyTimeout = 30 * time.Second // from start until the server answers
	setupTimeout = 60 * time.Second // one initdb or mariadb-install-db run
	stopTimeout  = 10 * time.Second // from the stop signal until SIGKILL
)

// pollEvery is how often a starting server is asked whether it is ready.
const pollEvery = 20 * time.Millisecond

// forkRequests carries commands to start to the goroutine that starts all
// child processes. That goroutine is locked to its OS thread and never
// returns, so the thread lives as long as the process: Linux sends a
// child's parent-death signal when the thread that forked it exits, not
// the process, and Go ends a thread when a goroutine locked to it returns.
var (
	forkOnce     sync.Once
	forkRequests chan forkRequest
)

type forkRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// start starts cmd from the forking thread.
func start(cmd *exec.Cmd) error {
	forkOnce.Do(func() {
		forkRequests = make(chan forkRequest)
		go func() {
			runtime.LockOSThread()
			for r := range forkRequests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	forkRequests <- forkRequest{cmd, done}
	return <-done
}

// postgresCredential returns the credential to run PostgreSQL programs
// with: nil when this process is not root, and otherwise that of the
// "postgres" OS user, because initdb and postgres refuse to run as root.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and no OS user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// runSetup runs a setup program (initdb, mariadb-install-db) to completion,
// its output appended to logPath, and returns an error with the log's tail
// if it fails.
func runSetup(cred *syscall.Credential, logPath, name string, args ...string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s %s\n", name, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr(cred)
	cmd.Dir = os.TempDir()
	if err := start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, logTail(logPath))
	}
	return nil
}

// proc is a database server process that this test binary started.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal // the signal for a clean, quick shutdown
	exited  chan struct{}  // closed once the process has been waited for
	waitErr error          // set before exited is closed
}

// startServer starts a server program in the background, its output
// appended to logPath.
func startServer(cred *syscall.Credential, stopSig syscall.Signal, logPath, name string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr(cred)
	cmd.Dir = os.TempDir()
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, logPath: logPath, stopSig: stopSig, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid returns the server's process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitReady calls ping until it succeeds, the process exits or
// readyTimeout passes, whichever comes first. It reports whether the
// process exited.
func (p *proc) waitReady(ping func(context.Context) error) (exited bool, err error) {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = ping(ctx)
		cancel()
		if err == nil {
			return false, nil
		}
		select {
		case <-p.exited:
			return true, fmt.Errorf("server exited during start-up (%v)\n%s", p.waitErr, logTail(p.logPath))
		case <-deadline.C:
			return false, fmt.Errorf("server not ready after %v: %w\n%s", readyTimeout, err, logTail(p.logPath))
		case <-tick.C:
		}
	}
}

// stop shuts the server down with its stop signal, and kills its whole
// process group if it has not exited after stopTimeout. It returns once
// no process of the group is left.
func (p *proc) stop() error {
	select {
	case <-p.exited:
		p.waitGroupGone()
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(p.stopSig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", p.pid(), err)
	}
	select {
	case <-p.exited:
		p.waitGroupGone()
		return nil
	case <-time.After(stopTimeout):
	}
	p.kill()
	select {
	case <-p.exited:
		return fmt.Errorf("pid %d did not stop within %v of %v and was killed\n%s", p.pid(), stopTimeout, p.stopSig, logTail(p.logPath))
	default:
		return fmt.Errorf("pid %d did not exit even after SIGKILL", p.pid())
	}
}

// kill ends the server's whole process group at once and waits, bounded,
// for it to be gone.
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
	}
	p.waitGroupGone()
}

// waitGroupGone waits, at most stopTimeout, until no process is left in
// the server's process group (such as PostgreSQL backends finishing after
// the postmaster, or children not yet reaped), killing what is left
// halfway.
func (p *proc) waitGroupGone() {
	deadline := time.Now().Add(stopTimeout)
	killed := false
	for groupAlive(p.pid()) && time.Now().Before(deadline) {
		if !killed && time.Until(deadline) < stopTimeout/2 {
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			killed = true
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tempDir makes a new directory for a server's files, named after the
// server and this process's ID, and first removes the directories that
// processes no longer running left behind (a test binary that was killed
// cannot stop its servers, which the kernel kills, nor remove their files).
func tempDir(server string) (string, error) {
	prefix := "cutover-testdb-" + server + "-p"
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range old {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(d), prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
	return os.MkdirTemp("", prefix+strconv.Itoa(os.Getpid())+"-")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. A
// server started on it can still lose a race for it with another process,
// which the callers handle by retrying with another port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last lines of the log at path, for error messages.
func logTail(path string) string {
	const max = 3000
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	s := string(b)
	if len(b) == max {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return "--- " + path + " (end) ---\n" + strings.TrimRight(s, "\n")
}

// findProgram returns the path of the first of names found on PATH or in
// dirs.
func findProgram(names []string, dirs ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	for _, d := range dirs {
		for _, n := range names {
			p := d + "/" + n
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %s", strings.Join(names, " or "), strings.Join(dirs, ", "))
}

// awaitReady waits until the server p accepts connections on dsn through
// driver. On failure it kills p, and reports whether starting it again on
// another port may help: a server that exited may have lost a race for its
// port, unless this was the last attempt.
func awaitReady(p *proc, driver, dsn string, lastAttempt bool) (retry bool, err error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		p.kill()
		return false, err
	}
	exited, err := p.waitReady(db.PingContext)
	db.Close()
	if err == nil {
		return false, nil
	}
	p.kill()
	return exited && !lastAttempt, err
}
