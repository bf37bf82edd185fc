package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestDDL runs the statements cutover ddl prints on each database, and
// checks that the store, and the command, take the tables they make.
func TestDDL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		var out struct {
			Dialect       string   `json:"dialect"`
			SchemaVersion int64    `json:"schema_version"`
			Statements    []string `json:"statements"`
		}
		okJSON(t, nil, &out, "ddl", "--dialect", db.Name)
		assert.Equal(t, db.Name, out.Dialect)
		assert.Equal(t, int64(expandcontract.SchemaVersion), out.SchemaVersion)
		for _, q := range out.Statements {
			_, err := db.ExecContext(t.Context(), q)
			require.NoError(t, err, q)
		}
		_, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithoutSchemaChanges())
		require.NoError(t, err)
		r := runCLI(t, db, "status", "users-email")
		assert.Equal(t, exitNotFound, r.code, "%s", r)
		assert.Contains(t, r.stderr, `no migration "users-email" in cutover_migrations`)

		// The text form is the same statements, each ended by a semicolon.
		r = ok(t, nil, "ddl", "--driver", db.DriverName())
		for _, q := range out.Statements {
			assert.Contains(t, r.stdout, q+";\n")
		}
	})
	r := runCLI(t, nil, "ddl")
	assert.Equal(t, exitUsage, r.code, "%s", r)
	assert.Contains(t, r.stderr, "cutover: ddl: missing --dialect (sqlite, postgres or mysql)")
	r = runCLI(t, nil, "ddl", "--dialect", "oracle")
	assert.Equal(t, exitUsage, r.code, "%s", r)
	assert.Contains(t, r.stderr, `cutover: ddl: unknown dialect "oracle"`)
	r = runCLI(t, nil, "ddl", "--dialect", "mysql", "--upgrade-from", "9")
	assert.Equal(t, exitUsage, r.code, "%s", r)
	assert.Contains(t, r.stderr, "schema version 9 is not one this library upgrades from")
}
