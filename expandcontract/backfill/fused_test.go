package backfill_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// hold is a throttle hook that holds the runner before its batch number
// n (from 1): the hook closes stuck and waits until unstick is closed.
type hold struct {
	n              int64
	calls          atomic.Int64 // the hook's calls
	stuck, unstick chan struct{}
}

func holdBefore(n int64) *hold {
	return &hold{n: n, stuck: make(chan struct{}), unstick: make(chan struct{})}
}

// option returns the throttle hook as a runner's option.
func (h *hold) option() backfill.Option {
	return backfill.WithThrottle(func(context.Context) (time.Duration, error) {
		if h.calls.Add(1) == h.n {
			close(h.stuck)
			<-h.unstick
		}
		return 0, nil
	})
}

// TestSQLBatchFencing stops a runner with an SQLBatch before its third
// batch, where on PostgreSQL each batch after the first runs with its
// checkpoint as one statement, and then pauses the backfill, or hands its
// lease to another runner (as a takeover would, without the clock moving
// on: a sample of the progress is not due, so the batch is fused): the
// batch is undone with its checkpoint, and in the end every row is copied
// once.
func TestSQLBatchFencing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, how := range []string{"pause", "takeover"} {
			t.Run(how, func(t *testing.T) {
				table := "fenced_" + how
				ids := intIDs(50)
				createTable(t, db, table, expandcontract.IntKeys, anys(ids))
				sql := strings.ReplaceAll(copySQL, "customers", table)
				h := newLogSignal()
				c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
				s := ectest.Open(t, db.DB, c, expandcontract.WithLogger(slog.New(h)))
				other := ectest.Open(t, secondPool(t, db), c)
				ectest.ToBackfill(t, s, table)
				keys := backfill.Keyset{Table: table, Column: "id"}

				hold := holdBefore(3)
				a, err := backfill.New(ectest.Migration(t, s, table), keys, backfill.SQLBatch(sql), backfill.WithBatchSize(10),
					backfill.WithOwner("runner-a"), backfill.WithLease(time.Minute), backfill.WithPollInterval(time.Millisecond),
					hold.option())
				require.NoError(t, err)
				stuck, unstick := hold.stuck, hold.unstick
				done := make(chan error, 1)
				go func() { done <- a.Run(t.Context()) }()
				<-stuck
				require.Equal(t, int64(20), state(t, s, table).Rows)
				copied := func() int {
					var n int
					require.NoError(t, db.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM `+table+` WHERE copies > 0`))
					return n
				}

				if how == "pause" {
					require.NoError(t, backfill.Pause(t.Context(), ectest.Migration(t, other, table), "op", "test"))
					close(unstick)
					h.wait(t, "backfill paused")
					assert.Equal(t, 20, copied(), "the batch after the pause is undone")
					assert.Equal(t, int64(20), state(t, s, table).Rows)
					require.NoError(t, backfill.Resume(t.Context(), ectest.Migration(t, other, table), "op", "test"))
					require.NoError(t, <-done)
				} else {
					_, err := db.ExecContext(t.Context(), db.Rebind(`UPDATE cutover_migrations SET lease_owner = ? WHERE name = ?`),
						"runner-b", table)
					require.NoError(t, err)
					close(unstick)
					require.ErrorIs(t, <-done, backfill.ErrLeaseLost)
					assert.Equal(t, 20, copied(), "the batch after the takeover is undone")
					assert.Equal(t, int64(20), state(t, s, table).Rows)
					b, err := backfill.New(ectest.Migration(t, other, table), keys, backfill.SQLBatch(sql), backfill.WithBatchSize(10),
						backfill.WithOwner("runner-b"))
					require.NoError(t, err)
					require.NoError(t, b.Run(t.Context()))
				}
				checkCopiedOnce(t, db.DB, table, len(ids))
				st := state(t, s, table)
				assert.True(t, st.Done())
				assert.Equal(t, int64(len(ids)), st.Rows)
			})
		}
	})
}

// TestSQLBatchFailsAfterTheFirstBatch runs an SQLBatch whose statement
// fails on a row of its second batch, where on PostgreSQL the batch and
// its checkpoint are one statement: the run returns the statement's own
// error, naming the batch, the checkpoint stays after the first batch, and
// nothing of the second batch is written.
func TestSQLBatchFailsAfterTheFirstBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		big := db.Dialect.TypeBigInt()
		_, err := db.ExecContext(t.Context(), `CREATE TABLE checked (id `+big+` PRIMARY KEY, v `+big+` NOT NULL,
			c `+big+`, CONSTRAINT c_not_15 CHECK (c <> 15))`)
		require.NoError(t, err)
		for id := 1; id <= 30; id++ {
			_, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO checked (id, v) VALUES (?, ?)`), id, id)
			require.NoError(t, err)
		}
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "checked")
		bf, err := backfill.New(ectest.Migration(t, s, "checked"), backfill.Keyset{Table: "checked", Column: "id"},
			backfill.SQLBatch(`UPDATE checked SET c = v WHERE id > :from AND id <= :to`), backfill.WithBatchSize(10))
		require.NoError(t, err)

		err = bf.Run(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "batch (10, 20]")
		assert.NotErrorIs(t, err, backfill.ErrLeaseLost)
		st := state(t, s, "checked")
		assert.False(t, st.Done())
		assert.Equal(t, "10", st.Checkpoint)
		assert.Equal(t, int64(10), st.Rows)
		assert.Empty(t, st.LeaseOwner, "the lease is given back")
		var copied int
		require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM checked WHERE c IS NOT NULL`))
		assert.Equal(t, 10, copied, "the first batch only")
	})
}
