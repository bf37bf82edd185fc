package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestVerifyOtherDatabase verifies a migration whose new side is in
// another database, from a config file with flags laid over it, on each
// database as the old side and the metadata's.
func TestVerifyOtherDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createUsers(t, db)
		m := toBackfill(t, db)
		newDB := testdb.SQLite(t)
		_, err := newDB.ExecContext(t.Context(), `CREATE TABLE accounts (user_id INTEGER PRIMARY KEY, mail TEXT)`)
		require.NoError(t, err)
		rows, err := db.QueryxContext(t.Context(), `SELECT id, email FROM users`)
		require.NoError(t, err)
		for rows.Next() {
			var id int64
			var email string
			require.NoError(t, rows.Scan(&id, &email))
			_, err := newDB.ExecContext(t.Context(), `INSERT INTO accounts (user_id, mail) VALUES (?, ?)`, id, email)
			require.NoError(t, err)
		}
		require.NoError(t, rows.Err())

		dsn, err := json.Marshal(newDB.DSN)
		require.NoError(t, err)
		config := filepath.Join(t.TempDir(), "verify.json")
		require.NoError(t, os.WriteFile(config, []byte(`{
	"old": {"table": "users", "key": "id", "value": "email"},
	"new": {"table": "accounts", "key": "user_id", "value": "mail", "driver": "sqlite3", "dsn": `+string(dsn)+`},
	"chunk_size": 1,
	"repair": true
}`), 0o600)) // the chunk size of the flag below wins

		var res resultJSON
		okJSON(t, db, &res, "verify", "users-email", "--config", config, "--chunk-size", "64")
		assert.True(t, res.Clean)
		assert.Equal(t, int64(walkRows), res.Rows)
		assert.Equal(t, int64(walkRows), res.NewRows)
		assert.Equal(t, int64(4), res.Chunks, "200 rows in chunks of 64")
		st, err := m.State(t.Context())
		require.NoError(t, err)
		assert.True(t, st.Verification.Clean)

		_, err = newDB.ExecContext(t.Context(), `DELETE FROM accounts WHERE user_id = 3`)
		require.NoError(t, err)
		okJSON(t, db, &res, "verify", "users-email", "--config", config)
		assert.False(t, res.Clean)
		assert.Equal(t, int64(1), res.Missing)
		assert.True(t, res.Repaired)
		log, err := repair.NewLog(m)
		require.NoError(t, err)
		entries, err := log.Entries(t.Context(), repair.Query{})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		assert.Equal(t, "3", entries[0].Repair.Key)

		// --repair=false on the command line wins over the file.
		okJSON(t, db, &res, "verify", "users-email", "--config", config, "--repair=false")
		assert.False(t, res.Repaired)
		entries, err = log.Entries(t.Context(), repair.Query{})
		require.NoError(t, err)
		assert.Equal(t, int64(1), entries[0].Records, "a verification without --repair recorded the key")

		// A config file with a field verify does not know is refused.
		require.NoError(t, os.WriteFile(config, []byte(`{"old": {"table": "users", "colum": "id"}}`), 0o600))
		r := runCLI(t, db, "verify", "users-email", "--config", config)
		assert.Equal(t, exitUsage, r.code, "%s", r)
		assert.Contains(t, r.stderr, `json: unknown field "colum"`)
	})
}
