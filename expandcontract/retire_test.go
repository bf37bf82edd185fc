package expandcontract_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestRetireWaitsForEveryInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := newClock()
		s := openStore(t, db, c)
		_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone VARCHAR(40), phone_number VARCHAR(40))`)
		require.NoError(t, err)
		drop := expandcontract.Retire{Actor: "alice", Reason: "rename done", SQL: []string{`ALTER TABLE customers DROP COLUMN customer_phone`}}

		walkToSwitchReads(t, s, c, "rename")
		err = s.Retire(t.Context(), "rename", drop)
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove, "nothing is retired before contract")

		move(t, s, "rename", expandcontract.Contract)
		require.NoError(t, s.ReportStage(t.Context(), "rename", "web-1", cutover.Rampdown))
		require.NoError(t, s.ReportStage(t.Context(), "rename", "web-2", cutover.Complete))
		err = s.Retire(t.Context(), "rename", drop)
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		assert.ErrorContains(t, err, "web-1 (rampdown)")
		_, err = db.ExecContext(t.Context(), `SELECT customer_phone FROM customers`)
		require.NoError(t, err, "the refused retire dropped nothing")

		require.NoError(t, s.ReportStage(t.Context(), "rename", "web-1", cutover.Complete))
		require.NoError(t, s.Retire(t.Context(), "rename", drop))
		_, err = db.ExecContext(t.Context(), `SELECT customer_phone FROM customers`)
		require.Error(t, err, "the old column is gone")

		events, err := s.Events(t.Context(), "rename")
		require.NoError(t, err)
		assert.Equal(t, "retire", events[len(events)-1].Kind)
		assert.Equal(t, "alice", events[len(events)-1].Actor)
	})
}
