package trigger_test

import (
	"context"
	"encoding/json"
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

// TestAlarmHistoryRecordsOnceForTheFleet: two instances' latency alarms
// fire at once; the history records one alarm with the trigger, the
// figures and the instance, the hook of the instance that recorded it is
// called and the other's is not, no ceiling is written, and a window later
// the alarm still firing is recorded once more.
func TestAlarmHistoryRecordsOnceForTheFleet(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		clock := testutil.NewClock(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC))
		open := handles(t, db, clock)
		m := open()
		_, err := m.Ensure(ctx, "deploy")
		require.NoError(t, err)

		var mu sync.Mutex
		hooks := map[string]int{}
		demotes := 0
		rule := trigger.Rule{Kind: trigger.Latency, Threshold: 2, Window: time.Minute, MinSamples: 10, Action: trigger.Alarm}
		var monitors []*trigger.Monitor
		for _, instance := range []string{"api-1", "api-2"} {
			mon, err := trigger.New("users-email", func(context.Context, trigger.Firing) (trigger.Result, error) {
				mu.Lock()
				defer mu.Unlock()
				demotes++
				return trigger.Result{}, nil
			}, trigger.WithRules(rule), trigger.WithClock(clock.Now), trigger.WithInstance(instance),
				trigger.WithResolution(10*time.Second), trigger.WithLogger(testutil.Quiet()),
				trigger.WithAlarmHistory(open()), trigger.WithAlarm(func(_ context.Context, f trigger.Firing) {
					mu.Lock()
					defer mu.Unlock()
					hooks[f.Instance]++
				}))
			require.NoError(t, err)
			monitors = append(monitors, mon)
		}
		slow := func() {
			for _, mon := range monitors {
				mon.Evaluate(ctx)
				for range 10 {
					mon.ObserveCall(ctx, cutover.CallEvent{Stage: cutover.Shadow, Side: cutover.Old, Duration: 10 * time.Millisecond})
					mon.ObserveCall(ctx, cutover.CallEvent{Stage: cutover.Shadow, Side: cutover.New, Role: cutover.RoleSecondary,
						Duration: 30 * time.Millisecond})
				}
			}
			clock.Advance(10 * time.Second)
		}
		evaluate := func() []trigger.Health {
			var wg sync.WaitGroup
			health := make([]trigger.Health, len(monitors))
			for i, mon := range monitors {
				wg.Go(func() { health[i] = mon.Evaluate(ctx) })
			}
			wg.Wait()
			return health
		}
		slow()
		health := evaluate()

		alarms := eventsOfKind(t, m, "alarm")
		require.Len(t, alarms, 1, "two instances firing at once record one alarm")
		assert.Equal(t, "latency", alarms[0].Reason)
		assert.Contains(t, alarms[0].Detail, "users-email alarm: latency 3 (threshold 2) over 1m0s, 10 samples")
		recorder := alarms[0].Actor
		mu.Lock()
		assert.Equal(t, map[string]int{recorder: 1}, hooks, "the hook of the instance that recorded it is called, once")
		assert.Zero(t, demotes)
		mu.Unlock()
		for _, h := range health {
			require.Len(t, h.Triggers, 1)
			th := h.Triggers[0]
			assert.True(t, h.Ready, "an alarm leaves readiness alone")
			assert.Equal(t, trigger.StateFiring, th.State)
			assert.Empty(t, th.Error)
			if h.Instance == recorder {
				assert.Equal(t, trigger.OutcomeDone, th.Outcome)
				assert.Equal(t, "recorded in the history", th.Detail)
			} else {
				assert.Equal(t, trigger.OutcomeSkipped, th.Outcome)
				assert.Contains(t, th.Detail, "not recorded: an alarm of trigger latency was recorded at ")
				assert.Contains(t, th.Detail, "by "+recorder+", within the quiet period of 1m0s")
			}
			body, err := json.Marshal(th)
			require.NoError(t, err)
			assert.Contains(t, string(body), `"outcome":"`+th.Outcome.String()+`"`)
		}
		st, err := m.State(ctx)
		require.NoError(t, err)
		assert.Nil(t, st.Ceiling, "an alarm writes no ceiling")

		// Within the window nothing is repeated; a window later, still
		// slow, the alarm is recorded once more.
		for range 5 {
			slow()
			evaluate()
		}
		assert.Len(t, eventsOfKind(t, m, "alarm"), 1, "no repeat within the window")
		slow()
		evaluate()
		assert.Len(t, eventsOfKind(t, m, "alarm"), 2, "a window later, once more for the fleet")
		mu.Lock()
		total := 0
		for _, n := range hooks {
			total += n
		}
		mu.Unlock()
		assert.Equal(t, 2, total, "one hook call per recorded alarm")
	})
}

// TestAlarmHookCalledOnceWhenTheRecordFails: the history is unreachable;
// the action fails and is retried at each evaluation, and the hook tells a
// person once, not at every retry.
func TestAlarmHookCalledOnceWhenTheRecordFails(t *testing.T) {
	ctx := t.Context()
	db := testdb.SQLite(t)
	s, err := expandcontract.Open(ctx, db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	never, err := s.Migration("never-created") // every record fails: not found
	require.NoError(t, err)
	f := &fixture{clock: testutil.NewClock(time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)), acts: &actions{}}
	f.m, err = trigger.New("users-email", f.acts.demote,
		trigger.WithRules(trigger.Rule{Kind: trigger.Latency, Threshold: 2, Window: time.Minute, MinSamples: 10, Action: trigger.Alarm}),
		trigger.WithAlarm(f.acts.alarm), trigger.WithAlarmHistory(never), trigger.WithClock(f.clock.Now),
		trigger.WithResolution(10*time.Second), trigger.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	f.calls(cutover.Old, cutover.RoleAuthoritative, 10, 0, time.Millisecond)
	f.calls(cutover.New, cutover.RoleSecondary, 10, 0, 5*time.Millisecond)
	for range 3 {
		h := f.step(t, time.Second)
		assert.Equal(t, trigger.OutcomeFailed, h.Triggers[0].Outcome)
		assert.Contains(t, h.Triggers[0].Error, "not found")
	}
	_, alarmed := f.acts.counts()
	assert.Equal(t, 1, alarmed, "the hook is called at the first failure, not at the retries")
}

func TestObservesLatency(t *testing.T) {
	demote := func(context.Context, trigger.Firing) (trigger.Result, error) { return trigger.Result{}, nil }
	m, err := trigger.New("users-email", demote)
	require.NoError(t, err)
	assert.True(t, m.ObservesLatency(), "the default rules watch the latency")
	m, err = trigger.New("users-email", demote, trigger.WithRules(noLatency()...))
	require.NoError(t, err)
	assert.False(t, m.ObservesLatency(), "without a latency rule the wrappers need not time their calls")
}

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
