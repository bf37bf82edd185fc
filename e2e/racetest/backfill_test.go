package racetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// cols is a migration inside one table, as in a column rename: the value
// moves from the column old_val of kvc to its column new_val, which the
// backfill fills with one UPDATE per batch.
type cols struct {
	t     *testing.T
	db    *testdb.DB
	store *expandcontract.Store
	log   *repair.Log
}

// copySQL is the backfill's batch: one statement that reads and writes
// each row of the range.
const copySQL = backfill.SQLBatch(`UPDATE kvc SET new_val = old_val WHERE id > :from AND id <= :to`)

// newCols creates kvc with the ids 1 to n, their old_val set and their
// new_val NULL, and moves the migration to the backfill phase.
func newCols(t *testing.T, db *testdb.DB, n int64) *cols {
	t.Helper()
	d := db.Dialect
	_, err := db.ExecContext(t.Context(), `CREATE TABLE kvc (id `+d.TypeBigInt()+` PRIMARY KEY, old_val `+
		d.TypeKeyText()+` NOT NULL, new_val `+d.TypeKeyText()+`)`)
	require.NoError(t, err)
	for id := int64(1); id <= n; id++ {
		_, err := db.ExecContext(t.Context(), d.Rebind(`INSERT INTO kvc (id, old_val) VALUES (?, ?)`), id, fmt.Sprintf("init-%d", id))
		require.NoError(t, err)
	}
	store, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithLogger(quiet))
	require.NoError(t, err)
	c := &cols{t: t, db: db, store: store}
	c.log, err = repair.NewLog(suite.Migration(store, migration))
	require.NoError(t, err)
	moveTo(t, store, expandcontract.Backfill, nil)
	return c
}

// write sets one column of the row id, last writer wins.
func (c *cols) write(ctx context.Context, side cutover.Side, id int64, val string) error {
	col := "old_val"
	if side == cutover.New {
		col = "new_val"
	}
	_, err := c.db.ExecContext(ctx, c.db.Dialect.Rebind(`UPDATE kvc SET `+col+` = ? WHERE id = ?`), val, id)
	if err != nil {
		return fmt.Errorf("write %s %d: %w", side, id, err)
	}
	return nil
}

func (c *cols) save(id int64, val string) storeFunc {
	return func(ctx context.Context, side cutover.Side) error { return c.write(ctx, side, id, val) }
}

// differing returns the ids whose new_val is not old_val.
func (c *cols) differing() []int64 {
	c.t.Helper()
	var ids []int64
	require.NoError(c.t, c.db.SelectContext(c.t.Context(), &ids,
		`SELECT id FROM kvc WHERE new_val IS NULL OR new_val <> old_val ORDER BY id`))
	return ids
}

func (c *cols) verify() verify.Result {
	c.t.Helper()
	res, err := suite.Verify(c.t.Context(), suite.Migration(c.store, migration),
		&verify.SQLRows{DB: c.db.DB, Table: "kvc", Key: "id", Value: "old_val"},
		&verify.SQLRows{DB: c.db.DB, Table: "kvc", Key: "id", Value: "new_val"},
		verify.WithChunkSize(7))
	require.NoError(c.t, err)
	return res
}

// repair copies the row's old_val to its new_val, in one statement.
func (c *cols) repair(ctx context.Context, r cutover.Repair) error {
	_, err := c.db.ExecContext(ctx, c.db.Dialect.Rebind(`UPDATE kvc SET new_val = old_val WHERE id = ?`), r.Key)
	return err
}

// hookedBatch runs an SQLBatch over each key range and then calls after,
// while the batch's transaction is still open.
type hookedBatch struct {
	sql   backfill.SQLBatch
	after func(r expandcontract.KeyRange)
}

func (h hookedBatch) CopyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	if r.From == nil {
		r.From = int64(0) // the first batch; the keys start at 1
	}
	n, err := h.sql.CopyRange(ctx, tx, r)
	if err == nil {
		h.after(r)
	}
	return n, err
}

