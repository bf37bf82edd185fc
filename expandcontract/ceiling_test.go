package expandcontract_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// eventsOfKind returns the events of m of kind.
func eventsOfKind(t *testing.T, m *expandcontract.Migration, kind string) []expandcontract.Event {
	t.Helper()
	all, err := m.Events(t.Context())
	require.NoError(t, err)
	var out []expandcontract.Event
	for _, ev := range all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// TestDemoteFleetWide demotes from two instances at once, then follows the
// ceiling through a third instance's Bound, the end of its cool-down, a
// lift, the quiet period after it, and a move that clears it.
func TestDemoteFleetWide(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		c := ectest.NewClock()
		reader, mp := manualReader(t)
		web1, web2 := ectest.Open(t, db.DB, c), ectest.Open(t, db.DB, c)
		web3 := ectest.Open(t, db.DB, c, expandcontract.WithMeterProvider(mp))
		ectest.WalkToSwitchReads(t, web1, c, "users")
		m := ectest.Migration(t, web1, "users")

		bound, err := ectest.Migration(t, web3, "users").Bound(time.Second, "")
		require.NoError(t, err)
		require.Equal(t, cutover.Live, bound.Clamp(ctx, cutover.Live), "no ceiling yet")
		assert.Equal(t, -1.0, statusGauges(t, reader)["ceiling users"], "no ceiling yet")

		const coolDown = 10 * time.Minute
		var wg sync.WaitGroup
		applied := make([]bool, 2)
		whys := make([]string, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, s := range []*expandcontract.Store{web1, web2} {
			wg.Go(func() {
				<-start
				applied[i], whys[i], errs[i] = ectest.Migration(t, s, "users").Demote(ctx, expandcontract.Demotion{
					Ceiling: cutover.Shadow, Trigger: "new-store-errors", Figures: "error rate 12% over 1m (limit 5%)",
					Instance: []string{"web-1", "web-2"}[i], CoolDown: coolDown})
			})
		}
		close(start)
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.NotEqual(t, applied[0], applied[1], "one of the two demotions applies, the other does not")
		winner, loser := "web-1", 1
		if applied[1] {
			winner, loser = "web-2", 0
		}
		assert.Empty(t, whys[1-loser], "an applied demotion has no why")
		assert.Contains(t, whys[loser], "a ceiling of shadow set by trigger new-store-errors on "+winner+" is in force until",
			"the demotion that lost says which ceiling was in force")
		demotes := eventsOfKind(t, m, "demote")
		require.Len(t, demotes, 1, "two demotions at once record one event")
		assert.Equal(t, winner, demotes[0].Actor)
		assert.Equal(t, "new-store-errors", demotes[0].Reason)
		assert.Contains(t, demotes[0].Detail, "ceiling shadow until")
		assert.Contains(t, demotes[0].Detail, "error rate 12% over 1m (limit 5%)")
		st, err := m.State(ctx)
		require.NoError(t, err)
		require.NotNil(t, st.Ceiling)
		assert.Equal(t, expandcontract.Ceiling{Stage: cutover.Shadow, SetAt: ectest.Start.Add(time.Second),
			Until: ectest.Start.Add(time.Second + coolDown), Trigger: "new-store-errors",
			Figures: "error rate 12% over 1m (limit 5%)", Instance: winner}, *st.Ceiling)

		// Within its TTL the third instance's bound still holds what it read
		// before the demotion; after it, its background read brings the
		// ceiling.
		assert.Equal(t, cutover.Live, bound.Clamp(ctx, cutover.Live), "the read before the demotion holds for the TTL")
		c.Advance(2 * time.Second)
		require.Eventually(t, func() bool { return bound.Clamp(ctx, cutover.Live) == cutover.Shadow },
			10*time.Second, time.Millisecond, "the bound re-reads the phase and the ceiling in the background")
		assert.Equal(t, cutover.DualWrite, bound.Clamp(ctx, cutover.DualWrite), "a stage under the ceiling is kept")
		assert.Equal(t, 2.0, statusGauges(t, reader)["ceiling users"], "the gauge reports shadow's index")
		status, err := m.Status(ctx)
		require.NoError(t, err)
		require.NotNil(t, status.Ceiling)
		assert.Equal(t, cutover.Shadow, status.Ceiling.Stage)

		// A ceiling as high or higher is not applied; a lower one is.
		for _, stage := range []cutover.Stage{cutover.Shadow, cutover.Live} {
			ok, why, err := m.Demote(ctx, expandcontract.Demotion{Ceiling: stage, Trigger: "latency", Instance: "web-1", CoolDown: time.Hour})
			require.NoError(t, err)
			assert.False(t, ok, "a ceiling of %s over one of shadow", stage)
			assert.Contains(t, why, "a ceiling of shadow")
		}
		ok, _, err := m.Demote(ctx, expandcontract.Demotion{Ceiling: cutover.DualWrite, Trigger: "mismatches",
			Instance: "web-2", CoolDown: coolDown})
		require.NoError(t, err)
		require.True(t, ok, "a lower ceiling replaces the one in force")
		require.Len(t, eventsOfKind(t, m, "demote"), 2)
		c.Advance(2 * time.Second)
		require.Eventually(t, func() bool { return bound.Clamp(ctx, cutover.Live) == cutover.DualWrite },
			10*time.Second, time.Millisecond, "the bound re-reads the lower ceiling in the background")

		// The cool-down ends: the ceiling no longer applies, by the store's
		// clock, though it stays recorded until a lift.
		c.Advance(coolDown)
		assert.Equal(t, cutover.Live, bound.Clamp(ctx, cutover.Live), "a ceiling past its cool-down does not apply")
		status, err = m.Status(ctx)
		require.NoError(t, err)
		assert.Nil(t, status.Ceiling, "no ceiling in force")
		require.NotNil(t, status.State.Ceiling, "still recorded")
		assert.Equal(t, -1.0, statusGauges(t, reader)["ceiling users"])

		// The lift clears it and starts the quiet period.
		lifted, err := m.Lift(ctx, "alice", "new store recovered")
		require.NoError(t, err)
		require.True(t, lifted)
		lifts := eventsOfKind(t, m, "lift")
		require.Len(t, lifts, 1)
		assert.Equal(t, "alice", lifts[0].Actor)
		assert.Equal(t, "new store recovered", lifts[0].Reason)
		assert.Contains(t, lifts[0].Detail, "lifted ceiling dualwrite")
		assert.Contains(t, lifts[0].Detail, "its cool-down had ended")
		st, err = m.State(ctx)
		require.NoError(t, err)
		assert.Nil(t, st.Ceiling)
		assert.Equal(t, c.Now(), st.LiftedAt)
		lifted, err = m.Lift(ctx, "alice", "again")
		require.NoError(t, err)
		assert.False(t, lifted, "nothing to lift")
		assert.Len(t, eventsOfKind(t, m, "lift"), 1, "a lift of nothing records nothing")

		// Hysteresis: within the quiet period (here the cool-down) a demotion
		// is refused unless forced.
		d := expandcontract.Demotion{Ceiling: cutover.Shadow, Trigger: "new-store-errors", Instance: "web-1", CoolDown: coolDown}
		c.Advance(coolDown - time.Second)
		ok, why, err := m.Demote(ctx, d)
		require.NoError(t, err)
		assert.False(t, ok, "within the quiet period after a lift")
		assert.Contains(t, why, "within the quiet period of 10m0s after the lift at")
		held := eventsOfKind(t, m, "held")
		require.Len(t, held, 1, "the history says the quiet period held a demotion back")
		assert.Equal(t, "web-1", held[0].Actor)
		assert.Equal(t, "new-store-errors", held[0].Reason)
		assert.Contains(t, held[0].Detail, "demotion to shadow held by the quiet period of 10m0s after the lift at")
		for _, instance := range []string{"web-1", "web-2"} {
			d.Instance = instance
			ok, _, err = m.Demote(ctx, d)
			require.NoError(t, err)
			assert.False(t, ok)
		}
		assert.Len(t, eventsOfKind(t, m, "held"), 1, "once per trigger per lift, whichever instance asks")
		other := d
		other.Trigger = "availability"
		ok, _, err = m.Demote(ctx, other)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Len(t, eventsOfKind(t, m, "held"), 2, "another trigger is recorded apart")
		d.Instance = "web-1"
		d.Force = true
		ok, _, err = m.Demote(ctx, d)
		require.NoError(t, err)
		require.True(t, ok, "forced")
		assert.Contains(t, eventsOfKind(t, m, "demote")[2].Detail, "forced")

		// An operator's move clears it, and says so.
		st, err = m.Move(ctx, expandcontract.Move{To: expandcontract.Backfill, Actor: "bob", Reason: "roll back"})
		require.NoError(t, err)
		assert.Nil(t, st.Ceiling, "the move cleared the ceiling")
		assert.Equal(t, c.Now(), st.LiftedAt)
		moves := eventsOfKind(t, m, "move")
		last := moves[len(moves)-1]
		assert.Equal(t, expandcontract.Backfill, last.To)
		assert.True(t, strings.HasPrefix(last.Detail, "lifted ceiling shadow until"), "the move's detail: %s", last.Detail)
		assert.Len(t, eventsOfKind(t, m, "lift"), 1, "the move's own event records the lift")

		// After the quiet period a demotion applies again.
		c.Advance(coolDown)
		d.Force = false
		ok, _, err = m.Demote(ctx, d)
		require.NoError(t, err)
		assert.True(t, ok, "after the quiet period")
	})
}

