package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestBackfillControls checks cancel, reset-cancel and mark-done, and
// that each is recorded with its actor and reason.
func TestBackfillControls(t *testing.T) {
	db := testdb.SQLite(t)
	m := toBackfill(t, db)
	var out struct {
		Phase    string `json:"phase"`
		Backfill struct {
			Canceled bool `json:"canceled"`
		} `json:"backfill"`
	}
	okJSON(t, db, &out, "backfill", "cancel", "users-email", "--actor", "carol", "--reason", "wrong table")
	assert.Equal(t, "backfill", out.Phase)
	assert.True(t, out.Backfill.Canceled)
	r := ok(t, db, "backfill", "reset-cancel", "users-email", "--actor", "carol", "--reason", "table fixed")
	assert.Equal(t, "users-email: cancellation lifted: a new run resumes from the checkpoint\n", r.stdout)
	st, err := m.State(t.Context())
	require.NoError(t, err)
	assert.False(t, st.Backfill.Canceled)
	r = ok(t, db, "backfill", "mark-done", "users-email", "--actor", "carol", "--reason", "copied by pg_dump")
	assert.Equal(t, "users-email: backfill recorded as done\n", r.stdout)
	st, err = m.State(t.Context())
	require.NoError(t, err)
	assert.True(t, st.Backfill.Done())

	events, err := m.Events(t.Context())
	require.NoError(t, err)
	var got []string
	for _, ev := range events {
		if ev.Actor == "carol" {
			got = append(got, ev.Kind+": "+ev.Reason)
		}
	}
	assert.Equal(t, []string{"backfill: wrong table", "backfill: table fixed", "backfill: copied by pg_dump"}, got)
}
