package backfill_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// Bad input to the backfill runner: each error names what was wrong and
// wraps the sentinel docs/bad-input.md lists, and nothing changes.

// TestBadInputCorruptCheckpoint stores a backfill checkpoint that is no
// integer key. A run over integer keys takes the lease, finds the
// checkpoint unreadable, gives the lease back and returns ErrCorrupt: no
// batch runs and the checkpoint stays for a person to look at.
func TestBadInputCorruptCheckpoint(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		ctx := t.Context()
		ectest.ToBackfill(t, s, "users")
		_, err := db.ExecContext(ctx, `UPDATE cutover_migrations SET backfill_checkpoint = 'forty-two' WHERE name = 'users'`)
		require.NoError(t, err)
		copied := 0
		bf, err := backfill.New(ectest.Migration(t, s, "users"), backfill.Keyset{Table: "keep", Column: "id"},
			backfill.BatchFunc(func(context.Context, *sqlx.Tx, expandcontract.KeyRange) (int64, error) {
				copied++
				return 0, nil
			}))
		require.NoError(t, err)
		err = bf.Run(ctx)
		ectest.ErrorIs(t, err, `checkpoint "forty-two" is not an integer key`, expandcontract.ErrCorrupt)
		assert.Zero(t, copied)
		m, err := ectest.Migration(t, s, "users").State(ctx)
		require.NoError(t, err)
		assert.Empty(t, m.Backfill.LeaseOwner, "the lease was given back")
		assert.Equal(t, "forty-two", m.Backfill.Checkpoint)
		assert.Zero(t, m.Backfill.Rows)
		assert.False(t, m.Backfill.Done())
	})
}

// TestBadInputCorruptRowAndBackfill runs a backfill over a migration row
// whose version, backfill count or settings are corrupt while its phase is
// backfill.
// Run refuses it with ErrCorrupt and copies nothing, the row is still
// reported corrupt afterwards, and no move can build on it.
func TestBadInputCorruptRowAndBackfill(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		ctx := t.Context()
		ectest.ToBackfill(t, s, "users")
		for _, set := range []string{`version = 0`, `version = -1`, `backfill_rows = -5`, `backfill_rate_limit = -1`,
			`backfill_batch_size = -3`} {
			_, err := db.ExecContext(ctx, `UPDATE cutover_migrations SET `+set+`, backfill_done_at = NULL WHERE name = 'users'`)
			require.NoError(t, err)
			bf, err := backfill.New(ectest.Migration(t, s, "users"), backfill.Keyset{Table: "keep", Column: "id"},
				backfill.SQLBatch(`UPDATE keep SET v = v WHERE id > :from AND id <= :to`))
			require.NoError(t, err)
			var before int
			require.NoError(t, db.GetContext(ctx, &before, `SELECT COUNT(*) FROM cutover_events`))
			assert.ErrorIs(t, bf.Run(ctx), expandcontract.ErrCorrupt, "%s: Run refuses the corrupt row", set)
			var after int
			require.NoError(t, db.GetContext(ctx, &after, `SELECT COUNT(*) FROM cutover_events`))
			assert.Equal(t, before, after, "%s: Run recorded nothing", set)
			_, err = ectest.Migration(t, s, "users").State(ctx)
			assert.ErrorIs(t, err, expandcontract.ErrCorrupt, "%s: the row is still reported corrupt", set)
			_, err = ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", Force: true})
			assert.ErrorIs(t, err, expandcontract.ErrCorrupt)
			var phase string
			require.NoError(t, db.GetContext(ctx, &phase, `SELECT phase FROM cutover_migrations WHERE name = 'users'`))
			assert.Equal(t, "backfill", phase)
			_, err = db.ExecContext(ctx, `UPDATE cutover_migrations SET version = 3, backfill_rows = 0, backfill_total = 0,
				backfill_rate_limit = 0, backfill_batch_size = 0 WHERE name = 'users'`)
			require.NoError(t, err)
		}
	})
}
