package crashtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	_ "github.com/cutover-go/cutover/internal/testdb" // registers the database drivers
)

// TestChildProcess is the body of the child processes that the other tests
// start; run directly, it skips. Its role comes from CUTOVER_CRASH_ROLE:
//
//   - "backfill" runs the backfill with a batch that copies the phone
//     column and counts the copies of each row. Once the batches before it
//     committed, the next batch writes its rows, reports "mid-batch" and
//     waits, its transaction open, to be killed: inside the batch function
//     (CUTOVER_CRASH_KILL_AT=batch), or after it returned, at the runner's
//     next reading of the store's clock, which comes before it writes the
//     checkpoint (CUTOVER_CRASH_KILL_AT=checkpoint).
//   - "mover" moves the phase as each line of its stdin asks
//     ("move PHASE VERSION", or "move PHASE VERSION hold") and reports the
//     outcome, until end of file. With "hold", the first reading of the
//     store's clock during the move reports "in-tx" and waits for a line
//     "proceed": a move past its version check reads the clock first in
//     its transaction, just before the compare-and-swap.
//   - "leaser" waits for "go", then runs the backfill until it is done,
//     reporting each refusal for a lease held by another runner and trying
//     again. A runner that got the lease at its first try reports
//     "holding" between two batches and waits there to be killed.
//
// A child whose stdin reaches end of file while it waits to be killed exits
// at once, committing nothing, as a killed one would.
func TestChildProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		return // not a child: the other tests of this package start it as one
	}
	c := newChildProc(t)
	switch role {
	case "backfill":
		c.backfill()
	case "mover":
		c.mover()
	case "leaser":
		c.leaser()
	default:
		c.fail("unknown role %q", role)
	}
}

// childProc is the state of a child process.
type childProc struct {
	t         *testing.T
	ctx       context.Context
	store     *expandcontract.Store
	owner     string
	batch     int
	holdAfter int
	lease     time.Duration
	stdin     *bufio.Reader
	killAt    string
	onClock   atomic.Pointer[msg] // reported by the next reading of the clock, which then waits
	mu        sync.Mutex          // serializes writes to stdout
}

func newChildProc(t *testing.T) *childProc {
	c := &childProc{t: t, ctx: t.Context(), owner: os.Getenv(envOwner), killAt: os.Getenv(envKillAt),
		stdin: bufio.NewReader(os.Stdin)}
	var err error
	if v := os.Getenv(envBatch); v != "" {
		if c.batch, err = strconv.Atoi(v); err != nil {
			c.fail("%s: %v", envBatch, err)
		}
	}
	if v := os.Getenv(envHoldAfter); v != "" {
		if c.holdAfter, err = strconv.Atoi(v); err != nil {
			c.fail("%s: %v", envHoldAfter, err)
		}
	}
	if v := os.Getenv(envLease); v != "" {
		if c.lease, err = time.ParseDuration(v); err != nil {
			c.fail("%s: %v", envLease, err)
		}
	}
	driver, dsn := os.Getenv(envDriver), os.Getenv(envDSN)
	if driver == "" || dsn == "" || c.owner == "" {
		c.fail("%s, %s and %s must be set", envDriver, envDSN, envOwner)
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		c.fail("open %s: %v", driver, err)
	}
	t.Cleanup(func() { db.Close() })
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if c.store, err = expandcontract.Open(c.ctx, db, expandcontract.WithLogger(logger), expandcontract.WithClock(c.now)); err != nil {
		c.fail("open the store: %v", err)
	}
	// Warm the pool, so that the first command races from an open connection.
	if _, err := suite.Migration(c.store, migration).State(c.ctx); err != nil {
		c.fail("read the migration: %v", err)
	}
	return c
}

// now is the store's clock. When a message is armed in onClock, the first
// reading reports it and waits: for the parent's "proceed" after "in-tx",
// to be killed after anything else.
func (c *childProc) now() time.Time {
	if m := c.onClock.Swap(nil); m != nil {
		c.emit(*m)
		if m.Event != evInTx {
			c.waitToBeKilled()
		}
		if line, err := c.readLine(); err != nil || line != "proceed" {
			c.fail("want proceed, got %q (%v)", line, err)
		}
	}
	return time.Now()
}

// emit writes m to stdout as one protocol line.
func (c *childProc) emit(m msg) {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	line := append([]byte(msgPrefix), b...)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = os.Stdout.Write(append(line, '\n'))
}

// fail reports an error to the parent and fails the child.
func (c *childProc) fail(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.emit(msg{Event: evError, Error: s})
	c.t.Fatal(s)
}

