package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/cdc"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// positionRows counts the stored positions in the new store.
func positionRows(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(context.Background(), &n, `SELECT count(*) FROM cutover_cdc_positions`))
	return n
}

// awaitSlot waits until the applier created the slot and stored its
// first position.
func awaitSlot(t *testing.T, f *fixture, done <-chan error) {
	t.Helper()
	waitFor(t, done, 30*time.Second, "the slot and its first stored position", func() bool {
		if slots(t, f.old.DB) != 1 {
			return false
		}
		var n int
		err := f.new.GetContext(context.Background(), &n, `SELECT count(*) FROM cutover_cdc_positions`)
		return err == nil && n == 1
	})
}

// TestSQLApplyFollowsTheLog applies inserts, updates (one of them moving
// a key), deletes and a truncate of the old table through SQLApply, and
// finds the new table equal to the old after each round; a move back to
// expand then stops the applier, which drops the slot, the publication
// and the stored position.
func TestSQLApplyFollowsTheLog(t *testing.T) {
	f := newFixture(t)
	apply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "items"})
	require.NoError(t, err)
	a, err := cdc.New(f.mig, f.source(), f.new.DB, apply, fast()...)
	require.NoError(t, err)
	done, _ := start(t, a)
	awaitSlot(t, f, done)
	require.Equal(t, 1, publications(t, f.old.DB))

	same := func(what string) {
		t.Helper()
		waitFor(t, done, 30*time.Second, what, func() bool {
			return assert.ObjectsAreEqual(items(t, f.old.DB), items(t, f.new.DB))
		})
	}
	for i := 1; i <= 50; i++ {
		f.old.MustExec(`INSERT INTO items VALUES ($1, $2, $3)`, i, fmt.Sprint("v", i), i*10)
	}
	same("50 inserts")
	require.Len(t, items(t, f.new.DB), 50)

	tx := f.old.MustBegin()
	tx.MustExec(`UPDATE items SET v = 'changed', n = NULL WHERE id <= 10`)
	tx.MustExec(`DELETE FROM items WHERE id > 40`)
	tx.MustExec(`UPDATE items SET id = 1000 WHERE id = 20`) // the key moves
	tx.MustExec(`INSERT INTO items VALUES (2000, NULL, 7)`)
	require.NoError(t, tx.Commit())
	same("a transaction of updates, deletes, a key change and an insert")
	got := items(t, f.new.DB)
	require.Len(t, got, 41)
	assert.Equal(t, int64(2000), got[len(got)-1].ID)

	f.old.MustExec(`TRUNCATE items`)
	f.old.MustExec(`INSERT INTO items VALUES (7, 'after', 1)`)
	same("a truncate and an insert")
	require.Len(t, items(t, f.new.DB), 1)

	ectest.MoveTo(t, f.mig, expandcontract.Expand)
	require.NoError(t, ectest.RunEnds(t, done, "the move back to expand"))
	assert.Equal(t, 0, slots(t, f.old.DB), "slots left")
	assert.Equal(t, 0, publications(t, f.old.DB), "publications left")
	assert.Equal(t, 0, positionRows(t, f.new.DB), "stored positions left")
}

// seqFixture has, in the old database, counters whose every transaction
// bumps one counter's seq by one, and in the new store a log of the
// changes applied, in the order applied, with their commit positions.
type seqFixture struct {
	*fixture
	apply   cdc.ApplyFunc
	mu      sync.Mutex
	failAt  int64 // the seq of counter 0 at which apply fails, once; 0 for never
	applied int64 // transactions passed to apply, committed or not
}

