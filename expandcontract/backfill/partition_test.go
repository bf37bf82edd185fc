package backfill_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// rangeState is a row of the ranges table.
type rangeState struct {
	No   int64   `db:"range_no"`
	From *string `db:"range_from"`
	To   *string `db:"range_to"`
	Rows int64   `db:"range_rows"`
	Done *int64  `db:"done_at"`
	Held *string `db:"lease_owner"`
}

// ranges reads the ranges of the migration name, in order.
func ranges(t *testing.T, db *testdb.DB, name string) []rangeState {
	t.Helper()
	var out []rangeState
	require.NoError(t, db.SelectContext(t.Context(), &out, db.Rebind(`SELECT range_no, range_from, range_to, range_rows, done_at, lease_owner
		FROM cutover_backfill_ranges WHERE migration = ? ORDER BY range_no`), name))
	return out
}

// TestPartitionedBackfill runs four runners at once over a backfill split
// into four ranges of integer keys, and one runner over one split into
// three ranges of text keys: every row is copied once, every range is
// done, its rows add up to the backfill's, and the backfill is done.
func TestPartitionedBackfill(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, kind := range []expandcontract.KeyKind{expandcontract.IntKeys, expandcontract.TextKeys} {
			t.Run(kind.String(), func(t *testing.T) {
				table := "parts_" + kind.String()
				var ids []any
				runners, parts := 4, 4
				if kind == expandcontract.TextKeys {
					ids, runners, parts = anys(textIDs(60)), 1, 3
				} else {
					ids = anys(intIDs(95))
				}
				createTable(t, db, table, kind, ids)
				s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
				ectest.ToBackfill(t, s, table)
				keys := backfill.Keyset{Table: table, Column: "id", Kind: kind}
				sql := backfill.SQLBatch(strings.ReplaceAll(copySQL, "customers", table))

				var wg sync.WaitGroup
				errs := make([]error, runners)
				var mu sync.Mutex
				var done int
				for i := range runners {
					other := ectest.Open(t, secondPool(t, db), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
					r, err := backfill.New(ectest.Migration(t, other, table), keys, sql, backfill.WithBatchSize(7),
						backfill.WithRanges(parts), backfill.WithOwner(fmt.Sprintf("runner-%d", i)),
						backfill.WithPollInterval(time.Millisecond),
						backfill.WithProgress(func(p backfill.Progress) {
							if p.Done {
								mu.Lock()
								done++
								mu.Unlock()
							}
						}))
					require.NoError(t, err)
					wg.Go(func() { errs[i] = r.Run(t.Context()) })
				}
				wg.Wait()
				require.NoError(t, errors.Join(errs...))
				checkCopiedOnce(t, db.DB, table, len(ids))
				st := state(t, s, table)
				assert.True(t, st.Done())
				assert.Equal(t, int64(len(ids)), st.Rows)
				assert.Equal(t, int64(len(ids)), st.Total)
				assert.Positive(t, done, "a runner reports the end")

				rs := ranges(t, db, table)
				require.Len(t, rs, parts)
				var sum int64
				for i, r := range rs {
					assert.Equal(t, int64(i), r.No)
					assert.NotNil(t, r.Done, "range %d done", i)
					assert.Nil(t, r.Held, "range %d's lease given back", i)
					assert.Positive(t, r.Rows, "range %d copied rows", i)
					sum += r.Rows
					if i > 0 {
						assert.Equal(t, rs[i-1].To, r.From, "range %d starts where %d ends", i, i-1)
					}
				}
				assert.Nil(t, rs[0].From, "the first range starts at the first key")
				assert.Nil(t, rs[parts-1].To, "the last range goes on past the last key")
				assert.Equal(t, int64(len(ids)), sum)
				details := strings.Join(events(t, s, table), "\n")
				assert.Contains(t, details, fmt.Sprintf("split into %d ranges of %s keys, about %d rows", parts, kind, len(ids)))
				assert.Contains(t, details, fmt.Sprintf("done: every range copied, %d rows", len(ids)))
			})
		}
	})
}