// readLine returns the next line of stdin, and io.EOF at its end.
func (c *childProc) readLine() (string, error) {
	line, err := c.stdin.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// waitToBeKilled blocks until the parent kills the process. The parent
// never writes again; if stdin reaches end of file (the test ended, or its
// process died), the process exits at once, without rolling back or
// giving anything back, as a killed one would.
func (c *childProc) waitToBeKilled() {
	line, err := c.readLine()
	if err != nil {
		os.Exit(3)
	}
	c.fail("got %q while waiting to be killed", line)
}

func (c *childProc) newBackfill(batch backfill.Batch, opts ...backfill.Option) *backfill.Runner {
	base := []backfill.Option{backfill.WithOwner(c.owner), backfill.WithBatchSize(c.batch)}
	if c.lease > 0 {
		base = append(base, backfill.WithLease(c.lease))
	}
	bf, err := backfill.New(suite.Migration(c.store, migration), keyset, batch, append(base, opts...)...)
	if err != nil {
		c.fail("new backfill: %v", err)
	}
	return bf
}

// backfill is the role "backfill".
func (c *childProc) backfill() {
	n := 0
	batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		rows, err := copyRange(ctx, tx, r)
		if err != nil {
			return 0, err
		}
		if n++; n == c.holdAfter+1 {
			m := msg{Event: evMidBatch, From: keyText(r.From), To: keyText(r.To), Rows: rows}
			switch c.killAt {
			case "batch":
				c.emit(m)
				c.waitToBeKilled()
			case "checkpoint":
				c.onClock.Store(&m)
			default:
				c.fail("%s=%q: want batch or checkpoint", envKillAt, c.killAt)
			}
		}
		return rows, nil
	})
	if err := c.newBackfill(batch).Run(c.ctx); err != nil {
		c.fail("run: %v", err)
	}
	c.emit(msg{Event: evDone})
}

// leaser is the role "leaser".
func (c *childProc) leaser() {
	c.emit(msg{Event: evReady})
	if line, err := c.readLine(); err != nil || line != "go" {
		c.fail("want go, got %q (%v)", line, err)
	}
	refused, calls := false, 0
	bf := c.newBackfill(backfill.SQLBatch(copySQL),
		backfill.WithThrottle(func(context.Context) (time.Duration, error) {
			// Called before each batch, outside its transaction.
			if calls++; calls == c.holdAfter+1 && !refused {
				c.emit(msg{Event: evHolding, Owner: c.owner, At: time.Now()})
				c.waitToBeKilled()
			}
			return 0, nil
		}))
	deadline := time.Now().Add(time.Minute)
	for {
		tried := time.Now()
		err := bf.Run(c.ctx)
		var held *backfill.LeaseHeldError
		switch {
		case err == nil:
			c.emit(msg{Event: evDone})
			return
		case errors.As(err, &held):
			refused = true
			c.emit(msg{Event: evHeld, Owner: held.Owner, Until: held.Until, At: tried})
			if time.Now().After(deadline) {
				c.fail("the lease is still held after a minute: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		default:
			c.fail("run: %v", err)
		}
	}
}

// mover is the role "mover".
func (c *childProc) mover() {
	c.emit(msg{Event: evReady})
	for {
		line, err := c.readLine()
		if err == io.EOF {
			return
		}
		if err != nil {
			c.fail("read a command: %v", err)
		}
		f := strings.Fields(line)
		if len(f) < 3 || len(f) > 4 || f[0] != "move" || len(f) == 4 && f[3] != "hold" {
			c.fail("bad command %q", line)
		}
		if len(f) == 4 {
			c.onClock.Store(&msg{Event: evInTx})
		}
		to, err := expandcontract.ParsePhase(f[1])
		if err != nil {
			c.fail("bad command %q: %v", line, err)
		}
		v, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			c.fail("bad command %q: %v", line, err)
		}
		m, err := suite.Migration(c.store, migration).Move(c.ctx, expandcontract.Move{To: to, Actor: c.owner, Reason: "race", Version: v})
		if c.onClock.Swap(nil) != nil {
			c.fail("the move to %s at version %d never read the clock", to, v)
		}
		var ce *expandcontract.ConflictError
		var me *expandcontract.MoveError
		switch {
		case err == nil:
			c.emit(msg{Event: evMoved, Version: m.Version, Phase: m.Phase.String()})
		case errors.As(err, &ce) && err == error(ce): // not joined with a failure to record it
			c.emit(msg{Event: evConflict, Expected: ce.Expected, Actual: ce.Actual, Phase: ce.Phase.String(), Error: err.Error()})
		case errors.As(err, &me) && err == error(me):
			c.emit(msg{Event: evRefused, Phase: me.From.String(), Error: err.Error()})
		default:
			c.fail("move to %s at version %d: %v", to, v, err)
		}
	}
}

// keyText shows a range bound: "" for the start.
func keyText(k any) string {
	if k == nil {
		return ""
	}
	return fmt.Sprint(k)
}