func newSeqFixture(t *testing.T) *seqFixture {
	f := &seqFixture{fixture: newFixture(t)}
	f.old.MustExec(`CREATE TABLE counters (k integer PRIMARY KEY, seq bigint NOT NULL)`)
	f.old.MustExec(`INSERT INTO counters SELECT g, 0 FROM generate_series(0, 4) AS g`)
	f.new.MustExec(`CREATE TABLE applied (pos bigserial PRIMARY KEY, k integer NOT NULL, seq bigint NOT NULL, commit_lsn bigint NOT NULL)`)
	f.apply = func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		for _, c := range txn.Changes {
			k, _ := c.Get("k")
			seq, _ := c.Get("seq")
			f.mu.Lock()
			f.applied++
			fail := f.failAt != 0 && k == int32(0) && seq == f.failAt
			if fail {
				f.failAt = 0
			}
			f.mu.Unlock()
			if fail {
				return errors.New("injected failure")
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO applied (k, seq, commit_lsn) VALUES ($1, $2, $3)`,
				k, seq, int64(txn.CommitLSN)); err != nil {
				return err
			}
		}
		return nil
	}
	return f
}

func (f *seqFixture) applier(t *testing.T, opts ...cdc.Option) *cdc.Applier {
	t.Helper()
	src := f.source()
	src.Tables = []string{"counters"}
	a, err := cdc.New(f.mig, src, f.new.DB, f.apply, append(fast(), opts...)...)
	require.NoError(t, err)
	return a
}

// bump runs n transactions on the old database, each bumping counter
// i%5.
func (f *seqFixture) bump(t *testing.T, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		f.old.MustExec(`UPDATE counters SET seq = seq + 1 WHERE k = $1`, i%5)
	}
}

// check asserts that the log holds, for each counter, each seq from 1 to
// the old database's (if complete; to some seq at most the old
// database's otherwise) exactly once, in order, and that commit positions
// grow along the log: every change applied exactly once, in commit order.
func (f *seqFixture) check(t *testing.T, complete bool) int {
	t.Helper()
	type row struct {
		K   int64 `db:"k"`
		Seq int64 `db:"seq"`
		LSN int64 `db:"commit_lsn"`
	}
	var log []row
	require.NoError(t, f.new.SelectContext(context.Background(), &log, `SELECT k, seq, commit_lsn FROM applied ORDER BY pos`))
	next := map[int64]int64{}
	var lastLSN int64
	for i, r := range log {
		require.Equalf(t, next[r.K]+1, r.Seq, "entry %d: counter %d", i, r.K)
		next[r.K] = r.Seq
		require.Greaterf(t, r.LSN, lastLSN, "entry %d: commit positions must grow", i)
		lastLSN = r.LSN
	}
	var want []struct {
		K   int64 `db:"k"`
		Seq int64 `db:"seq"`
	}
	require.NoError(t, f.old.SelectContext(context.Background(), &want, `SELECT k, seq FROM counters ORDER BY k`))
	for _, w := range want {
		if complete {
			require.Equalf(t, w.Seq, next[w.K], "counter %d", w.K)
		} else {
			require.LessOrEqualf(t, next[w.K], w.Seq, "counter %d", w.K)
		}
	}
	return len(log)
}

// caughtUp reports whether the log holds every bump of the old database.
func (f *seqFixture) caughtUp(t *testing.T) bool {
	var total, applied int64
	require.NoError(t, f.old.GetContext(context.Background(), &total, `SELECT sum(seq) FROM counters`))
	require.NoError(t, f.new.GetContext(context.Background(), &applied, `SELECT count(*) FROM applied`))
	return applied == total
}

// TestExactlyOnceAcrossStops stops the applier in three ways while
// transactions go on, a failing apply function, a cancellation, and a
// fencing by a position moved under it, and restarts it each time: every
// transaction is applied exactly once and in commit order.
func TestExactlyOnceAcrossStops(t *testing.T) {
	f := newSeqFixture(t)
	// Small groups, so that a stop falls between groups.
	a := f.applier(t, cdc.WithMaxGroup(3))
	done, cancel := start(t, a)
	waitFor(t, done, 30*time.Second, "the slot", func() bool { return slots(t, f.old.DB) == 1 })
	f.bump(t, 0, 40)
	waitFor(t, done, 30*time.Second, "the first 40 transactions", func() bool { return f.caughtUp(t) })

	// An apply function that fails rolls its group back and stops Run.
	f.mu.Lock()
	f.failAt = 12
	f.mu.Unlock()
	f.bump(t, 40, 30)
	err := ectest.RunEnds(t, done, "the injected failure")
	require.ErrorContains(t, err, "injected failure")
	cancel()
	f.check(t, false)

	// Restarted, it applies what the failure rolled back, then gets
	// canceled between transactions.
	a = f.applier(t, cdc.WithMaxGroup(3))
	done, cancel = start(t, a)
	waitFor(t, done, 30*time.Second, "the transactions after the failure", func() bool { return f.caughtUp(t) })
	f.bump(t, 70, 20)
	cancel()
	require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), context.Canceled)
	f.check(t, false)

	// Restarted, and fenced: a position moved under the applier makes its
	// next commit fail, with nothing of its group committed.
	a = f.applier(t, cdc.WithMaxGroup(1))
	done, cancel = start(t, a)
	waitFor(t, done, 30*time.Second, "the transactions before the fence", func() bool { return f.caughtUp(t) })
	f.new.MustExec(`UPDATE cutover_cdc_positions SET lsn = lsn - 1`)
	f.bump(t, 90, 1)
	errIs(t, ectest.RunEnds(t, done, "a moved position"), cdc.ErrFenced)
	cancel()
	f.new.MustExec(`UPDATE cutover_cdc_positions SET lsn = lsn + 1`)

	a = f.applier(t)
	done, _ = start(t, a)
	f.bump(t, 91, 9)
	waitFor(t, done, 30*time.Second, "every transaction", func() bool { return f.caughtUp(t) })
	n := f.check(t, true)
	require.Equal(t, 100, n)
	f.mu.Lock()
	assert.Greater(t, f.applied, int64(100), "some transactions were passed to apply again after a stop")
	f.mu.Unlock()
	require.NoError(t, a.Drop(t.Context()))
	require.Error(t, ectest.RunEnds(t, done, "the slot's drop"), "Drop ends the stream of a running applier")
}

// TestLargeTransactionComesInParts passes a transaction of 35 changes to
// an applier that holds 10 at most: the apply function gets parts of 10,
// 10, 10 and 5, numbered, the last marked, all in one transaction of the
// new store, which commits them with the position.
func TestLargeTransactionComesInParts(t *testing.T) {
	f := newFixture(t)
	type part struct {
		tx      *sqlx.Tx
		n, part int
		last    bool
		end     cdc.LSN
	}
	var (
		mu    sync.Mutex
		parts []part
	)
	a, err := cdc.New(f.mig, f.source(), f.new.DB, func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		mu.Lock()
		defer mu.Unlock()
		parts = append(parts, part{tx: tx, n: len(txn.Changes), part: txn.Part, last: txn.Last, end: txn.EndLSN})
		for _, c := range txn.Changes {
			require.Equal(t, cdc.Insert, c.Op)
			require.Equal(t, "public.items", c.Table)
			id, _ := c.Get("id")
			v, _ := c.Get("v")
			n, _ := c.Get("n")
			if _, err := tx.ExecContext(ctx, `INSERT INTO items VALUES ($1, $2, $3)`, id, v, n); err != nil {
				return err
			}
		}
		return nil
	}, append(fast(), cdc.WithMaxChanges(10))...)
	require.NoError(t, err)
	done, _ := start(t, a)
	awaitSlot(t, f, done)
	f.old.MustExec(`INSERT INTO items SELECT g, 'v' || g, g FROM generate_series(1, 35) AS g`)
	waitFor(t, done, 30*time.Second, "35 rows in the new store", func() bool { return len(items(t, f.new.DB)) == 35 })
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, parts, 4)
	for i, p := range parts {
		assert.Equal(t, i, p.part)
		assert.Equal(t, []int{10, 10, 10, 5}[i], p.n)
		assert.Equal(t, i == 3, p.last)
		assert.Same(t, parts[0].tx, p.tx, "part %d in the transaction of part 0", i)
		if p.last {
			assert.NotZero(t, p.end)
		} else {
			assert.Zero(t, p.end)
		}
	}
	assert.Equal(t, items(t, f.old.DB), items(t, f.new.DB))
	require.NoError(t, a.Drop(t.Context()))
}

// TestRunRefusesEndedPhases starts an applier in expand and in contract:
// it refuses, creating no slot, and in contract drops the slot a stopped
// applier left.
func TestRunRefusesEndedPhases(t *testing.T) {
	f := newFixture(t)
	apply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "items"})
	require.NoError(t, err)
	a, err := cdc.New(f.mig, f.source(), f.new.DB, apply, fast()...)
	require.NoError(t, err)
	done, cancel := start(t, a)
	awaitSlot(t, f, done)
	cancel()
	require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), context.Canceled)
	require.Equal(t, 1, slots(t, f.old.DB), "a canceled applier keeps its slot, to resume")

	// The migration goes on to contract while no applier runs.
	ectest.MoveTo(t, f.mig, expandcontract.Backfill)
	require.NoError(t, backfillDone(t, f.mig))
	require.NoError(t, f.mig.RecordVerification(t.Context(), expandcontract.Verification{Clean: true}))
	ectest.MoveTo(t, f.mig, expandcontract.SwitchReads, expandcontract.Contract)
	errIs(t, a.Run(t.Context()), cdc.ErrWrongPhase)
	assert.Equal(t, 0, slots(t, f.old.DB))
	assert.Equal(t, 0, publications(t, f.old.DB))
	assert.Equal(t, 0, positionRows(t, f.new.DB))

	g := newFixture(t)
	ectest.MoveTo(t, g.mig, expandcontract.Expand)
	b, err := cdc.New(g.mig, g.source(), g.new.DB, apply)
	require.NoError(t, err)
	errIs(t, b.Run(t.Context()), cdc.ErrWrongPhase)
	assert.Equal(t, 0, slots(t, g.old.DB))
	assert.Equal(t, 0, publications(t, g.old.DB))
}

// TestRefusals: a table without a replica identity is refused before any
// publication is made; a stored position whose slot is gone is a lost
// slot; a server without wal_level=logical is named.
func TestRefusals(t *testing.T) {
	t.Run("no replica identity", func(t *testing.T) {
		f := newFixture(t)
		f.old.MustExec(`CREATE TABLE nokey (v text)`)
		src := f.source()
		src.Tables = []string{"items", "nokey"}
		a, err := cdc.New(f.mig, src, f.new.DB, func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil })
		require.NoError(t, err)
		err = a.Run(t.Context())
		errIs(t, err, cdc.ErrInvalidInput)
		assert.ErrorContains(t, err, "public.nokey has no replica identity")
		assert.Equal(t, 0, publications(t, f.old.DB))
		assert.Equal(t, 0, slots(t, f.old.DB))
	})
	t.Run("slot lost", func(t *testing.T) {
		f := newFixture(t)
		a, err := cdc.New(f.mig, f.source(), f.new.DB, func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil }, fast()...)
		require.NoError(t, err)
		done, cancel := start(t, a)
		awaitSlot(t, f, done)
		cancel()
		require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), context.Canceled)
		require.NoError(t, a.Slot().Drop(t.Context()))
		errIs(t, a.Run(t.Context()), cdc.ErrSlotLost)
		assert.Equal(t, 0, slots(t, f.old.DB), "a lost slot is not made again")
		require.NoError(t, a.Drop(t.Context()))
		assert.Equal(t, 0, positionRows(t, f.new.DB))
	})
	t.Run("wal_level", func(t *testing.T) {
		rp := testdb.PostgresReplica(t) // its primary runs with wal_level=replica
		store := ectest.Open(t, rp.Primary.DB, nil)
		mig := ectest.Ensure(t, store, "m")
		ectest.MoveTo(t, mig, expandcontract.DualWrite)
		rp.Primary.MustExec(itemsDDL)
		a, err := cdc.New(mig, cdc.Source{DB: rp.Primary.DB, DSN: rp.Primary.DSN, Tables: []string{"items"}}, rp.Primary.DB,
			func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil })
		require.NoError(t, err)
		errIs(t, a.Run(t.Context()), cdc.ErrNotLogical)
	})
}

// TestLagGaugeAndThrottle holds an applier inside its apply function
// while the old server writes WAL: the slot's lag grows past the
// throttle's bound, which then holds a backfill, and before the slot
// exists it holds it too. Released, the applier confirms positions past
// the WAL it had no change in, and the throttle lets the backfill go.
func TestLagGaugeAndThrottle(t *testing.T) {
	r := metrictest.New(t)
	old, new := testdb.Postgres(t), testdb.Postgres(t)
	old.MustExec(itemsDDL)
	new.MustExec(itemsDDL)
	store := ectest.Open(t, new.DB, nil, expandcontract.WithMeterProvider(r.Provider()))
	mig := ectest.Ensure(t, store, "lag")
	ectest.MoveTo(t, mig, expandcontract.DualWrite)
	f := &fixture{old: old, new: new, store: store, mig: mig}

	slot, err := cdc.SlotFor(old.DB, "lag")
	require.NoError(t, err)
	const bound = 4 << 20
	throttle := slot.Throttle(bound, time.Millisecond)
	wait, err := throttle(t.Context())
	require.NoError(t, err)
	assert.Equal(t, time.Millisecond, wait, "no slot yet: the backfill waits")

	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	a, err := cdc.New(mig, f.source(), new.DB, func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}, fast()...)
	require.NoError(t, err)
	done, _ := start(t, a)
	awaitSlot(t, f, done)
	waitFor(t, done, 30*time.Second, "the lag gauge", func() bool {
		return len(r.GaugePoints("cutover.expandcontract.cdc.lag", "cutover.migration", "lag")) == 1
	})
	old.MustExec(`INSERT INTO items VALUES (1, 'held', 1)`) // the apply function holds it
	old.MustExec(`CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 40000) AS g`)
	lag, err := slot.Lag(t.Context())
	require.NoError(t, err)
	require.Greater(t, lag, int64(bound), "the filler's WAL is kept for the held slot")
	wait, err = throttle(t.Context())
	require.NoError(t, err)
	assert.Equal(t, time.Millisecond, wait)

	unblock()
	waitFor(t, done, 60*time.Second, "the throttle to let the backfill go", func() bool {
		w, err := throttle(t.Context())
		require.NoError(t, err)
		return w == 0
	})
	lag, err = slot.Lag(t.Context())
	require.NoError(t, err)
	assert.Less(t, lag, int64(bound))
	require.NoError(t, a.Drop(t.Context()))
	_ = ectest.RunEnds(t, done, "the drop")
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	ok := func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil }
	src := f.source()
	for _, tc := range []struct {
		name   string
		m      *expandcontract.Migration
		src    cdc.Source
		target *sqlx.DB
		apply  cdc.ApplyFunc
		opts   []cdc.Option
		want   string
	}{
		{"nil migration", nil, src, f.new.DB, ok, nil, "nil migration"},
		{"nil old database", f.mig, cdc.Source{DSN: src.DSN, Tables: src.Tables}, f.new.DB, ok, nil, "nil old database"},
		{"no DSN", f.mig, cdc.Source{DB: src.DB, Tables: src.Tables}, f.new.DB, ok, nil, "empty DSN"},
		{"bad DSN", f.mig, cdc.Source{DB: src.DB, DSN: "postgres://a b:x", Tables: src.Tables}, f.new.DB, ok, nil, "DSN of the old database"},
		{"no tables", f.mig, cdc.Source{DB: src.DB, DSN: src.DSN}, f.new.DB, ok, nil, "no table"},
		{"bad table", f.mig, cdc.Source{DB: src.DB, DSN: src.DSN, Tables: []string{"items; DROP"}}, f.new.DB, ok, nil, "table 0"},
		{"table twice", f.mig, cdc.Source{DB: src.DB, DSN: src.DSN, Tables: []string{"items", "public.items"}}, f.new.DB, ok, nil, "listed twice"},
		{"nil target", f.mig, src, nil, ok, nil, "nil target"},
		{"nil apply", f.mig, src, f.new.DB, nil, nil, "nil apply"},
		{"nil option", f.mig, src, f.new.DB, ok, []cdc.Option{nil}, "option 0 is nil"},
		{"max changes", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithMaxChanges(0)}, "max changes"},
		{"max group", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithMaxGroup(-1)}, "max group"},
		{"flush", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithFlushInterval(0)}, "flush interval"},
		{"status", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithStatusInterval(0)}, "status interval"},
		{"poll", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithPollInterval(0)}, "poll interval"},
		{"slot wait", f.mig, src, f.new.DB, ok, []cdc.Option{cdc.WithSlotWait(-time.Second)}, "slot wait"},
		{"old not PostgreSQL", f.mig, cdc.Source{DB: f.store2(t), DSN: src.DSN, Tables: src.Tables}, f.new.DB, ok, nil, "must be PostgreSQL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := cdc.New(tc.m, tc.src, tc.target, tc.apply, tc.opts...)
			assert.Nil(t, a)
			errIs(t, err, cdc.ErrInvalidInput)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	for _, tc := range []struct {
		name   string
		target *sqlx.DB
		tables []cdc.Table
		want   string
	}{
		{"nil target", nil, []cdc.Table{{Source: "items"}}, "nil target"},
		{"no table", f.new.DB, nil, "no table"},
		{"bad source", f.new.DB, []cdc.Table{{Source: "it ems"}}, "source"},
		{"bad target", f.new.DB, []cdc.Table{{Source: "items", Target: "a.b.c"}}, "target"},
		{"bad column", f.new.DB, []cdc.Table{{Source: "items", Columns: map[string]string{"id": "x.y"}}}, "dot"},
		{"empty columns", f.new.DB, []cdc.Table{{Source: "items", Columns: map[string]string{}}}, "copies nothing"},
		{"bad key", f.new.DB, []cdc.Table{{Source: "items", Key: []string{"k`"}}}, "key"},
		{"twice", f.new.DB, []cdc.Table{{Source: "items"}, {Source: "public.items"}}, "given twice"},
	} {
		t.Run("SQLApply "+tc.name, func(t *testing.T) {
			fn, err := cdc.SQLApply(tc.target, tc.tables...)
			assert.Nil(t, fn)
			errIs(t, err, cdc.ErrInvalidInput)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := cdc.SlotFor(f.old.DB, "")
	errIs(t, err, cdc.ErrInvalidInput)
	_, err = cdc.SlotFor(nil, "m")
	errIs(t, err, cdc.ErrInvalidInput)
	slot, err := cdc.SlotFor(f.old.DB, "m")
	require.NoError(t, err)
	_, err = slot.Throttle(0, time.Second)(t.Context())
	errIs(t, err, cdc.ErrInvalidInput)
	_, err = slot.Lag(t.Context())
	errIs(t, err, cdc.ErrNoSlot)
}

// store2 returns a SQLite database, which is no PostgreSQL.
func (f *fixture) store2(t *testing.T) *sqlx.DB { return testdb.SQLite(t).DB }

// TestSlotNames: the names derived from migration names are valid slot
// names, distinct for distinct migrations, and stable.
func TestSlotNames(t *testing.T) {
	db := sqlx.NewDb(nil, "pgx")
	seen := map[string]string{}
	for _, name := range []string{"users", "Users", "users!", "a-b c.d", "ünïcödé", string(make([]byte, 255)[:0]) + "x", longName()} {
		s, err := cdc.SlotFor(db, name)
		require.NoError(t, err)
		n := s.Name()
		assert.Regexp(t, `^cutover_[a-z0-9_]*_[0-9a-f]{8}$`, n)
		assert.LessOrEqual(t, len(n), 63)
		if prev, ok := seen[n]; ok {
			t.Errorf("%q and %q share the slot name %s", prev, name, n)
		}
		seen[n] = name
		again, _ := cdc.SlotFor(db, name)
		assert.Equal(t, n, again.Name())
	}
}

func longName() string {
	b := make([]byte, 255)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}

// TestRetireDropsTheSlot: with the metadata in the old database, the
// statements of DropSQL, run by the Retire of a migration in contract,
// drop the slot and the publication that a stopped applier left.
func TestRetireDropsTheSlot(t *testing.T) {
	old, new := testdb.Postgres(t), testdb.Postgres(t)
	old.MustExec(itemsDDL)
	new.MustExec(itemsDDL)
	store := ectest.Open(t, old.DB, nil)
	mig := ectest.Ensure(t, store, "retired")
	ectest.MoveTo(t, mig, expandcontract.DualWrite)
	f := &fixture{old: old, new: new, store: store, mig: mig}
	a, err := cdc.New(mig, f.source(), new.DB, func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil }, fast()...)
	require.NoError(t, err)
	done, cancel := start(t, a)
	awaitSlot(t, f, done)
	cancel()
	require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), context.Canceled)
	t.Cleanup(func() {
		if slots(t, old.DB) > 0 {
			t.Error("slot left behind")
			require.NoError(t, a.Drop(context.Background()))
		}
	})

	ectest.MoveTo(t, mig, expandcontract.Backfill)
	require.NoError(t, backfillDone(t, mig))
	require.NoError(t, mig.RecordVerification(t.Context(), expandcontract.Verification{Clean: true}))
	ectest.MoveTo(t, mig, expandcontract.SwitchReads, expandcontract.Contract)
	require.Equal(t, 1, slots(t, old.DB))
	require.NoError(t, mig.Retire(t.Context(), expandcontract.Retire{Actor: "test", Reason: "old store retired", SQL: a.Slot().DropSQL()}))
	assert.Equal(t, 0, slots(t, old.DB))
	assert.Equal(t, 0, publications(t, old.DB))
	require.NoError(t, a.Slot().Drop(t.Context()), "dropping what is gone is no error")
}

