package backfill

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// TestFuse checks which SQL batches run with their checkpoint as one
// statement: plain INSERT, UPDATE and DELETE statements on PostgreSQL, and
// nothing else.
func TestFuse(t *testing.T) {
	pg, err := sqldialect.ForDriver("pgx")
	require.NoError(t, err)
	my, err := sqldialect.ForDriver("mysql")
	require.NoError(t, err)
	for _, tc := range []struct {
		stmt  string
		fused bool
	}{
		{`UPDATE t SET b = a WHERE id > :from AND id <= :to`, true},
		{"  update t SET b = a WHERE id > :from AND id <= :to;\n", true},
		{`INSERT INTO n (id, v) SELECT id, v FROM t WHERE id > :from AND id <= :to ON CONFLICT (id) DO NOTHING`, true},
		{`DELETE FROM t WHERE id > :from AND id <= :to`, true},
		{`UPDATE t SET b = a WHERE id > :from AND id <= :to RETURNING id`, false},
		{`WITH x AS (SELECT 1) UPDATE t SET b = a WHERE id > :from AND id <= :to`, false},
		{`/* c */ UPDATE t SET b = a WHERE id > :from AND id <= :to`, false},
		{`UPDATE t SET b = a WHERE id > :from AND id <= :to; UPDATE t SET c = 1 WHERE id > :from AND id <= :to`, false},
		{`SELECT copy_range(:from, :to)`, false},
	} {
		c, err := compileSQLBatch(tc.stmt, pg)
		require.NoError(t, err, tc.stmt)
		q := fuse(pg, c.query, fusedCheckpoint(`"cutover_migrations"`))
		assert.Equal(t, tc.fused, q != "", tc.stmt)
		if tc.fused {
			assert.Contains(t, q, "$13", "the checkpoint's parameters follow :from and :to")
			assert.NotContains(t, q, "$14")
			assert.NotContains(t, q, "?")
			q = fuse(pg, c.query, `UPDATE "cutover_backfill_ranges" SET `+rangeCheckpointSet+fusedRows+rangeCheckpointWhere(`"cutover_migrations"`))
			assert.Contains(t, q, "$10", "a range's checkpoint's parameters follow :from and :to")
			assert.NotContains(t, q, "$11")
		}
		c, err = compileSQLBatch(tc.stmt, my)
		require.NoError(t, err, tc.stmt)
		assert.Empty(t, fuse(my, c.query, fusedCheckpoint("`cutover_migrations`")), "only PostgreSQL fuses: %s", tc.stmt)
	}
	assert.Equal(t, "a = $3 AND b = $4", rebindFrom("a = ? AND b = ?", 3))
}