// TestPartitionedBackfillTakeover holds a runner of a backfill split into
// three ranges before its third batch, in the first range, until its
// lease has run out: the backfill is not done, and the move to
// switchreads refused, while the range is not, and the status counts the
// ranges; another runner takes the
// range over from its checkpoint and copies the rest; the first runner's
// batch after that is not committed, and it stops with ErrLeaseLost.
// Every row is copied once.
func TestPartitionedBackfillTakeover(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(50)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := ectest.Open(t, db.DB, c)
		other := ectest.Open(t, secondPool(t, db), c)
		m := ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		hold := holdBefore(3)
		a, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(5),
			backfill.WithRanges(3), backfill.WithOwner("runner-a"), backfill.WithLease(time.Minute), hold.option())
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- a.Run(t.Context()) }()
		<-hold.stuck
		rs := ranges(t, db, "phones")
		require.Len(t, rs, 3)
		require.NotNil(t, rs[0].Held)
		assert.Equal(t, "runner-a", *rs[0].Held)
		status, err := m.Status(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Ranges{Total: 3, Leased: 1}, status.Backfill.Ranges)
		assert.Equal(t, int64(10), status.State.Backfill.Rows, "the status counts the ranges' rows")
		assert.Equal(t, int64(10), rs[0].Rows)

		c.Advance(time.Minute + time.Second)
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test"})
		require.ErrorIs(t, err, expandcontract.ErrGuard, "the backfill is not done while a range is not")

		b, err := backfill.New(ectest.Migration(t, other, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(5),
			backfill.WithRanges(3), backfill.WithOwner("runner-b"))
		require.NoError(t, err)
		require.NoError(t, b.Run(t.Context()))
		assert.True(t, state(t, s, "phones").Done())
		status, err = m.Status(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Ranges{Total: 3, Done: 3}, status.Backfill.Ranges)

		close(hold.unstick)
		require.ErrorIs(t, <-done, backfill.ErrLeaseLost)
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		st := state(t, s, "phones")
		assert.Equal(t, int64(len(ids)), st.Rows)
		for _, r := range ranges(t, db, "phones") {
			assert.NotNil(t, r.Done)
		}
	})
}

// TestPartitionedBackfillRefusals: a backfill split into ranges is not
// run without WithRanges, one started without them is not split, a
// cancellation stops a split one, and WithRanges takes 1 to MaxRanges.
func TestPartitionedBackfillRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(30)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		split := ectest.ToBackfill(t, s, "split")
		require.NoError(t, backfill.Cancel(t.Context(), split, "op", "test"))
		r, err := backfill.New(split, keys, backfill.SQLBatch(copySQL), backfill.WithRanges(2))
		require.NoError(t, err)
		require.ErrorIs(t, r.Run(t.Context()), backfill.ErrCanceled)
		assert.Empty(t, ranges(t, db, "split"), "a canceled backfill is not split")
		require.NoError(t, backfill.ResetCancel(t.Context(), split, "op", "test"))

		hold := holdBefore(2)
		r, err = backfill.New(split, keys, backfill.SQLBatch(copySQL), backfill.WithRanges(2), backfill.WithBatchSize(5), hold.option())
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- r.Run(t.Context()) }()
		<-hold.stuck
		single, err := backfill.New(split, keys, backfill.SQLBatch(copySQL))
		require.NoError(t, err)
		ectest.ErrorIs(t, single.Run(t.Context()), "split into ranges; run it with backfill.WithRanges", backfill.ErrInvalidInput)
		require.NoError(t, backfill.Cancel(t.Context(), split, "op", "test"))
		close(hold.unstick)
		require.ErrorIs(t, <-done, backfill.ErrCanceled)
		var copied int
		require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM customers WHERE copies > 0`))
		assert.Equal(t, 5, copied, "the first batch only: the one after the cancellation is undone")
		status, err := split.Status(t.Context())
		require.NoError(t, err)
		assert.Equal(t, int64(5), status.State.Backfill.Rows)

		whole := ectest.ToBackfill(t, s, "whole")
		hold = holdBefore(2)
		single, err = backfill.New(whole, keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(5), hold.option())
		require.NoError(t, err)
		go func() { done <- single.Run(t.Context()) }()
		<-hold.stuck
		r, err = backfill.New(whole, keys, backfill.SQLBatch(copySQL), backfill.WithRanges(2))
		require.NoError(t, err)
		ectest.ErrorIs(t, r.Run(t.Context()), "started without ranges", backfill.ErrInvalidInput)
		close(hold.unstick)
		require.NoError(t, <-done)
		assert.Empty(t, ranges(t, db, "whole"))

		for _, n := range []int{0, -1, backfill.MaxRanges + 1} {
			_, err := backfill.New(whole, keys, backfill.SQLBatch(copySQL), backfill.WithRanges(n))
			ectest.ErrorIs(t, err, fmt.Sprintf("ranges must be 1 to %d, got %d", backfill.MaxRanges, n), backfill.ErrInvalidInput)
		}
	})
}