// TestPublicationFollowsTheTables: an applier started again with another
// list of tables changes its publication's tables to those, and applies
// the changes of the table added.
func TestPublicationFollowsTheTables(t *testing.T) {
	f := newFixture(t)
	f.old.MustExec(`CREATE TABLE extra (id bigint PRIMARY KEY, v text)`)
	f.new.MustExec(`CREATE TABLE extra (id bigint PRIMARY KEY, v text)`)
	apply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "items"}, cdc.Table{Source: "extra"})
	require.NoError(t, err)
	published := func() []string {
		var out []string
		require.NoError(t, f.old.SelectContext(t.Context(), &out, `SELECT tablename::text FROM pg_publication_tables ORDER BY 1`))
		return out
	}
	a, err := cdc.New(f.mig, f.source(), f.new.DB, apply, fast()...)
	require.NoError(t, err)
	done, cancel := start(t, a)
	awaitSlot(t, f, done)
	assert.Equal(t, []string{"items"}, published())
	cancel()
	require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), context.Canceled)

	src := f.source()
	src.Tables = []string{"items", "public.extra"}
	a, err = cdc.New(f.mig, src, f.new.DB, apply, fast()...)
	require.NoError(t, err)
	done, _ = start(t, a)
	waitFor(t, done, 30*time.Second, "the publication of both tables", func() bool { return len(published()) == 2 })
	f.old.MustExec(`INSERT INTO extra VALUES (1, 'x')`)
	f.old.MustExec(`INSERT INTO items VALUES (1, 'y', 2)`)
	waitFor(t, done, 30*time.Second, "the rows of both tables", func() bool {
		var n int
		require.NoError(t, f.new.GetContext(t.Context(), &n, `SELECT (SELECT count(*) FROM extra) + (SELECT count(*) FROM items)`))
		return n == 2
	})
	require.NoError(t, a.Drop(t.Context()))
}