// TestSQLBatchHoldsDualWritesOffTheRowsItCopies starts, from inside each
// batch of an SQLBatch backfill, after its UPDATE and before its commit, a
// dual write of the batch's last key, while other goroutines dual write the
// other keys, one writer per key. On every database the dual write's first
// call waits for the batch to commit: the UPDATE that copies old_val to
// new_val holds the rows it read until then (row locks on PostgreSQL and
// MariaDB, the database's write lock on SQLite), so no dual write can land
// between its read and its write. No key ends with a stale copy, and the
// verification is clean without any repair.
func TestSQLBatchHoldsDualWritesOffTheRowsItCopies(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const n, batch = 20, 5
		c := newCols(t, db, n)
		w := newWriter(t, c.log, cutover.DualWrite)
		ctx := t.Context()

		var (
			mu      sync.Mutex
			blocked = map[int64]bool{}
			errs    []error
			writes  sync.WaitGroup
		)
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		hooked := hookedBatch{sql: copySQL, after: func(r expandcontract.KeyRange) {
			id := r.To.(int64)
			mu.Lock()
			_, seen := blocked[id]
			blocked[id] = false
			mu.Unlock()
			if seen {
				return // the batch is being retried
			}
			oldDone := make(chan struct{})
			writes.Go(func() {
				err := w.Write(ctx, key(id), func(ctx context.Context, side cutover.Side) error {
					err := c.write(ctx, side, id, "dual")
					if side == cutover.Old {
						close(oldDone)
					}
					return err
				})
				if err != nil {
					fail(err)
				}
			})
			held := !within(oldDone, hold)
			mu.Lock()
			blocked[id] = held
			mu.Unlock()
		}}
		for id := int64(1); id <= n; id++ {
			if id%batch == 0 {
				continue // the batches' own dual writes take these
			}
			writes.Go(func() {
				for i := range 3 {
					if err := w.Write(ctx, key(id), c.save(id, fmt.Sprintf("free-%d", i))); err != nil {
						fail(err)
						return
					}
				}
			})
		}
		bf, err := backfill.New(suite.Migration(c.store, migration), backfill.Keyset{Table: "kvc", Column: "id"}, hooked,
			backfill.WithBatchSize(batch))
		require.NoError(t, err)
		require.NoError(t, bf.Run(ctx))
		writes.Wait()
		require.NoError(t, errors.Join(errs...))

		t.Logf("%s: dual writes started inside a batch, by key, held back until its commit: %v", db.Name, blocked)
		assert.Equal(t, map[int64]bool{5: true, 10: true, 15: true, 20: true}, blocked,
			"every dual write of a row the batch copied waited for the batch")
		assert.Empty(t, c.differing(), "no stale copy")
		assert.True(t, c.verify().Clean())
		assert.Zero(t, pending(t, c.log), "nothing to repair")
	})
}

// oldRange reads the rows of r from kv_old.
func (e *kv) oldRange(ctx context.Context, r expandcontract.KeyRange) ([]kvRow, error) {
	q, args := `SELECT id, val FROM kv_old WHERE id <= ?`, []any{r.To}
	if r.From != nil {
		q += ` AND id > ?`
		args = append(args, r.From)
	}
	var rows []kvRow
	err := e.oldDB.SelectContext(ctx, &rows, e.oldDB.Dialect.Rebind(q+` ORDER BY id`), args...)
	return rows, err
}

type kvRow struct {
	ID  int64  `db:"id"`
	Val string `db:"val"`
}

