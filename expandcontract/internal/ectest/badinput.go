package ectest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The bad-input tests give a package every kind of bad input and check two
// things each time: the error says what was wrong (and wraps the sentinel
// docs/bad-input.md lists), and nothing changed: no metadata row, no
// history event, no table of the application. These are their fixtures.

// Keep creates the application's table keep, with one row, that no bad
// input may touch.
func Keep(t testing.TB, db *testdb.DB) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), `CREATE TABLE keep (id `+db.Dialect.TypeBigInt()+` PRIMARY KEY, v `+db.Dialect.TypeKeyText()+`)`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `INSERT INTO keep (id, v) VALUES (42, 'kept')`)
	require.NoError(t, err)
}

// Tables lists the tables of the test's database.
func Tables(t testing.TB, db *testdb.DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	switch db.Name {
	case sqldialect.Postgres:
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	case sqldialect.MySQL:
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()`
	}
	var names []string
	require.NoError(t, db.SelectContext(t.Context(), &names, q))
	slices.Sort(names)
	return names
}

// Snapshot returns every row of the application's keep table and of the
// metadata tables, as text, to compare before and after bad input. With
// events false it leaves out the history.
func Snapshot(t testing.TB, db *testdb.DB, events bool) string {
	t.Helper()
	queries := []string{`SELECT * FROM keep ORDER BY id`}
	if slices.Contains(Tables(t, db), "cutover_schema") {
		queries = append(queries, `SELECT * FROM cutover_schema`, `SELECT * FROM cutover_migrations ORDER BY name`,
			`SELECT * FROM cutover_repairs ORDER BY id`, `SELECT * FROM cutover_instances ORDER BY migration, instance`)
		if events {
			queries = append(queries, `SELECT * FROM cutover_events ORDER BY id`)
		}
	}
	var b strings.Builder
	for _, q := range queries {
		rows, err := db.QueryxContext(t.Context(), q)
		require.NoError(t, err, q)
		for rows.Next() {
			m := map[string]any{}
			require.NoError(t, rows.MapScan(m))
			for k, v := range m {
				if bs, ok := v.([]byte); ok {
					m[k] = string(bs)
				}
			}
			fmt.Fprintln(&b, m)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	return b.String()
}

// ErrorIs checks that err wraps every one of want and says what.
func ErrorIs(t testing.TB, err error, what string, want ...error) {
	t.Helper()
	require.Error(t, err)
	for _, w := range want {
		assert.ErrorIs(t, err, w)
	}
	assert.Contains(t, err.Error(), what)
}
