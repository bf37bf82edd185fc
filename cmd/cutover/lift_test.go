package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestLiftAndStatusCeiling demotes a migration as a service's trigger
// would, shows the ceiling with status, in text and JSON, and lifts it.
func TestLiftAndStatusCeiling(t *testing.T) {
	db := testdb.SQLite(t)
	m := toBackfill(t, db)
	assert.Contains(t, ok(t, db, "status", "users-email").stdout, "ceiling       none\n")
	applied, _, err := m.Demote(t.Context(), expandcontract.Demotion{Ceiling: cutover.DualWrite, Trigger: "new-store-errors",
		Figures: "error rate 12% over 1m", Instance: "svc-1", CoolDown: time.Hour})
	require.NoError(t, err)
	require.True(t, applied)

	r := ok(t, db, "status", "users-email")
	assert.Regexp(t, `ceiling +dualwrite until .*, set by trigger new-store-errors on svc-1: error rate 12% over 1m\n`, r.stdout)
	var st statusJSON
	okJSON(t, db, &st, "status", "users-email")
	require.NotNil(t, st.Ceiling)
	assert.Equal(t, "dualwrite", st.Ceiling.Stage)
	assert.Equal(t, "new-store-errors", st.Ceiling.Trigger)
	assert.Equal(t, "error rate 12% over 1m", st.Ceiling.Figures)
	assert.Equal(t, "svc-1", st.Ceiling.Instance)
	assert.Equal(t, time.Hour, st.Ceiling.Until.Sub(st.Ceiling.SetAt))

	assert.Equal(t, exitUsage, runCLI(t, db, "lift", "users-email", "--reason", "recovered").code, "no actor")
	r = ok(t, db, "lift", "users-email", "--actor", "carol", "--reason", "new store recovered")
	assert.Equal(t, "users-email: lifted the ceiling dualwrite\n", r.stdout)
	var out struct {
		Migration string       `json:"migration"`
		Lifted    bool         `json:"lifted"`
		Ceiling   *ceilingJSON `json:"ceiling"`
	}
	okJSON(t, db, &out, "lift", "users-email", "--actor", "carol", "--reason", "again")
	assert.Equal(t, "users-email", out.Migration)
	assert.False(t, out.Lifted, "nothing left to lift")
	assert.Nil(t, out.Ceiling)
	okJSON(t, db, &st, "status", "users-email")
	assert.Nil(t, st.Ceiling)

	events, err := m.Events(t.Context())
	require.NoError(t, err)
	var lifts []expandcontract.Event
	for _, ev := range events {
		if ev.Kind == "lift" {
			lifts = append(lifts, ev)
		}
	}
	require.Len(t, lifts, 1)
	assert.Equal(t, "carol", lifts[0].Actor)
	assert.Equal(t, "new store recovered", lifts[0].Reason)
	assert.Equal(t, exitNotFound, runCLI(t, db, "lift", "nope", "--actor", "carol", "--reason", "x").code)
}
