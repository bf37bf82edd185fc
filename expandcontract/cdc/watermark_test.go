package cdc_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/cdc"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

// TestWatermarkBackfillUnderHotKeys copies a table of 3000 rows without a
// version column with the watermark backfill while four writers hammer
// 30 hot keys (updates, deletes and inserts again) and insert new rows
// until the backfill is done: the migration records the backfill done
// and a verification finds 0 keys that differ, none left stale by a
// copy.
func TestWatermarkBackfillUnderHotKeys(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const rows, hot = 3000, 30
	ddl := `CREATE TABLE hot (id bigint PRIMARY KEY, v bigint NOT NULL, note text)`
	f.old.MustExec(ddl)
	f.new.MustExec(ddl)
	f.old.MustExec(`INSERT INTO hot SELECT g, 0, 'row ' || g FROM generate_series(1, $1::bigint) AS g`, rows)

	sqlApply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "hot"})
	require.NoError(t, err)
	var copies, copiesHot atomic.Int64
	apply := func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		for _, c := range txn.Changes {
			if c.Op == cdc.Copy {
				copies.Add(1)
				if id, _ := c.Get("id"); id.(int64) <= hot {
					copiesHot.Add(1)
				}
			}
		}
		return sqlApply(ctx, tx, txn)
	}
	a, err := cdc.New(f.mig, cdc.Source{DB: f.old.DB, DSN: f.old.DSN, Tables: []string{"hot"}}, f.new.DB, apply,
		append(fast(), cdc.WithWatermarkBackfill(cdc.Backfill{Table: "hot", Key: "id", ChunkSize: 100}))...)
	require.NoError(t, err)
	done, _ := start(t, a)
	awaitSlot(t, f, done)

	// The writers run until the backfill is done, and for a bounded count.
	var (
		writers sync.WaitGroup
		stop    atomic.Bool
		writes  atomic.Int64
	)
	errs := make([]error, 4)
	for w := range errs {
		writers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; i < 100000 && !stop.Load(); i++ {
				id := r.Int64N(hot) + 1
				var q string
				switch n := r.IntN(10); {
				case n < 6:
					q = `UPDATE hot SET v = v + 1, note = 'w' WHERE id = $1`
				case n < 8:
					q = `DELETE FROM hot WHERE id = $1`
				case n < 9:
					q = `INSERT INTO hot VALUES ($1, 100, 'again') ON CONFLICT (id) DO UPDATE SET v = hot.v + 100`
				default:
					id = rows + r.Int64N(500) + 1
					q = `INSERT INTO hot VALUES ($1, 1, 'new') ON CONFLICT (id) DO UPDATE SET v = hot.v + 1`
				}
				if _, err := f.old.ExecContext(ctx, q, id); err != nil {
					errs[w] = err
					return
				}
				writes.Add(1)
				time.Sleep(500 * time.Microsecond) // a pace the applier keeps up with, so that the backfill ends while they write
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); writers.Wait() })

	ectest.MoveTo(t, f.mig, expandcontract.Backfill)
	t0 := time.Now()
	waitFor(t, done, 2*time.Minute, "the watermark backfill to be recorded done", func() bool {
		st, err := f.mig.State(ctx)
		require.NoError(t, err)
		return st.Backfill.Done()
	})
	during := writes.Load()
	took := time.Since(t0)
	stop.Store(true)
	writers.Wait()
	for w, err := range errs {
		require.NoError(t, err, "writer %d", w)
	}
	// A last row, applied after every write before it.
	f.old.MustExec(`INSERT INTO hot VALUES (-1, 0, 'last')`)
	waitFor(t, done, time.Minute, "the last row in the new store", func() bool {
		var n int
		require.NoError(t, f.new.GetContext(ctx, &n, `SELECT count(*) FROM hot WHERE id = -1`))
		return n == 1
	})
	value := "v::text || ':' || COALESCE(note, '')"
	res, err := ectest.Verify(ctx, f.mig,
		&verify.SQLRows{DB: f.old.DB, Table: "hot", Key: "id", Value: value},
		&verify.SQLRows{DB: f.new.DB, Table: "hot", Key: "id", Value: value})
	require.NoError(t, err)
	var want int64
	require.NoError(t, f.old.GetContext(ctx, &want, `SELECT count(*) FROM hot`))
	assert.Equal(t, want, res.Rows)
	assert.Zero(t, res.Differences, "stale keys: %v", res.Keys)
	assert.True(t, res.Clean())
	assert.Positive(t, during, "writes while the backfill ran")
	t.Logf("backfill done in %v; %d writes during it, %d in all; %d rows copied, %d of them of the %d hot keys (the others dropped: the log changed them between the watermarks)",
		took.Round(time.Millisecond), during, writes.Load(), copies.Load(), copiesHot.Load(), hot)
	require.NoError(t, a.Drop(ctx))
}