// TestGoBatchFromAnotherDatabaseCanCopyAStaleValue backfills a table of
// another database with a BatchFunc that reads a range from the old
// database and upserts it into the new one. Inside each batch, between the
// read and the upsert, a dual write of the batch's last key runs, and the
// batch waits for it to finish (on SQLite for at most half a second). On
// PostgreSQL and MariaDB it finishes, and the batch then copies the value
// it read before the write over the write's newer value: the new store
// regresses on every such key. On SQLite the batch's transaction holds the new
// database's write lock from its start, so the dual write's new-store
// call waits for the commit and lands last: nothing regresses. A
// verification finds exactly the regressed keys, and a repair copying old
// to new fixes them.
func TestGoBatchFromAnotherDatabaseCanCopyAStaleValue(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const n, batch = 20, 5
		oldDB := testdb.Open(t, db.Name)
		e := newKV(t, oldDB, db, expandcontract.Backfill)
		e.seed(n, false) // the new table starts empty
		w := e.writer(cutover.DualWrite)
		ctx := t.Context()
		// How long a batch waits for its dual write. SQLite holds the write
		// until the batch commits, which the test checks; waiting longer
		// there would only slow it down.
		wait := 10 * time.Second
		if db.Name == sqldialect.SQLite {
			wait = hold
		}

		var (
			mu        sync.Mutex
			completed = map[int64]bool{}
			errs      []error
			writes    sync.WaitGroup
		)
		copyRange := backfill.BatchFunc(func(bctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			rows, err := e.oldRange(bctx, r)
			if err != nil {
				return 0, err
			}
			id := r.To.(int64)
			if _, seen := completed[id]; !seen {
				completed[id] = false
				newCalled, done := make(chan struct{}), make(chan struct{})
				writes.Go(func() {
					defer close(done)
					err := w.Write(ctx, key(id), func(ctx context.Context, side cutover.Side) error {
						if side == cutover.New {
							close(newCalled)
						}
						return e.write(ctx, side, id, "dual")
					})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				})
				if err := await(bctx, newCalled, "the dual write's new-store call"); err != nil {
					return 0, err
				}
				completed[id] = within(done, wait)
			}
			for _, row := range rows {
				if _, err := tx.ExecContext(bctx, e.upsert, row.ID, row.Val); err != nil {
					return 0, err
				}
			}
			return int64(len(rows)), nil
		})
		bf, err := backfill.New(suite.Migration(e.store, migration), backfill.Keyset{DB: oldDB.DB, Table: "kv_old", Column: "id"},
			copyRange, backfill.WithBatchSize(batch))
		require.NoError(t, err)
		require.NoError(t, bf.Run(ctx))
		writes.Wait()
		require.NoError(t, errors.Join(errs...))

		var raced []int64
		for id, done := range completed {
			if done {
				raced = append(raced, id)
			}
		}
		slices.Sort(raced)
		regressed := e.differing()
		t.Logf("%s: dual writes that finished between a batch's read and its write: %v; keys left stale in the new store: %v",
			db.Name, raced, regressed)
		assert.Equal(t, raced, regressed, "a key regresses exactly when its dual write lands inside the batch's window")
		if db.Name == sqldialect.SQLite {
			assert.Empty(t, raced, "SQLite's write lock, taken when the batch begins, holds the dual write back")
		} else {
			assert.Equal(t, []int64{5, 10, 15, 20}, raced, "nothing holds the dual write back")
		}
		for _, id := range regressed {
			assert.Equal(t, "dual", e.value(cutover.Old, id))
			assert.Equal(t, fmt.Sprintf("init-%d", id), e.value(cutover.New, id), "the batch copied the value it read before the write")
		}

		res := e.verify()
		assert.Equal(t, int64(len(regressed)), res.Changed)
		assert.Zero(t, res.Missing+res.Extra)
		assert.Equal(t, keyStrings(regressed), res.Keys)
		assert.Equal(t, keyStrings(regressed), nilIfEmpty(entryKeys(entries(t, e.log, verify.Op))))
		drain(t, e.log, e.copyOldToNew)
		assert.True(t, e.verify().Clean())
		assert.Empty(t, e.differing())
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestRandomWritesDuringBackfillConvergeAfterVerifyAndRepair runs a
// backfill while several goroutines save each key at once, in sweeps, with
// random pauses between the two store calls of a save; with an SQLBatch
// over one table, and with a BatchFunc from another database that pauses
// between its read and its write. Once both stop, a verification finds
// exactly the keys that differ, a repairer fixes them, and the next
// verification is clean.
func TestRandomWritesDuringBackfillConvergeAfterVerifyAndRepair(t *testing.T) {
	const keys, writers, batch = 32, 4, 4
	type setup struct {
		writer    *dualwrite.Writer
		backfill  *backfill.Runner
		save      func(id int64, val string) storeFunc
		differing func() []int64
		verify    func() verify.Result
		log       *repair.Log
		repair    repair.Func
	}
	for _, variant := range []struct {
		name  string
		setup func(t *testing.T, db *testdb.DB, seed uint64) setup
	}{
		{"sqlbatch", func(t *testing.T, db *testdb.DB, _ uint64) setup {
			c := newCols(t, db, keys)
			bf, err := backfill.New(suite.Migration(c.store, migration), backfill.Keyset{Table: "kvc", Column: "id"}, copySQL,
				backfill.WithBatchSize(batch), backfill.WithBatchPause(2*time.Millisecond))
			require.NoError(t, err)
			return setup{newWriter(t, c.log, cutover.DualWrite), bf, c.save, c.differing, c.verify, c.log, c.repair}
		}},
		{"gobatch", func(t *testing.T, db *testdb.DB, seed uint64) setup {
			oldDB := testdb.Open(t, db.Name)
			oldDB.SetMaxOpenConns(32)
			e := newKV(t, oldDB, db, expandcontract.Backfill)
			e.seed(keys, false)
			r := rand.New(rand.NewPCG(seed, 99))
			copyRange := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, kr expandcontract.KeyRange) (int64, error) {
				rows, err := e.oldRange(ctx, kr)
				if err != nil {
					return 0, err
				}
				time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond) // widen the window between read and write
				for _, row := range rows {
					if _, err := tx.ExecContext(ctx, e.upsert, row.ID, row.Val); err != nil {
						return 0, err
					}
				}
				return int64(len(rows)), nil
			})
			bf, err := backfill.New(suite.Migration(e.store, migration), backfill.Keyset{DB: oldDB.DB, Table: "kv_old", Column: "id"},
				copyRange, backfill.WithBatchSize(batch), backfill.WithBatchPause(2*time.Millisecond))
			require.NoError(t, err)
			return setup{e.writer(cutover.DualWrite), bf, e.save, e.differing, e.verify, e.log, e.copyOldToNew}
		}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				seed := rand.Uint64()
				t.Logf("seed %d", seed)
				db.SetMaxOpenConns(32) // within every server's connection limit
				s := variant.setup(t, db, seed)
				ctx := t.Context()

				var backfilled atomic.Bool
				var bfErr error
				var bg sync.WaitGroup
				bg.Go(func() {
					defer backfilled.Store(true)
					bfErr = s.backfill.Run(ctx)
				})
				var mu sync.Mutex
				var errs []error
				sweeps := 0
				// Sweep until the backfill is done, and once more; at most 100.
				for ; sweeps < 100; sweeps++ {
					done := backfilled.Load()
					r := rand.New(rand.NewPCG(seed, uint64(sweeps)))
					gate := make(chan struct{})
					var wg sync.WaitGroup
					for id := int64(1); id <= keys; id++ {
						for g := range writers {
							pause := time.Duration(r.IntN(1000)) * time.Microsecond
							val := fmt.Sprintf("s%d-g%d", sweeps, g)
							save := s.save(id, val)
							wg.Go(func() {
								<-gate
								err := s.writer.Write(ctx, key(id), func(ctx context.Context, side cutover.Side) error {
									if side == cutover.New {
										time.Sleep(pause)
									}
									return save(ctx, side)
								})
								if err != nil {
									mu.Lock()
									errs = append(errs, err)
									mu.Unlock()
								}
							})
						}
					}
					close(gate)
					wg.Wait()
					if done {
						sweeps++
						break
					}
				}
				bg.Wait()
				require.NoError(t, bfErr)
				require.NoError(t, errors.Join(errs...))

				diff := s.differing()
				t.Logf("%s on %s: %d sweeps of %d saves at once on each of %d keys during the backfill: %d keys differ afterwards: %v",
					variant.name, db.Name, sweeps, writers, keys, len(diff), diff)
				res := s.verify()
				assert.Equal(t, int64(len(diff)), res.Differences, "the verification after the last write finds every difference")
				assert.Equal(t, keyStrings(diff), res.Keys)
				drain(t, s.log, s.repair)
				res = s.verify()
				assert.True(t, res.Clean(), "%+v", res)
				assert.Empty(t, s.differing())
				assert.Zero(t, pending(t, s.log))
			})
		})
	}
}
