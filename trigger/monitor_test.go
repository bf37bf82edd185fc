package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/trigger"
)

// actions records the firings of both actions. It is safe for concurrent
// use.
type actions struct {
	mu      sync.Mutex
	demoted []trigger.Firing
	alarmed []trigger.Firing
	fail    error // what demote returns
}

func (a *actions) demote(_ context.Context, f trigger.Firing) (trigger.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.demoted = append(a.demoted, f)
	return trigger.Result{}, a.fail
}

func (a *actions) alarm(_ context.Context, f trigger.Firing) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.alarmed = append(a.alarmed, f)
}

func (a *actions) counts() (demoted, alarmed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.demoted), len(a.alarmed)
}

// fixture is a monitor with a fake clock, 10-second buckets and the
// given rules.
type fixture struct {
	clock *testutil.Clock
	acts  *actions
	m     *trigger.Monitor
}

func newFixture(t *testing.T, rules ...trigger.Rule) *fixture {
	t.Helper()
	f := &fixture{clock: testutil.NewClock(time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)), acts: &actions{}}
	m, err := trigger.New("users-email", f.acts.demote, trigger.WithRules(rules...),
		trigger.WithAlarm(f.acts.alarm), trigger.WithClock(f.clock.Now), trigger.WithInstance("api-1"),
		trigger.WithResolution(10*time.Second), trigger.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	f.m = m
	return f
}

// calls observes n calls of side in role in live, failed of them failing,
// each taking d.
func (f *fixture) calls(side cutover.Side, role cutover.Role, n, failed int, d time.Duration) {
	for i := range n {
		o := cutover.CallOK
		if i < failed {
			o = cutover.CallError
		}
		f.m.ObserveCall(context.Background(), cutover.CallEvent{Op: "users.save", Stage: cutover.Live,
			Side: side, Role: role, Outcome: o, Duration: d})
	}
}

// step moves the clock on by d and evaluates.
func (f *fixture) step(t *testing.T, d time.Duration) trigger.Health {
	f.clock.Advance(d)
	return f.m.Evaluate(t.Context())
}

var errorRule = trigger.Rule{Kind: trigger.ErrorRate, Threshold: 0.05, Window: time.Minute, MinSamples: 20, Action: trigger.Demote}

func TestErrorRateFiresAboveThreshold(t *testing.T) {
	f := newFixture(t, errorRule)
	f.calls(cutover.New, cutover.RoleAuthoritative, 100, 10, time.Millisecond)
	f.calls(cutover.Old, cutover.RoleSecondary, 100, 100, time.Millisecond) // the old store's failures do not count
	h := f.step(t, time.Second)

	require.Len(t, f.acts.demoted, 1)
	fired := f.acts.demoted[0]
	assert.Equal(t, "users-email", fired.Migration)
	assert.Equal(t, "api-1", fired.Instance)
	assert.Equal(t, trigger.ErrorRate, fired.Rule.Kind)
	assert.InDelta(t, 0.10, fired.Figure, 1e-9)
	assert.Equal(t, int64(100), fired.Samples)
	assert.False(t, fired.Repeat)
	assert.Equal(t, f.clock.Now(), fired.At)
	assert.False(t, h.Ready)
	require.Len(t, h.Triggers, 1)
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	assert.Equal(t, int64(1), h.Triggers[0].Actions)
	assert.Equal(t, h, f.m.Health())
}

func TestBelowThresholdOrMinimumDoesNotFire(t *testing.T) {
	f := newFixture(t, errorRule)
	f.calls(cutover.New, cutover.RoleAuthoritative, 100, 5, time.Millisecond) // 5%: not above
	h := f.step(t, time.Second)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State)
	assert.InDelta(t, 0.05, h.Triggers[0].Figure, 1e-9)

	g := newFixture(t, errorRule)
	g.calls(cutover.New, cutover.RoleAuthoritative, 19, 19, time.Millisecond) // all failed, one short of the minimum
	h = g.step(t, time.Second)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State)
	assert.Equal(t, int64(19), h.Triggers[0].Samples)
	assert.True(t, h.Ready)
	d, a := f.acts.counts()
	d2, a2 := g.acts.counts()
	assert.Zero(t, d+a+d2+a2, "no action may be called")
}