// TestWatermarkBackfillResumes has the first applier fail in its third
// chunk and starts another: the failed chunk's copies are rolled back with
// its group, and the second applier goes on from the stored checkpoint,
// the end of the second chunk, copying each row after it once; the stores
// end equal.
func TestWatermarkBackfillResumes(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.old.MustExec(`INSERT INTO items SELECT g, 'v' || g, g FROM generate_series(1, 2000) AS g`)
	var (
		copies atomic.Int64
		fail   atomic.Bool
	)
	fail.Store(true)
	sqlApply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "items"})
	require.NoError(t, err)
	apply := func(ctx context.Context, tx *sqlx.Tx, txn *cdc.Txn) error {
		n := int64(0)
		for _, c := range txn.Changes {
			if c.Op == cdc.Copy {
				n++
			}
		}
		if n > 0 && copies.Load() >= 100 && fail.Load() {
			return errors.New("injected failure in the third chunk")
		}
		copies.Add(n)
		return sqlApply(ctx, tx, txn)
	}
	applier := func() *cdc.Applier {
		a, err := cdc.New(f.mig, f.source(), f.new.DB, apply,
			append(fast(), cdc.WithWatermarkBackfill(cdc.Backfill{Table: "items", Key: "id", ChunkSize: 50}))...)
		require.NoError(t, err)
		return a
	}
	done, cancel := start(t, applier())
	awaitSlot(t, f, done)
	ectest.MoveTo(t, f.mig, expandcontract.Backfill)
	require.ErrorContains(t, ectest.RunEnds(t, done, "the injected failure"), "injected failure")
	cancel()
	var stored string
	require.NoError(t, f.new.GetContext(ctx, &stored, `SELECT chunk_key FROM cutover_cdc_positions`))
	assert.Equal(t, "100", stored, "the checkpoint of the second chunk")
	assert.Len(t, items(t, f.new.DB), 100, "the rows of the first two chunks")

	fail.Store(false)
	copies.Store(0)
	a := applier()
	done, _ = start(t, a)
	waitFor(t, done, 2*time.Minute, "the backfill to be recorded done", func() bool {
		st, err := f.mig.State(ctx)
		require.NoError(t, err)
		return st.Backfill.Done()
	})
	assert.Equal(t, items(t, f.old.DB), items(t, f.new.DB))
	assert.Equal(t, int64(1900), copies.Load(), "rows copied by the second applier")
	require.NoError(t, a.Drop(ctx))
}

func TestWatermarkBackfillBadInput(t *testing.T) {
	f := newFixture(t)
	ok := func(context.Context, *sqlx.Tx, *cdc.Txn) error { return nil }
	for _, tc := range []struct {
		b    cdc.Backfill
		want string
	}{
		{cdc.Backfill{Table: "other", Key: "id"}, "not among Source.Tables"},
		{cdc.Backfill{Table: "items", Key: "id", ChunkSize: -1}, "chunk size"},
		{cdc.Backfill{Table: "items", Key: "a.b"}, "backfill key"},
		{cdc.Backfill{Table: "items", Key: "id", Kind: 9}, "key kind"},
	} {
		_, err := cdc.New(f.mig, f.source(), f.new.DB, ok, cdc.WithWatermarkBackfill(tc.b))
		errIs(t, err, cdc.ErrInvalidInput)
		assert.ErrorContains(t, err, tc.want)
	}
}
