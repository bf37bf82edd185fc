package verify_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestVerifyMetrics(t *testing.T) {
	db := testdb.SQLite(t)
	m := metrictest.New(t)
	s, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithMeterProvider(m.Provider()),
		expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	_, err = ectest.Migration(t, s, "rename").Ensure(t.Context(), "test")
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `CREATE TABLE c (id INTEGER PRIMARY KEY, a TEXT, b TEXT)`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO c VALUES (1, 'x', 'x'), (2, 'y', 'z'), (3, 'w', 'w')`)
	require.NoError(t, err)
	src := func(col string) *verify.SQLRows {
		return &verify.SQLRows{DB: db.DB, Table: "c", Key: "id", Kind: expandcontract.IntKeys, Value: col}
	}
	_, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "rename"), src("a"), src("b"), verify.WithRepairLog(new(cutover.MemoryRepairLog)))
	require.NoError(t, err)
	assert.Equal(t, int64(3), m.Sum("cutover.expandcontract.verify.rows", "cutover.migration", "rename"))
	assert.Equal(t, int64(1), m.Sum("cutover.expandcontract.verify.differences", "cutover.migration", "rename"))
	assert.Equal(t, int64(1), m.Sum("cutover.expandcontract.verify.duration", "", ""))
}