// TestWindowSlides: failures leave the window once it has slid past their
// bucket, and successes that came later stay.
func TestWindowSlides(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.ErrorRate, Threshold: 0.5, Window: 30 * time.Second, MinSamples: 1, Action: trigger.Alarm})
	f.step(t, 0)
	f.calls(cutover.New, cutover.RoleAuthoritative, 4, 4, time.Millisecond) // bucket 0
	h := f.step(t, 10*time.Second)                                          // bucket 1
	assert.Equal(t, int64(4), h.Triggers[0].Samples)
	f.calls(cutover.New, cutover.RoleAuthoritative, 6, 0, time.Millisecond)
	h = f.step(t, 10*time.Second) // bucket 2: the window holds buckets 0 to 2
	assert.Equal(t, int64(10), h.Triggers[0].Samples)
	assert.InDelta(t, 0.4, h.Triggers[0].Figure, 1e-9)
	h = f.step(t, 10*time.Second) // bucket 3: bucket 0 has left
	assert.Equal(t, int64(6), h.Triggers[0].Samples)
	assert.Zero(t, h.Triggers[0].Figure)
	h = f.step(t, 20*time.Second) // bucket 5: all gone
	assert.Zero(t, h.Triggers[0].Samples)
	_, alarmed := f.acts.counts()
	assert.Equal(t, 1, alarmed, "fired once, in bucket 1, with 4 failures of 4")
}

// TestFiringRepeatsOncePerWindowAndReArms: while it stays firing, the
// action is called again at most once per window; a window without a
// breach re-arms the trigger, which then fires anew.
func TestFiringRepeatsOncePerWindowAndReArms(t *testing.T) {
	f := newFixture(t, errorRule) // a one-minute window
	fail := func() { f.calls(cutover.New, cutover.RoleAuthoritative, 20, 20, time.Millisecond) }
	fail()
	f.step(t, time.Second)
	for range 5 { // 50 seconds, still breaching, within the window
		fail()
		f.step(t, 10*time.Second)
	}
	require.Len(t, f.acts.demoted, 1)
	fail()
	f.step(t, 10*time.Second) // a minute after the first call
	require.Len(t, f.acts.demoted, 2)
	assert.True(t, f.acts.demoted[1].Repeat)

	// The new store recovers: the failures slide out of the window, the
	// trigger stays firing for a window without a breach, then re-arms.
	var h trigger.Health
	for range 12 {
		f.calls(cutover.New, cutover.RoleAuthoritative, 20, 0, time.Millisecond)
		h = f.step(t, 10*time.Second)
	}
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State)
	assert.True(t, h.Ready)
	require.Len(t, f.acts.demoted, 2, "no action while not breaching")

	fail()
	fail()
	fail()
	h = f.step(t, 10*time.Second)
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	require.Len(t, f.acts.demoted, 3)
	assert.False(t, f.acts.demoted[2].Repeat)
}

// TestBreachDuringCalmKeepsFiring: a breach before a whole calm window has
// passed keeps the trigger firing, and the calm starts over.
func TestBreachDuringCalmKeepsFiring(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.ErrorRate, Threshold: 0.5, Window: 20 * time.Second, MinSamples: 1, Action: trigger.Demote})
	f.calls(cutover.New, cutover.RoleAuthoritative, 1, 1, 0)
	f.step(t, time.Second)
	f.step(t, 30*time.Second) // the failure has left: calm starts
	f.calls(cutover.New, cutover.RoleAuthoritative, 1, 1, 0)
	h := f.step(t, 10*time.Second) // breach again, before the calm window ended
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	h = f.step(t, 30*time.Second) // calm starts over
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	h = f.step(t, 20*time.Second)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State)
}

