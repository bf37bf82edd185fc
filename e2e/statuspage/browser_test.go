package statuspage

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Environment variables read by the browser test.
const (
	// envChromium names the Chromium program; the default is
	// /usr/bin/chromium, Debian's chromium package.
	envChromium = "CUTOVER_CHROMIUM"
	// envArtifacts names the directory the screenshot goes to; the default
	// is .ci/artifacts in the repository.
	envArtifacts = "CUTOVER_ARTIFACTS"
)

// Bounds of the waits of the browser test.
const (
	// stepLimit bounds one step in the browser: a navigation, a click and
	// the page it loads, a query.
	stepLimit = 30 * time.Second
	// startLimit bounds the start of Chromium.
	startLimit = 60 * time.Second
	// stopLimit bounds the end of Chromium and of its child processes.
	stopLimit = 10 * time.Second
)

// browser is a headless Chromium that a test drives, with what its pages
// logged.
type browser struct {
	ctx     context.Context // the tab's
	dataDir string

	mu   sync.Mutex
	logs []string // console messages, log entries and exceptions of the pages
}

// chromium returns the path of the Chromium program, or fails the test
// saying what to install: the browser test never skips.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(envChromium)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("no Chromium at %s (%v): install Debian's chromium package (apt-get install chromium; "+
			"scripts/test.sh does so when it runs as root), or name the program in %s", path, err, envChromium)
	}
	return path
}

// startBrowser starts a headless Chromium with a fresh user data
// directory. When the test ends, Chromium and every process of it is
// killed, and the directory removed; the test fails if either is left.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	dir, err := os.MkdirTemp("", "cutover-statuspage-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{dataDir: dir}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("headless", true),
		// The machine's network is closed: without these, Chromium waits on
		// connections that never open.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		// Closing the tab's context ends the browser, and the allocator's
		// waits for its process.
		cancelTab()
		cancelAlloc()
		b.reap(t)
	})
	// The first run starts the browser, which lives as long as the
	// context of that run: it must have no deadline, so the wait for it
	// is bounded here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start Chromium (%s): %v", exe, err)
		}
	case <-timer.C:
		cancelTab()
		t.Fatalf("start Chromium (%s): not ready after %v", exe, startLimit)
	}
	if err := chromedp.Listen(ctx, b.listen); err != nil {
		t.Fatalf("listen to Chromium: %v", err)
	}
	b.ctx = ctx
	return b
}

// listen keeps what the pages log.
func (b *browser) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *log.EventEntryAdded:
		line = string(ev.Entry.Source) + " " + string(ev.Entry.Level) + ": " + ev.Entry.Text
	case *runtime.EventConsoleAPICalled:
		line = "console " + string(ev.Type)
	case *runtime.EventExceptionThrown:
		line = "exception: " + ev.ExceptionDetails.Text
	default:
		return
	}
	b.mu.Lock()
	b.logs = append(b.logs, line)
	b.mu.Unlock()
}

// logged returns what the pages logged so far.
func (b *browser) logged() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logs...)
}

// do runs steps in the browser, bounded by stepLimit, and fails the test
// with what if one fails.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs a in the browser, bounded by stepLimit, and returns its value;
// it fails the test with what if a fails.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// reap kills what is left of Chromium's processes, found by the user data
// directory that each of them has on its command line, until none is left
// or stopLimit passes, removes that directory, and fails the test if a
// process or the directory is still there.
func (b *browser) reap(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(stopLimit)
	for quiet := 0; quiet < 3; time.Sleep(20 * time.Millisecond) {
		pids := processesUsing(b.dataDir)
		if len(pids) == 0 {
			quiet++
			continue
		}
		quiet = 0
		if time.Now().After(deadline) {
			t.Errorf("Chromium processes %v still running %v after the test", pids, stopLimit)
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var err error
	for time.Now().Before(deadline) {
		// A child that just died may still have written a file.
		if err = os.RemoveAll(b.dataDir); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, serr := os.Stat(b.dataDir); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("Chromium's user data directory %s not removed: %v", b.dataDir, err)
	}
}

// processesUsing returns the processes whose command line names dir as
// the user data directory: Chromium and every child it started.
func processesUsing(dir string) []int {
	want := []byte("--user-data-dir=" + dir + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(append(cmdline, 0), want) && !zombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie reports whether the process pid has exited and waits only for
// its parent to reap it.
func zombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// artifacts returns the directory for the test's artifacts, made if
// needed: $CUTOVER_ARTIFACTS, or .ci/artifacts in the repository.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".ci", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
