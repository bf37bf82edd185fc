package backfill_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// However a run ends, its heartbeat stops and its lease is given back.

// runPanics runs bf and returns the value it panicked with, or fails the
// test if it returned.
func runPanics(t *testing.T, bf *backfill.Runner) (p any) {
	t.Helper()
	defer func() { p = recover() }()
	err := bf.Run(t.Context())
	t.Fatalf("Run returned %v; want a panic", err)
	return nil
}

// driverGoroutines are goroutines the database drivers keep per
// connection, which a run may open.
var driverGoroutines = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/go-sql-driver/mysql.(*mysqlConn).startWatcher.func1"),
	goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
}

// TestBackfillPanicStopsTheHeartbeatAndGivesBackTheLease panics in each
// hook a runner calls: the panic reaches Run's caller unchanged, the
// heartbeat goroutine is gone by then, and another runner takes the lease
// at once, long before it would run out, and finishes the backfill.
func TestBackfillPanicStopsTheHeartbeatAndGivesBackTheLease(t *testing.T) {
	type hooks struct {
		batch    func(table string) backfill.Batch
		throttle func(context.Context) (time.Duration, error)
		progress func(backfill.Progress)
	}
	boom := errors.New("boom")
	cases := map[string]hooks{
		"batch": {batch: func(table string) backfill.Batch {
			return backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
				if _, err := copyRangeIn(ctx, tx, table, r); err != nil {
					return 0, err
				}
				panic(boom)
			})
		}},
		"throttle": {throttle: func(context.Context) (time.Duration, error) { panic(boom) }},
		"progress": {progress: func(backfill.Progress) { panic(boom) }},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for name, h := range cases {
			t.Run(name, func(t *testing.T) {
				table := "customers_" + name
				createTable(t, db, table, expandcontract.IntKeys, anys(intIDs(30)))
				c := ectest.NewClock()
				s := ectest.Open(t, db.DB, c, expandcontract.WithTablePrefix("cutover_"+name+"_"))
				ectest.ToBackfill(t, s, "phones")
				keys := backfill.Keyset{Table: table, Column: "id"}
				opts := []backfill.Option{backfill.WithBatchSize(10), backfill.WithOwner("panicker"),
					backfill.WithLease(time.Hour)}
				if h.throttle != nil {
					opts = append(opts, backfill.WithThrottle(h.throttle))
				}
				if h.progress != nil {
					opts = append(opts, backfill.WithProgress(h.progress))
				}
				var batch backfill.Batch = copyRangeOf(table)
				if h.batch != nil {
					batch = h.batch(table)
				}
				bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, batch, opts...)
				require.NoError(t, err)

				before := goleak.IgnoreCurrent()
				assert.Same(t, boom, runPanics(t, bf), "the panic reaches the caller as it was")
				require.NoError(t, goleak.Find(append(driverGoroutines, before)...), "goroutines of the run still running")

				st := state(t, s, "phones")
				assert.Empty(t, st.LeaseOwner, "the lease is given back")
				assert.True(t, st.LeaseUntil.IsZero())
				want := int64(0)
				if name == "progress" {
					want = 10 // the first batch committed before its report
				}
				assert.Equal(t, want, st.Rows, "a batch in flight is rolled back")

				other, err := backfill.New(ectest.Migration(t, s, "phones"), keys, copyRangeOf(table),
					backfill.WithBatchSize(10), backfill.WithOwner("successor"))
				require.NoError(t, err)
				require.NoError(t, other.Run(t.Context()), "another runner takes the lease at once")
				checkCopiedOnce(t, db.DB, table, 30)

				// The runner that panicked may run again.
				bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, batch, opts...)
				require.NoError(t, err)
				require.NoError(t, bf.Run(t.Context()), "the backfill is done")
			})
		}
	})
}

// TestBackfillGoexitGivesBackTheLease ends a run with runtime.Goexit, as
// t.FailNow in a batch function does: the lease is given back too.
func TestBackfillGoexitGivesBackTheLease(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(10)))
		s := ectest.Open(t, db.DB, ectest.NewClock())
		ectest.ToBackfill(t, s, "phones")
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
				_, _ = copyRange(ctx, tx, r)
				runtime.Goexit()
				return 0, nil
			}), backfill.WithLease(time.Hour))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = bf.Run(t.Context())
		}()
		<-done
		st := state(t, s, "phones")
		assert.Empty(t, st.LeaseOwner, "the lease is given back")
		assert.Zero(t, st.Rows)
	})
}