func TestFailedActionIsRetriedAtTheNextEvaluation(t *testing.T) {
	f := newFixture(t, errorRule)
	f.acts.fail = errors.New("metadata unreachable")
	f.calls(cutover.New, cutover.RoleAuthoritative, 20, 20, 0)
	h := f.step(t, time.Second)
	assert.Contains(t, h.Triggers[0].Error, "metadata unreachable")
	assert.Equal(t, trigger.OutcomeFailed, h.Triggers[0].Outcome)
	f.acts.fail = nil
	h = f.step(t, time.Second)
	require.Len(t, f.acts.demoted, 2)
	assert.False(t, f.acts.demoted[1].Repeat, "a retry is the first firing's action, not a repeat")
	assert.True(t, f.acts.demoted[1].Retry)
	assert.False(t, f.acts.demoted[0].Retry)
	assert.Empty(t, h.Triggers[0].Error)
	assert.Equal(t, trigger.OutcomeDone, h.Triggers[0].Outcome)
	h = f.step(t, time.Second)
	require.Len(t, f.acts.demoted, 2, "a success is not repeated within the window")
	assert.Equal(t, int64(2), h.Triggers[0].Actions)
}

func TestActionPanicIsAnError(t *testing.T) {
	m, err := trigger.New("users-email", func(context.Context, trigger.Firing) (trigger.Result, error) { panic("nil map") },
		trigger.WithRules(errorRule), trigger.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	for range 20 {
		m.ObserveCall(t.Context(), cutover.CallEvent{Side: cutover.New, Outcome: cutover.CallTimeout})
	}
	h := m.Evaluate(t.Context())
	assert.Contains(t, h.Triggers[0].Error, "nil map")
	assert.False(t, h.Ready)
}

// TestLatencyAlarmCallsTheHookNotDemote: latency is the new store's mean
// over the old store's, of successful calls in the roles both serve.
func TestLatencyAlarmCallsTheHookNotDemote(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.Latency, Threshold: 2, Window: time.Minute, MinSamples: 10, Action: trigger.Alarm})
	f.calls(cutover.Old, cutover.RoleAuthoritative, 10, 0, 10*time.Millisecond)
	f.calls(cutover.Old, cutover.RoleFallback, 10, 0, time.Microsecond) // not the same requests: left out
	f.calls(cutover.New, cutover.RoleSecondary, 10, 0, 20*time.Millisecond)
	f.calls(cutover.New, cutover.RoleShadow, 10, 10, time.Hour) // failures are not timed
	h := f.step(t, time.Second)
	assert.InDelta(t, 2.0, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State, "twice is not above twice")

	f.calls(cutover.New, cutover.RoleShadow, 10, 0, 40*time.Millisecond)
	h = f.step(t, time.Second)
	assert.InDelta(t, 3.0, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, int64(10), h.Triggers[0].Samples, "the smaller side's count")
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	assert.True(t, h.Ready, "an alarm leaves the instance ready")
	demoted, alarmed := f.acts.counts()
	assert.Equal(t, 0, demoted)
	assert.Equal(t, 1, alarmed)
	assert.Equal(t, trigger.Latency, f.acts.alarmed[0].Rule.Kind)
}

func TestMismatchRate(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.MismatchRate, Threshold: 0.01, Window: time.Minute, MinSamples: 100, Action: trigger.Alarm})
	compare := func(n int, r cutover.ComparisonResult) {
		for range n {
			f.m.ObserveComparison(t.Context(), cutover.ComparisonEvent{Op: "users.get", Stage: cutover.Shadow, Result: r})
		}
	}
	compare(98, cutover.CompareMatch)
	compare(1, cutover.CompareMismatch)
	compare(50, cutover.CompareError) // no verdict: left out, as are races and oversized values
	compare(50, cutover.CompareRace)
	compare(50, cutover.CompareTooLarge)
	h := f.step(t, time.Second)
	assert.Equal(t, int64(99), h.Triggers[0].Samples)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State, "below the minimum")
	compare(1, cutover.CompareMismatch)
	h = f.step(t, time.Second)
	assert.InDelta(t, 0.02, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	_, alarmed := f.acts.counts()
	assert.Equal(t, 1, alarmed)
}