// TestCeilingKeepsThePhasesLowestStage demotes a migration in dualwrite to
// off: writes must still reach both stores, so the bound keeps dualwrite.
func TestCeilingKeepsThePhasesLowestStage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m := ectest.Ensure(t, s, "users")
		ectest.MoveTo(t, m, expandcontract.DualWrite)
		ok, _, err := m.Demote(t.Context(), expandcontract.Demotion{Ceiling: cutover.Off, Trigger: "t", Instance: "web-1",
			CoolDown: time.Minute})
		require.NoError(t, err)
		require.True(t, ok)
		bound, err := m.Bound(time.Second, "")
		require.NoError(t, err)
		assert.Equal(t, cutover.DualWrite, bound.Clamp(t.Context(), cutover.Live))
		require.NotNil(t, bound.Ceiling())
		assert.Equal(t, cutover.Off, bound.Ceiling().Stage)
	})
}

// TestBadInputDemoteAndLift gives Demote and Lift bad input: each error
// says what was wrong and nothing changes.
func TestBadInputDemoteAndLift(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		ectest.Keep(t, db)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m := ectest.ToBackfill(t, s, "users")
		good := expandcontract.Demotion{Ceiling: cutover.Shadow, Trigger: "errors", Instance: "web-1", CoolDown: time.Minute}
		with := func(f func(d *expandcontract.Demotion)) expandcontract.Demotion {
			d := good
			f(&d)
			return d
		}
		before := ectest.Snapshot(t, db, true)
		for _, tc := range []struct {
			d    expandcontract.Demotion
			what string
		}{
			{with(func(d *expandcontract.Demotion) { d.Ceiling = 9 }), "demotion ceiling: cutover: unknown stage Stage(9)"},
			{with(func(d *expandcontract.Demotion) { d.Ceiling = cutover.Complete }), "ceiling complete bounds nothing"},
			{with(func(d *expandcontract.Demotion) { d.Trigger = "" }), `demotion trigger "" must be 1 to 255 bytes`},
			{with(func(d *expandcontract.Demotion) { d.Trigger = "a\nb" }), "holds a control character"},
			{with(func(d *expandcontract.Demotion) { d.Instance = "" }), `instance id "" must be 1 to 255 bytes`},
			{with(func(d *expandcontract.Demotion) { d.CoolDown = 0 }), "cool-down must be positive, got 0s"},
			{with(func(d *expandcontract.Demotion) { d.Quiet = -time.Second }), "quiet period must not be negative"},
			{with(func(d *expandcontract.Demotion) { d.Figures = strings.Repeat("x", 1025) }), "up to 1024 bytes of UTF-8, got 1025"},
			{with(func(d *expandcontract.Demotion) { d.Figures = "\xff" }), "up to 1024 bytes of UTF-8"},
		} {
			ok, _, err := m.Demote(ctx, tc.d)
			assert.False(t, ok)
			ectest.ErrorIs(t, err, tc.what, expandcontract.ErrInvalidInput)
		}
		ok, err := m.Lift(ctx, " ", "why")
		assert.False(t, ok)
		ectest.ErrorIs(t, err, "a lift needs an actor", expandcontract.ErrInvalidInput)
		ok, _, err = ectest.Migration(t, s, "never-created").Demote(ctx, good)
		assert.False(t, ok)
		ectest.ErrorIs(t, err, `"never-created"`, expandcontract.ErrNotFound)
		ok, err = ectest.Migration(t, s, "never-created").Lift(ctx, "alice", "")
		assert.False(t, ok)
		ectest.ErrorIs(t, err, `"never-created"`, expandcontract.ErrNotFound)
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "bad input changes nothing")
	})
}
