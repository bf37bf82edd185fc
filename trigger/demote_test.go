package trigger_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/trigger"
)

// TestDemoteToReachesTheFleet: two instances' monitors see the new store
// fail and fire at once; DemoteTo makes one demotion of the migration,
// recorded once with the trigger and the figures, and a third instance's
// bound applies it.
func TestDemoteToReachesTheFleet(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		clock := testutil.NewClock(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC))
		open := handles(t, db, clock)
		m := open()
		toBackfill(t, m)

		var monitors []*trigger.Monitor
		for _, instance := range []string{"api-1", "api-2"} {
			demote, err := trigger.DemoteTo(open(), cutover.DualWrite, time.Hour)
			require.NoError(t, err)
			mon, err := trigger.New("users-email", demote, trigger.WithRules(errorRule), trigger.WithClock(clock.Now),
				trigger.WithInstance(instance), trigger.WithResolution(10*time.Second), trigger.WithLogger(testutil.Quiet()))
			require.NoError(t, err)
			mon.Evaluate(ctx)
			for i := range 100 {
				o := cutover.CallOK
				if i < 30 {
					o = cutover.CallError
				}
				mon.ObserveCall(ctx, cutover.CallEvent{Op: "users.save", Stage: cutover.Shadow,
					Side: cutover.New, Role: cutover.RoleSecondary, Outcome: o, Duration: time.Millisecond})
			}
			monitors = append(monitors, mon)
		}
		clock.Advance(time.Second)
		var wg sync.WaitGroup
		health := make([]trigger.Health, len(monitors))
		for i, mon := range monitors {
			wg.Go(func() { health[i] = mon.Evaluate(ctx) })
		}
		wg.Wait()
		outcomes := map[trigger.Outcome]trigger.TriggerHealth{}
		for _, h := range health {
			require.Len(t, h.Triggers, 1)
			assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
			assert.Empty(t, h.Triggers[0].Error, "the demotion must not fail")
			outcomes[h.Triggers[0].Outcome] = h.Triggers[0]
		}
		require.Len(t, outcomes, 2, "one demotion applied, the other skipped: %+v", health)
		assert.Equal(t, "ceiling dualwrite for 1h0m0s", outcomes[trigger.OutcomeDone].Detail)
		assert.Contains(t, outcomes[trigger.OutcomeSkipped].Detail, "not applied: a ceiling of dualwrite set by trigger error_rate on ",
			"the instance whose demotion lost says why")

		st, err := m.Status(ctx)
		require.NoError(t, err)
		require.NotNil(t, st.Ceiling, "the migration is demoted")
		assert.Equal(t, cutover.DualWrite, st.Ceiling.Stage)
		assert.Equal(t, trigger.ErrorRate.String(), st.Ceiling.Trigger)
		assert.Contains(t, []string{"api-1", "api-2"}, st.Ceiling.Instance)
		events, err := m.Events(ctx)
		require.NoError(t, err)
		var demotions []expandcontract.Event
		for _, e := range events {
			if e.Kind == "demote" {
				demotions = append(demotions, e)
			}
		}
		require.Len(t, demotions, 1, "two instances firing at once make one demotion")
		assert.Equal(t, st.Ceiling.Instance, demotions[0].Actor)

		b, err := open().Bound(time.Minute, "api-3")
		require.NoError(t, err)
		assert.Equal(t, cutover.DualWrite, b.Clamp(context.Background(), cutover.Shadow),
			"a third instance's bound keeps shadow under the ceiling")
	})
}

// handles returns a function that opens a store handle of its own on db,
// with clock, as each instance of a service does, and returns the handle
// of the migration users-email.
// toBackfill creates m and moves it to the backfill phase.
func toBackfill(t *testing.T, m *expandcontract.Migration) {
	t.Helper()
	_, err := m.Ensure(t.Context(), "deploy")
	require.NoError(t, err)
	for _, to := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		_, err := m.Move(t.Context(), expandcontract.Move{To: to, Actor: "alice"})
		require.NoError(t, err)
	}
}

func handles(t *testing.T, db *testdb.DB, clock *testutil.Clock) func() *expandcontract.Migration {
	return func() *expandcontract.Migration {
		s, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithClock(clock.Now),
			expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		m, err := s.Migration("users-email")
		require.NoError(t, err)
		return m
	}
}

func TestDemoteToRejectsBadInput(t *testing.T) {
	_, err := trigger.DemoteTo(nil, cutover.Shadow, time.Minute)
	assert.ErrorIs(t, err, trigger.ErrInvalidInput, "nil migration")
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		mg, err := s.Migration("users-email")
		require.NoError(t, err)
		for name, c := range map[string]struct {
			ceiling  cutover.Stage
			coolDown time.Duration
		}{
			"complete": {cutover.Complete, time.Minute}, "not a stage": {cutover.Stage(42), time.Minute},
			"no cool-down": {cutover.Shadow, 0}, "negative cool-down": {cutover.Shadow, -time.Second},
		} {
			_, err := trigger.DemoteTo(mg, c.ceiling, c.coolDown)
			assert.ErrorIs(t, err, trigger.ErrInvalidInput, name)
		}
	})
}