// TestAvailability: authoritative calls of the new store that the old
// store answered, or that failed in complete, count against it; a refused
// call counts as asked.
func TestAvailability(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.Availability, Threshold: 0.95, Window: 2 * time.Minute, MinSamples: 20, Action: trigger.Demote})
	h := f.step(t, time.Second)
	assert.Equal(t, 1.0, h.Triggers[0].Figure, "nothing asked: nothing refused")
	f.calls(cutover.New, cutover.RoleAuthoritative, 19, 0, time.Millisecond)
	f.calls(cutover.New, cutover.RoleSecondary, 100, 0, time.Millisecond) // not authoritative: left out
	f.m.ObserveCall(t.Context(), cutover.CallEvent{Stage: cutover.Live, Side: cutover.New, Role: cutover.RoleAuthoritative, Outcome: cutover.CallRefused})
	f.m.ObserveFallback(t.Context(), cutover.FallbackEvent{Stage: cutover.Live, Reason: cutover.FallbackRefused})
	h = f.step(t, time.Second)
	assert.InDelta(t, 0.95, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, int64(20), h.Triggers[0].Samples)
	assert.Equal(t, trigger.StateOK, h.Triggers[0].State, "95% is not below 95%")
	f.m.ObserveCall(t.Context(), cutover.CallEvent{Stage: cutover.Complete, Side: cutover.New, Role: cutover.RoleAuthoritative, Outcome: cutover.CallPanic})
	h = f.step(t, time.Second)
	assert.InDelta(t, 19.0/21, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, trigger.StateFiring, h.Triggers[0].State)
	assert.False(t, h.Ready)
	require.Len(t, f.acts.demoted, 1)
}

// TestCanceledCallsCountNowhere: a call the caller canceled says nothing
// of the store.
func TestCanceledCallsCountNowhere(t *testing.T) {
	f := newFixture(t, errorRule, trigger.Rule{Kind: trigger.Availability, Threshold: 0.95, Window: time.Minute, MinSamples: 1, Action: trigger.Demote})
	for range 50 {
		f.m.ObserveCall(t.Context(), cutover.CallEvent{Stage: cutover.Complete, Side: cutover.New, Role: cutover.RoleAuthoritative, Outcome: cutover.CallCanceled})
	}
	h := f.step(t, time.Second)
	assert.Zero(t, h.Triggers[0].Samples)
	assert.Zero(t, h.Triggers[1].Samples)
}

func TestReadiness(t *testing.T) {
	f := newFixture(t, errorRule)
	get := func(method string) (*http.Response, trigger.Health) {
		rec := httptest.NewRecorder()
		f.m.Readiness().ServeHTTP(rec, httptest.NewRequest(method, "/readyz", nil))
		var h trigger.Health
		if method == http.MethodGet && rec.Code != http.StatusMethodNotAllowed {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &h), rec.Body.String())
		}
		return rec.Result(), h
	}
	res, h := get(http.MethodGet)
	assert.Equal(t, http.StatusOK, res.StatusCode, "ready before the first evaluation")
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.True(t, h.Ready)
	assert.True(t, h.At.IsZero())

	f.calls(cutover.New, cutover.RoleAuthoritative, 20, 20, 0)
	f.step(t, time.Second)
	rec := httptest.NewRecorder()
	f.m.Readiness().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	assert.Equal(t, false, raw["ready"])
	tr := raw["triggers"].([]any)[0].(map[string]any)
	assert.Equal(t, "error_rate", tr["kind"])
	assert.Equal(t, "demote", tr["action"])
	assert.Equal(t, "firing", tr["state"])
	assert.Equal(t, 1.0, tr["figure"])
	assert.Equal(t, 60.0, tr["window_seconds"])

	res, _ = get(http.MethodHead)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, _ = get(http.MethodPost)
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

