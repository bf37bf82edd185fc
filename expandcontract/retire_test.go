package expandcontract_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestRetireWaitsForEveryInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone VARCHAR(40), phone_number VARCHAR(40))`)
		require.NoError(t, err)
		drop := expandcontract.Retire{Actor: "alice", Reason: "rename done", SQL: []string{`ALTER TABLE customers DROP COLUMN customer_phone`}}

		ectest.WalkToSwitchReads(t, s, c, "rename")
		err = ectest.Migration(t, s, "rename").Retire(t.Context(), drop)
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove, "nothing is retired before contract")

		ectest.MoveTo(t, ectest.Migration(t, s, "rename"), expandcontract.Contract)
		require.NoError(t, ectest.Migration(t, s, "rename").ReportStage(t.Context(), "web-1", cutover.Rampdown))
		require.NoError(t, ectest.Migration(t, s, "rename").ReportStage(t.Context(), "web-2", cutover.Complete))
		err = ectest.Migration(t, s, "rename").Retire(t.Context(), drop)
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		assert.ErrorContains(t, err, "web-1 (rampdown)")
		_, err = db.ExecContext(t.Context(), `SELECT customer_phone FROM customers`)
		require.NoError(t, err, "the refused retire dropped nothing")

		require.NoError(t, ectest.Migration(t, s, "rename").ReportStage(t.Context(), "web-1", cutover.Complete))
		require.NoError(t, ectest.Migration(t, s, "rename").Retire(t.Context(), drop))
		_, err = db.ExecContext(t.Context(), `SELECT customer_phone FROM customers`)
		require.Error(t, err, "the old column is gone")

		events, err := ectest.Migration(t, s, "rename").Events(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "retire", events[len(events)-1].Kind)
		assert.Equal(t, "alice", events[len(events)-1].Actor)
	})
}
