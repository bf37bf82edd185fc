package verify_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/spantest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestRunSpans(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rec := spantest.New(t)
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithTracerProvider(rec.Provider()))
		m := ectest.ToBackfill(t, s, "m")
		createTable(t, db, "c", expandcontract.IntKeys)
		fillTable(t, db, "c", expandcontract.IntKeys, 5)
		_, err := db.ExecContext(t.Context(), `UPDATE c SET v2 = 'other' WHERE id = 6`)
		require.NoError(t, err)
		src := func(col string) *verify.SQLRows {
			return &verify.SQLRows{DB: db.DB, Table: "c", Key: "id", Kind: expandcontract.IntKeys, Value: col}
		}

		res, err := ectest.Verify(t.Context(), m, src("v"), src("v2"), verify.WithChunkSize(2),
			verify.WithRepairLog(new(cutover.MemoryRepairLog)))
		require.NoError(t, err)
		run := spantest.Only(t, rec.Named("cutover.expandcontract.verify.run"), "one run")
		assert.Equal(t, "github.com/cutover-go/cutover/expandcontract/verify", run.InstrumentationScope().Name)
		assert.Equal(t, map[string]string{"cutover.migration": "m", "cutover.rows": "5", "cutover.verify.new_rows": "5",
			"cutover.verify.differences": "1", "cutover.verify.ranges": "3", "cutover.verify.drilled": "1",
			"cutover.verify.clean": "false", "cutover.outcome": "ok"}, spantest.Attrs(run))
		assert.Equal(t, codes.Unset, run.Status().Code, "differences are the result, not an error")

		ranges := spantest.ChildrenOf(run, rec.Named("cutover.expandcontract.verify.range"))
		require.Len(t, ranges, int(res.Chunks))
		byRange := map[string]map[string]string{}
		for _, r := range ranges {
			a := spantest.Attrs(r)
			byRange[a["cutover.verify.range"]] = a
		}
		assert.Equal(t, map[string]string{"cutover.migration": "m", "cutover.verify.range": "1", "cutover.rows": "2",
			"cutover.verify.new_rows": "2", "cutover.verify.drilled": "1", "cutover.verify.differences": "1",
			"cutover.outcome": "ok"}, byRange["1"], "keys 6 and 8, the range of the difference")
		assert.Equal(t, "0", byRange["0"]["cutover.verify.drilled"])
		assert.Equal(t, "1", byRange["2"]["cutover.rows"])

		// A verification that fails.
		rec.Reset()
		bad := src("v")
		bad.Table = "no_such_table"
		_, err = ectest.Verify(t.Context(), m, src("v"), bad, verify.WithRepairLog(new(cutover.MemoryRepairLog)))
		require.Error(t, err)
		run = spantest.Only(t, rec.Named("cutover.expandcontract.verify.run"), "one run")
		assert.Equal(t, "error", spantest.Attrs(run)["cutover.outcome"])
		spantest.CheckError(t, run, "new side")
	})
}