// TestConcurrentObservation: observations from several goroutines, while
// evaluations run, are all counted (the clock stands still, so every one
// lands in one bucket).
func TestConcurrentObservation(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.ErrorRate, Threshold: 1, Window: time.Minute, MinSamples: 1, Action: trigger.Alarm},
		trigger.Rule{Kind: trigger.MismatchRate, Threshold: 1, Window: time.Minute, MinSamples: 1, Action: trigger.Alarm})
	const workers, each = 4, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				o := cutover.CallOK
				if (w+i)%4 == 0 {
					o = cutover.CallError
				}
				f.m.ObserveCall(t.Context(), cutover.CallEvent{Side: cutover.New, Outcome: o, Duration: time.Millisecond})
				f.m.ObserveComparison(t.Context(), cutover.ComparisonEvent{Result: cutover.ComparisonResult(i % 2)})
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			f.m.Evaluate(t.Context())
			_ = f.m.Health()
		}
	})
	wg.Wait()
	h := f.m.Evaluate(t.Context())
	assert.Equal(t, int64(workers*each), h.Triggers[0].Samples)
	assert.InDelta(t, 0.25, h.Triggers[0].Figure, 1e-9)
	assert.Equal(t, int64(workers*each), h.Triggers[1].Samples)
	assert.InDelta(t, 0.5, h.Triggers[1].Figure, 1e-9)
}

// TestConcurrentObservationAcrossBuckets: observations racing with
// evaluations that move the bucket on are counted at most once, none
// outside the window, and the race detector sees no race.
func TestConcurrentObservationAcrossBuckets(t *testing.T) {
	f := newFixture(t, trigger.Rule{Kind: trigger.ErrorRate, Threshold: 1, Window: 20 * time.Second, MinSamples: 1, Action: trigger.Alarm})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var observed [2]int64
	for w := range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f.m.ObserveCall(t.Context(), cutover.CallEvent{Side: cutover.New, Outcome: cutover.CallError})
				observed[w]++
			}
		})
	}
	var maxSamples int64
	for range 200 {
		h := f.step(t, 5*time.Second)
		maxSamples = max(maxSamples, h.Triggers[0].Samples)
	}
	close(stop)
	wg.Wait()
	assert.LessOrEqual(t, maxSamples, observed[0]+observed[1])
	h := f.step(t, 30*time.Second)
	assert.Zero(t, h.Triggers[0].Samples, "a window after the last observation, none is left")
}

// TestRunEvaluatesUntilClose: Run evaluates on its own, stops on Close,
// and a Run after Close returns at once.
func TestRunEvaluatesUntilClose(t *testing.T) {
	f := newFixture(t, errorRule)
	m, err := trigger.New("users-email", f.acts.demote, trigger.WithRules(errorRule),
		trigger.WithInterval(time.Millisecond), trigger.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	f.m = m
	f.calls(cutover.New, cutover.RoleAuthoritative, 20, 20, 0)
	done := make(chan error, 1)
	go func() { done <- m.Run(t.Context()) }()
	// Wait, for at most a minute, for an evaluation that fired.
	require.Eventually(t, func() bool { return !m.Health().Ready }, time.Minute, time.Millisecond,
		"Run evaluated nothing")
	m.Close()
	require.NoError(t, <-done)
	require.NoError(t, m.Run(t.Context()))
	m.Close()
	demoted, _ := f.acts.counts()
	assert.Equal(t, 1, demoted)
}

// TestRunStopsWithItsContext: a canceled context ends Run.
func TestRunStopsWithItsContext(t *testing.T) {
	f := newFixture(t, errorRule)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, f.m.Run(ctx))
	assert.False(t, f.m.Health().At.IsZero(), "Run evaluates once before it waits")
}
