package ddlstall

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/cutover-go/cutover/internal/testdb"
)

// opTimeout bounds one writer operation, so that a writer blocked behind a
// lock fails instead of hanging.
const opTimeout = 30 * time.Second

// writerLife bounds how long the writers of one case run, and maxOps how
// many operations one writer makes, whatever the case does.
const (
	writerLife = 20 * time.Minute
	maxOps     = 2_000_000
)

// pause is the writers' pause between operations: they load the table
// without keeping both cores of a CI machine busy on their own.
const pause = time.Millisecond

// writeMode is what a writer's operation writes besides users.
type writeMode int32

const (
	plain writeMode = iota
	// dualNBig: updates and inserts also set n_big (PostgreSQL).
	dualNBig
	// dualUsersNew: updates and inserts also write the row to users_new, in
	// the same transaction (MariaDB).
	dualUsersNew
)

// op is one writer operation: when it started, how long it took, whether it
// failed.
type op struct {
	start  time.Time
	took   time.Duration
	failed bool
}

// writer is one loop of updates and inserts. Only its goroutine touches
// ops, inserted and errs while it runs; the test reads them once it has
// stopped.
type writer struct {
	started  atomic.Int64 // operations started, read by modeSwitch
	ops      []op
	inserted int64 // inserts that succeeded
	failedIn int64 // inserts that failed: they may or may not have committed
	retried  int64 // dual writes to users_new tried again as plain writes after the rename
	errs     []string
	stopped  atomic.Bool
}

// writers are the load on users: each loops UPDATE users SET n = n + 1 of a
// random existing row and, one time in four, INSERT of a new row.
type writers struct {
	db     *testdb.DB
	rows   int64        // the rows loaded: ids 1 to rows
	next   atomic.Int64 // the last id handed out for an insert
	mode   atomic.Int32 // a writeMode
	ws     []*writer
	stop   chan struct{}
	wg     sync.WaitGroup
	cancel context.CancelFunc // ends the writers' life

	haltOnce sync.Once
	haltErr  error
}

// startWriters starts n writers on db's users table of rows rows.
func startWriters(ctx context.Context, db *testdb.DB, rows int64, n int) *writers {
	l := &writers{db: db, rows: rows, stop: make(chan struct{})}
	l.next.Store(rows)
	ctx, l.cancel = context.WithTimeout(context.WithoutCancel(ctx), writerLife)
	for i := range n {
		w := &writer{}
		l.ws = append(l.ws, w)
		l.wg.Go(func() { l.loop(ctx, w, rand.New(rand.NewPCG(uint64(i)+1, uint64(time.Now().UnixNano())))) })
	}
	return l
}

