package backfill_test

import (
	"context"
	"errors"
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

// TestHoldHoldsTheNextBatch holds a backfill with WithHold: the state says
// why while it holds, nothing is copied, and once the hold gives no reason
// the backfill copies every row and the reason is gone.
func TestHoldHoldsTheNextBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(20)))
		s := ectest.Open(t, db.DB, nil)
		m := ectest.ToBackfill(t, s, "phones")
		var held atomic.Bool
		held.Store(true)
		bf, err := backfill.New(m, backfill.Keyset{Table: "customers", Column: "id"}, backfill.SQLBatch(copySQL),
			backfill.WithBatchSize(5), backfill.WithPollInterval(5*time.Millisecond),
			backfill.WithHold(func(context.Context) (string, error) {
				if held.Load() {
					return "new store slow", nil
				}
				return "", nil
			}))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()
		waitFor(t, 30*time.Second, "the runner to record that it is held", func() bool {
			return state(t, s, "phones").Throttled == "new store slow"
		})
		assert.Zero(t, state(t, s, "phones").Rows, "nothing copied while held")
		held.Store(false)
		require.NoError(t, ectest.RunEnds(t, done, "the backfill, once the hold is gone"))
		b := state(t, s, "phones")
		assert.True(t, b.Done())
		assert.Equal(t, int64(20), b.Rows)
		assert.Empty(t, b.Throttled)
	})
}

// An error from the hold stops the run with it.
func TestHoldErrorStopsTheRun(t *testing.T) {
	db := testdb.SQLite(t)
	createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(5)))
	s := ectest.Open(t, db.DB, nil)
	m := ectest.ToBackfill(t, s, "phones")
	errHealth := errors.New("monitor gone")
	bf, err := backfill.New(m, backfill.Keyset{Table: "customers", Column: "id"}, backfill.SQLBatch(copySQL),
		backfill.WithHold(func(context.Context) (string, error) { return "", errHealth }))
	require.NoError(t, err)
	err = bf.Run(t.Context())
	require.ErrorIs(t, err, errHealth)
	assert.ErrorContains(t, err, `backfill: "phones": hold: monitor gone`)
	assert.Zero(t, state(t, s, "phones").Rows)
}
