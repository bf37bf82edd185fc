package repair_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// Bad input to the repair log: each error names what was wrong and wraps
// the sentinel docs/bad-input.md lists, and nothing changes.

// TestBadInputRepairEntries makes a dual write whose secondary fails for a
// key the repair log cannot store: the caller gets a *dualwrite.SecondaryError
// whose RecordErr wraps ErrInvalidInput, so the key is not silently lost,
// and the log holds nothing. A stored entry whose target is no store is
// kept stuck and never given to the repair function.
func TestBadInputRepairEntries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		ctx := t.Context()
		log, err := repair.NewLog(ectest.Migration(t, s, "users"))
		require.NoError(t, err)
		w, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), log,
			dualwrite.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		errDown := errors.New("new store down")
		for _, tc := range []struct{ key, what string }{
			{"\xff\xfe", "not valid UTF-8"},
			{"a\x00b", "NUL byte"},
			{strings.Repeat("k", 256), "longer than 255 characters"},
		} {
			var oldWrites int
			err := w.Write(ctx, tc.key, func(_ context.Context, side cutover.Side) error {
				if side == cutover.New {
					return errDown
				}
				oldWrites++
				return nil
			})
			var se *dualwrite.SecondaryError
			require.ErrorAs(t, err, &se)
			assert.ErrorIs(t, se.RecordErr, repair.ErrInvalidInput)
			assert.Contains(t, se.RecordErr.Error(), tc.what)
			assert.ErrorIs(t, err, errDown, "the write's own failure is kept")
			assert.Equal(t, 1, oldWrites, "the authoritative write happened; only its repair could not be recorded")
		}
		n, err := log.Pending(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "nothing was recorded")

		now := c.Now().UnixMicro()
		_, err = db.ExecContext(ctx, db.Dialect.Rebind(`INSERT INTO cutover_repairs (migration, op, entity_key, target,
			stage, reason, error, created_at, attempts, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '')`),
			"users", "users.save", "1", 7, "dualwrite", "secondary_failed", "", now, now)
		require.NoError(t, err)
		_, err = log.Entries(ctx, repair.Query{})
		ectest.ErrorIs(t, err, "target 7 is not a store", expandcontract.ErrCorrupt)
		called := 0
		r, err := repair.New(log, func(context.Context, cutover.Repair) error { called++; return nil })
		require.NoError(t, err)
		defer r.Close()
		stats, err := r.RunOnce(ctx)
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1, Stuck: 1}, stats)
		assert.Zero(t, called, "the function never sees an entry it cannot trust")
		var lastError string
		require.NoError(t, db.GetContext(ctx, &lastError, `SELECT last_error FROM cutover_repairs`))
		assert.Contains(t, lastError, "target 7 is not a store")
	})
}