// loop runs w until the writers are stopped, their life is over or w has
// made maxOps operations.
func (l *writers) loop(ctx context.Context, w *writer, r *rand.Rand) {
	defer w.stopped.Store(true)
	t := time.NewTimer(pause)
	defer t.Stop()
	for len(w.ops) < maxOps {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.started.Add(1)
		insert := r.IntN(4) == 0
		var id int64
		if insert {
			id = l.next.Add(1)
		} else {
			id = 1 + r.Int64N(l.rows)
		}
		// The mode is read after the id is handed out, so that an insert
		// of the old mode has an id at most the last one handed out when
		// the mode changed.
		mode := writeMode(l.mode.Load())
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		t0 := time.Now()
		err := l.write(opCtx, mode, insert, id)
		if mode == dualUsersNew && isNoSuchTable(err) {
			// The rename made users_new the users table between reading the
			// mode and writing: write the one table there is now.
			w.retried++
			err = l.write(opCtx, plain, insert, id)
		}
		took := time.Since(t0)
		cancel()
		w.ops = append(w.ops, op{start: t0, took: took, failed: err != nil})
		switch {
		case err != nil && insert:
			w.failedIn++
		case insert:
			w.inserted++
		}
		if err != nil && len(w.errs) < 3 {
			w.errs = append(w.errs, fmt.Sprintf("%s after %v: %v", map[bool]string{true: "insert", false: "update"}[insert],
				took.Round(time.Millisecond), err))
		}
		t.Reset(pause)
		select {
		case <-t.C:
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// isNoSuchTable reports whether err is MariaDB's "table doesn't exist".
func isNoSuchTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

// write makes one operation: an update of row id, or an insert of it.
func (l *writers) write(ctx context.Context, mode writeMode, insert bool, id int64) error {
	db := l.db
	email, org := fmt.Sprintf("user%d@example.com", id), id%orgs+1
	switch mode {
	case dualNBig:
		if insert {
			_, err := db.ExecContext(ctx, `INSERT INTO users (id, email, org_id, n, n_big) VALUES ($1, $2, $3, 0, 0)`, id, email, org)
			return err
		}
		_, err := db.ExecContext(ctx, `UPDATE users SET n = n + 1, n_big = n + 1 WHERE id = $1`, id)
		return err
	case dualUsersNew:
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if insert {
			_, err = tx.ExecContext(ctx, `INSERT INTO users (id, email, org_id, n) VALUES (?, ?, ?, 0)`, id, email, org)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE users SET n = n + 1 WHERE id = ?`, id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `REPLACE INTO users_new (id, email, org_id, n)
			SELECT id, email, org_id, n FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		return tx.Commit()
	}
	if insert {
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO users (id, email, org_id, n) VALUES (?, ?, ?, 0)`), id, email, org)
		return err
	}
	_, err := db.ExecContext(ctx, db.Rebind(`UPDATE users SET n = n + 1 WHERE id = ?`), id)
	return err
}

// switchMode makes the writers write mode, and waits, for at most
// waitLimit, until every writer has finished the operation it was making
// when the mode changed: after that every write is of the new mode.
func (l *writers) switchMode(ctx context.Context, mode writeMode) error {
	l.mode.Store(int32(mode))
	seen := make([]int64, len(l.ws))
	for i, w := range l.ws {
		seen[i] = w.started.Load()
	}
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	for i, w := range l.ws {
		for w.started.Load() <= seen[i] && !w.stopped.Load() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for writer %d to finish its operation of the old mode: %w", i, context.Cause(ctx))
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// halt stops the writers and waits, for at most opTimeout and waitLimit,
// until each has finished its last operation.
func (l *writers) halt() error {
	l.haltOnce.Do(func() { l.haltErr = l.doHalt() })
	return l.haltErr
}

func (l *writers) doHalt() error {
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	t := time.NewTimer(opTimeout + waitLimit)
	defer t.Stop()
	select {
	case <-done:
		l.cancel()
		return nil
	case <-t.C:
		l.cancel()
		return fmt.Errorf("waiting for the writers to stop: still running after %v", opTimeout+waitLimit)
	}
}

// stats is what the writers saw, over a window or before it.
type stats struct {
	ops, failed   int
	longest, p99  time.Duration
	longestAt     time.Time // when the longest operation started
	inserted      int64     // inserts that succeeded, over the whole run
	failedInserts int64     // inserts that failed, over the whole run
	failedAll     int       // operations that failed, over the whole run
	retried       int64
	errs          []string
}

// window returns the stats of the operations that overlap [from, to], and
// the counts of the whole run. Call it only after halt.
func (l *writers) window(from, to time.Time) stats {
	var s stats
	var took []time.Duration
	for _, w := range l.ws {
		for _, o := range w.ops {
			if o.failed {
				s.failedAll++
			}
			if o.start.After(to) || o.start.Add(o.took).Before(from) {
				continue
			}
			s.ops++
			if o.failed {
				s.failed++
			}
			if o.took > s.longest {
				s.longest, s.longestAt = o.took, o.start
			}
			took = append(took, o.took)
		}
		s.inserted += w.inserted
		s.failedInserts += w.failedIn
		s.retried += w.retried
		s.errs = append(s.errs, w.errs...)
	}
	_, s.p99 = percentiles(took)
	return s
}

// quiet returns the p99 of the operations that ended before from: the
// warm-up, with no schema change running.
func (l *writers) quiet(from time.Time) time.Duration {
	var took []time.Duration
	for _, w := range l.ws {
		for _, o := range w.ops {
			if o.start.Add(o.took).Before(from) {
				took = append(took, o.took)
			}
		}
	}
	_, p99 := percentiles(took)
	return p99
}

// percentiles returns the largest and the 99th percentile of took, which it
// sorts.
func percentiles(took []time.Duration) (longest, p99 time.Duration) {
	if len(took) == 0 {
		return 0, 0
	}
	slices.Sort(took)
	return took[len(took)-1], took[min(len(took)-1, len(took)*99/100)]
}

// firstErrors joins at most three of errs.
func firstErrors(errs []string) string {
	return strings.Join(errs[:min(len(errs), 3)], "; ")
}
