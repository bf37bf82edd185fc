package backfill_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestBackfillThatCopiesNothingChangesNothing runs backfills that fail
// before their first batch commits, for want of a table, a column or a
// working batch: each fails with the cause, and the metadata is as it was:
// no start time, no total, no history event, no lease.
func TestBackfillThatCopiesNothingChangesNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(30)))
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		ectest.ToBackfill(t, s, "phones")
		c.Advance(time.Minute)
		before := ectest.Snapshot(t, db, true)
		m := ectest.Migration(t, s, "phones")
		failing := backfill.BatchFunc(func(context.Context, *sqlx.Tx, expandcontract.KeyRange) (int64, error) {
			return 0, errors.New("the new store refuses the rows")
		})
		for _, tc := range []struct {
			name  string
			keys  backfill.Keyset
			batch backfill.Batch
			opts  []backfill.Option
			want  string
		}{
			{"missing table", backfill.Keyset{Table: "no_such_table", Column: "id"}, backfill.SQLBatch(copySQL), nil,
				"count the keys to copy"},
			{"missing table, total given", backfill.Keyset{Table: "no_such_table", Column: "id"}, backfill.SQLBatch(copySQL),
				[]backfill.Option{backfill.WithTotal(30)}, "read the next int keys after the start"},
			{"missing column", backfill.Keyset{Table: "customers", Column: "no_such_column"}, backfill.SQLBatch(copySQL), nil,
				"no_such_column"},
			{"failing batch", backfill.Keyset{Table: "customers", Column: "id"}, failing, nil,
				"the new store refuses the rows"},
			{"bad SQL batch", backfill.Keyset{Table: "customers", Column: "id"},
				backfill.SQLBatch(`UPDATE customers SET no_such_column = 1 WHERE id > :from AND id <= :to`), nil, "batch (start, "},
		} {
			bf, err := backfill.New(m, tc.keys, tc.batch, append(tc.opts, backfill.WithBatchSize(10))...)
			require.NoError(t, err, tc.name)
			err = bf.Run(t.Context())
			require.Error(t, err, tc.name)
			assert.ErrorContains(t, err, tc.want, tc.name)
			assert.Equal(t, before, ectest.Snapshot(t, db, true), "%s: the metadata changed", tc.name)
		}

		// A run that copies records its start with its first batch.
		bf, err := backfill.New(m, backfill.Keyset{Table: "customers", Column: "id"}, backfill.SQLBatch(copySQL),
			backfill.WithBatchSize(10))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		st := state(t, s, "phones")
		assert.True(t, st.StartedAt.Equal(c.Now()))
		assert.Equal(t, int64(30), st.Total)
		details := events(t, s, "phones")
		require.Len(t, details, 2)
		assert.Equal(t, `start at checkpoint "" with 0 rows copied`, details[0])
		assert.Equal(t, `done at checkpoint "-55" with 30 rows copied`, details[1])
	})
}
