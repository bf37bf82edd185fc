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

// TestAlarmRecordedOncePerQuietPeriod raises the same alarm from three
// instances at once, again within the quiet period and after it: the
// history holds one alarm per trigger per quiet period, the status shows
// it, and the stages are left alone.
func TestAlarmRecordedOncePerQuietPeriod(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		c := ectest.NewClock()
		stores := []*expandcontract.Store{ectest.Open(t, db.DB, c), ectest.Open(t, db.DB, c), ectest.Open(t, db.DB, c)}
		m := ectest.WalkToSwitchReads(t, stores[0], c, "users")
		const quiet = 10 * time.Minute
		alarm := func(instance string) expandcontract.Alarm {
			return expandcontract.Alarm{Trigger: "latency", Figures: "users latency 3.1 (threshold 2) over 10m0s, 400 samples",
				Instance: instance, Quiet: quiet}
		}

		var wg sync.WaitGroup
		recorded := make([]bool, len(stores))
		whys := make([]string, len(stores))
		errs := make([]error, len(stores))
		start := make(chan struct{})
		for i, s := range stores {
			wg.Go(func() {
				<-start
				recorded[i], whys[i], errs[i] = ectest.Migration(t, s, "users").Alarm(ctx, alarm([]string{"web-1", "web-2", "web-3"}[i]))
			})
		}
		close(start)
		wg.Wait()
		var winners int
		for i := range stores {
			require.NoError(t, errs[i])
			if recorded[i] {
				winners++
				assert.Empty(t, whys[i])
			} else {
				assert.Contains(t, whys[i], "an alarm of trigger latency was recorded at ")
				assert.Contains(t, whys[i], "within the quiet period of 10m0s")
			}
		}
		assert.Equal(t, 1, winners, "three instances raising one alarm at once record it once")
		alarms := eventsOfKind(t, m, "alarm")
		require.Len(t, alarms, 1)
		assert.Equal(t, "latency", alarms[0].Reason)
		assert.Equal(t, "users latency 3.1 (threshold 2) over 10m0s, 400 samples", alarms[0].Detail)
		assert.Contains(t, []string{"web-1", "web-2", "web-3"}, alarms[0].Actor)
		assert.Equal(t, expandcontract.SwitchReads, alarms[0].From)

		// Another trigger is another alarm; the same one within the quiet
		// period is not, until the period ends.
		other := alarm("web-1")
		other.Trigger = "mismatch_rate"
		ok, _, err := m.Alarm(ctx, other)
		require.NoError(t, err)
		assert.True(t, ok, "another trigger")
		c.Advance(quiet - time.Second)
		ok, why, err := m.Alarm(ctx, alarm("web-2"))
		require.NoError(t, err)
		assert.False(t, ok, "within the quiet period")
		assert.Contains(t, why, "by "+alarms[0].Actor)
		c.Advance(time.Second)
		ok, _, err = m.Alarm(ctx, alarm("web-2"))
		require.NoError(t, err)
		assert.True(t, ok, "once the quiet period has ended")
		assert.Len(t, eventsOfKind(t, m, "alarm"), 3)

		st, err := m.Status(ctx)
		require.NoError(t, err)
		assert.Nil(t, st.Ceiling, "an alarm sets no ceiling")
		assert.Equal(t, expandcontract.SwitchReads, st.State.Phase)
		assert.Equal(t, "alarm", st.Events[0].Kind, "the status's recent history shows the alarm")
		bound, err := m.Bound(time.Minute, "")
		require.NoError(t, err)
		assert.Equal(t, cutover.Live, bound.Clamp(ctx, cutover.Live), "an alarm leaves the stages alone")
	})
}

// TestAlarmDefaultQuiet: a zero quiet period is DefaultAlarmQuiet.
func TestAlarmDefaultQuiet(t *testing.T) {
	db := testdb.SQLite(t)
	c := ectest.NewClock()
	m := ectest.Ensure(t, ectest.Open(t, db.DB, c), "users")
	a := expandcontract.Alarm{Trigger: "latency", Instance: "web-1"}
	ok, _, err := m.Alarm(t.Context(), a)
	require.NoError(t, err)
	require.True(t, ok)
	c.Advance(expandcontract.DefaultAlarmQuiet - time.Microsecond)
	ok, _, err = m.Alarm(t.Context(), a)
	require.NoError(t, err)
	assert.False(t, ok)
	c.Advance(time.Microsecond)
	ok, _, err = m.Alarm(t.Context(), a)
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestBadInputAlarm: each error says what was wrong and nothing changes.
func TestBadInputAlarm(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		ectest.Keep(t, db)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m := ectest.ToBackfill(t, s, "users")
		good := expandcontract.Alarm{Trigger: "latency", Instance: "web-1"}
		with := func(f func(a *expandcontract.Alarm)) expandcontract.Alarm {
			a := good
			f(&a)
			return a
		}
		before := ectest.Snapshot(t, db, true)
		for _, tc := range []struct {
			a    expandcontract.Alarm
			what string
		}{
			{with(func(a *expandcontract.Alarm) { a.Trigger = "" }), `alarm trigger "" must be 1 to 255 bytes`},
			{with(func(a *expandcontract.Alarm) { a.Trigger = "a\nb" }), "holds a control character"},
			{with(func(a *expandcontract.Alarm) { a.Instance = "" }), `instance id "" must be 1 to 255 bytes`},
			{with(func(a *expandcontract.Alarm) { a.Quiet = -time.Second }), "alarm quiet period must not be negative"},
			{with(func(a *expandcontract.Alarm) { a.Figures = strings.Repeat("x", 1025) }), "up to 1024 bytes of UTF-8, got 1025"},
			{with(func(a *expandcontract.Alarm) { a.Figures = "\xff" }), "up to 1024 bytes of UTF-8"},
		} {
			ok, _, err := m.Alarm(ctx, tc.a)
			assert.False(t, ok)
			ectest.ErrorIs(t, err, tc.what, expandcontract.ErrInvalidInput)
		}
		ok, _, err := ectest.Migration(t, s, "never-created").Alarm(ctx, good)
		assert.False(t, ok)
		ectest.ErrorIs(t, err, `"never-created"`, expandcontract.ErrNotFound)
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "bad input changes nothing")
	})
}
