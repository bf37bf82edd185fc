package backfill_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/spantest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestRunSpans(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rec := spantest.New(t)
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithTracerProvider(rec.Provider()))
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(5)))
		m := ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		// A batch that fails ends the run; it is rolled back.
		boom := errors.New("boom")
		calls := 0
		failing := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			if calls++; calls == 2 {
				return 0, boom
			}
			return copyRange(ctx, tx, r)
		})
		bf, err := backfill.New(m, keys, failing, backfill.WithBatchSize(2), backfill.WithOwner("runner-1"))
		require.NoError(t, err)
		require.ErrorIs(t, bf.Run(t.Context()), boom)
		run := spantest.Only(t, rec.Named("cutover.expandcontract.backfill.run"), "one run")
		assert.Equal(t, map[string]string{"cutover.migration": "phones", "cutover.backfill.owner": "runner-1",
			"cutover.rows": "2", "cutover.batches": "1", "cutover.outcome": "error"}, spantest.Attrs(run))
		assert.Equal(t, codes.Error, run.Status().Code)
		assert.Contains(t, run.Status().Description, "boom")
		batches := spantest.ChildrenOf(run, rec.Named("cutover.expandcontract.backfill.batch"))
		require.Len(t, batches, 2)
		assert.Equal(t, map[string]string{"cutover.migration": "phones", "cutover.rows": "2", "cutover.outcome": "ok"},
			spantest.Attrs(batches[0]))
		assert.Equal(t, "error", spantest.Attrs(batches[1])["cutover.outcome"])
		assert.Equal(t, codes.Error, batches[1].Status().Code)

		// The next run resumes from the checkpoint: two batches of keys,
		// and the last one, which finds none and records the backfill done.
		rec.Reset()
		bf, err = backfill.New(m, keys, backfill.BatchFunc(copyRange), backfill.WithBatchSize(2), backfill.WithOwner("runner-1"))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", 5)
		run = spantest.Only(t, rec.Named("cutover.expandcontract.backfill.run"), "one run")
		assert.Equal(t, "github.com/cutover-go/cutover/expandcontract/backfill", run.InstrumentationScope().Name)
		assert.Equal(t, map[string]string{"cutover.migration": "phones", "cutover.backfill.owner": "runner-1",
			"cutover.rows": "3", "cutover.batches": "2", "cutover.outcome": "ok"}, spantest.Attrs(run))
		assert.Equal(t, codes.Unset, run.Status().Code)
		var got []string
		for _, b := range spantest.ChildrenOf(run, rec.Named("cutover.expandcontract.backfill.batch")) {
			a := spantest.Attrs(b)
			got = append(got, a["cutover.outcome"]+" "+a["cutover.rows"])
		}
		assert.Equal(t, []string{"ok 2", "ok 1", "done 0"}, got)

		// A run the phase refuses.
		rec.Reset()
		ectest.MoveTo(t, m, expandcontract.DualWrite)
		bf, err = backfill.New(m, keys, backfill.BatchFunc(copyRange))
		require.NoError(t, err)
		require.ErrorIs(t, bf.Run(t.Context()), backfill.ErrWrongPhase)
		run = spantest.Only(t, rec.Named("cutover.expandcontract.backfill.run"), "one run")
		assert.Equal(t, "refused", spantest.Attrs(run)["cutover.outcome"])
		assert.Empty(t, rec.Named("cutover.expandcontract.backfill.batch"))
	})
}

// tracedRunner returns a runner of fn over three customers of a SQLite
// database, whose store traces to rec.
func tracedRunner(t *testing.T, rec *spantest.Recorder, fn backfill.BatchFunc) *backfill.Runner {
	t.Helper()
	db := testdb.SQLite(t)
	s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithTracerProvider(rec.Provider()))
	createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(3)))
	bf, err := backfill.New(ectest.ToBackfill(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"}, fn)
	require.NoError(t, err)
	return bf
}

// A batch function gets the batch's span in its context, so that its own
// spans are the batch's children.
func TestBatchContextCarriesItsSpan(t *testing.T) {
	rec := spantest.New(t)
	bf := tracedRunner(t, rec, func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		_, span := rec.Provider().Tracer("app").Start(ctx, "copy")
		defer span.End()
		return copyRange(ctx, tx, r)
	})
	require.NoError(t, bf.Run(t.Context()))
	batch := rec.Named("cutover.expandcontract.backfill.batch")[0]
	spantest.Only(t, spantest.ChildrenOf(batch, rec.Named("copy")), "the batch function's span")
}

// A panic in a batch function ends the batch's span and the run's, as
// panics, before it goes on up.
func TestRunSpansOfAPanic(t *testing.T) {
	rec := spantest.New(t)
	bf := tracedRunner(t, rec, func(context.Context, *sqlx.Tx, expandcontract.KeyRange) (int64, error) { panic("bug") })
	require.PanicsWithValue(t, "bug", func() { _ = bf.Run(t.Context()) })
	run := spantest.Only(t, rec.Named("cutover.expandcontract.backfill.run"), "one run")
	assert.Equal(t, "panic", spantest.Attrs(run)["cutover.outcome"])
	spantest.CheckError(t, run, "ended by a panic")
	batch := spantest.Only(t, spantest.ChildrenOf(run, rec.Named("cutover.expandcontract.backfill.batch")), "one batch")
	assert.Equal(t, "panic", spantest.Attrs(batch)["cutover.outcome"])
}
