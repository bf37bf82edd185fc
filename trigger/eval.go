package trigger

import (
	"context"
	"fmt"
	"time"
)

// State is the state of one trigger. The zero value is [StateOK]. It is a
// plain value, safe for concurrent use.
type State uint8

// The states of a trigger.
const (
	StateOK     State = iota // armed: not breaching, or re-armed after a window without a breach
	StateFiring              // breached; its action has been called
)

// String returns "ok" or "firing".
func (s State) String() string {
	if s == StateFiring {
		return "firing"
	}
	return "ok"
}

// MarshalText returns the name of s.
func (s State) MarshalText() ([]byte, error) { return marshal(s, s <= StateFiring) }

// UnmarshalText sets s from its name.
func (s *State) UnmarshalText(text []byte) error { return unmarshal(s, StateFiring+1, text, "state") }

// Outcome is how a trigger's last action ended. The zero value is
// [OutcomeNone]. It is a plain value, safe for concurrent use.
type Outcome uint8

// The outcomes of an action.
const (
	OutcomeNone    Outcome = iota // no action yet
	OutcomeDone                   // it took effect: a demotion set the ceiling, an alarm was recorded or told
	OutcomeSkipped                // it did nothing, which is no failure ([Result.Skipped]); not retried
	OutcomeFailed                 // it returned an error or panicked; retried at the next evaluation
	numOutcomes
)

// String returns "none", "done", "skipped" or "failed".
func (o Outcome) String() string {
	if o < numOutcomes {
		return [numOutcomes]string{"none", "done", "skipped", "failed"}[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// MarshalText returns the name of o.
func (o Outcome) MarshalText() ([]byte, error) { return marshal(o, o < numOutcomes) }

// UnmarshalText sets o from its name.
func (o *Outcome) UnmarshalText(text []byte) error { return unmarshal(o, numOutcomes, text, "outcome") }

// TriggerHealth is one trigger as the last evaluation left it. The zero
// value is a trigger of kind ErrorRate that was never evaluated.
type TriggerHealth struct {
	Kind          Kind      `json:"kind"`
	Action        Action    `json:"action"`
	State         State     `json:"state"`
	Figure        float64   `json:"figure"` // 0 while the window holds no samples (availability: 1)
	Threshold     float64   `json:"threshold"`
	Samples       int64     `json:"samples"`
	MinSamples    int64     `json:"min_samples"`
	WindowSeconds float64   `json:"window_seconds"`
	Since         time.Time `json:"since,omitzero"`       // when it fired, while firing
	LastAction    time.Time `json:"last_action,omitzero"` // the last call of its action
	Actions       int64     `json:"actions"`              // calls of its action so far
	Outcome       Outcome   `json:"outcome"`              // how the last call of its action ended
	Detail        string    `json:"detail,omitempty"`     // what that call said it did, or why it did nothing
	Error         string    `json:"error,omitempty"`      // the last action's error, until one succeeds
}

// Health is the monitor's state for a health check. Ready is false while a
// [Demote] trigger fires: this instance should not serve its stage, and
// the demotion its action writes moves the fleet back. An [Alarm] leaves
// Ready true. The zero value is not ready and names nothing; [Monitor.Health]
// returns filled ones that the caller may keep and change.
type Health struct {
	Migration string          `json:"migration"`
	Instance  string          `json:"instance,omitempty"`
	Ready     bool            `json:"ready"`
	At        time.Time       `json:"evaluated_at,omitzero"` // zero before the first evaluation
	Triggers  []TriggerHealth `json:"triggers"`
}

// Health returns the state the last evaluation left, or, before the first,
// every trigger ok and the monitor ready.
func (m *Monitor) Health() Health {
	h := *m.health.Load()
	h.Triggers = append([]TriggerHealth(nil), h.Triggers...)
	return h
}

// Run evaluates the triggers once per interval ([WithInterval]) until ctx
// is done or [Monitor.Close] is called, and returns nil. Actions run on
// Run's goroutine; the monitor starts none. Run more than once at a time
// is allowed but pointless: evaluations take turns.
func (m *Monitor) Run(ctx context.Context) error {
	m.running.Add(1)
	defer m.running.Done()
	select {
	case <-m.closed:
		return nil
	default:
	}
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-m.closed:
			return nil
		case <-t.C:
		}
	}
}

// Close stops [Monitor.Run] and waits for it to return; a Run called after
// Close returns at once. Observing a closed monitor still counts, but
// nothing evaluates. Close is safe to call more than once.
func (m *Monitor) Close() {
	m.closeOnce.Do(func() { close(m.closed) })
	m.running.Wait()
}

// Evaluate reads the clock, moves observations on to the bucket of that
// time, evaluates every trigger over its window, calls the actions of those
// that fire and returns the health it left. [Monitor.Run] calls it once per
// interval; a service with its own loop, or a test with a fake clock, may
// call it instead. Calls take turns.
func (m *Monitor) Evaluate(ctx context.Context) Health {
	m.eval.Lock()
	defer m.eval.Unlock()
	now := m.now()
	e := int64(now.Sub(m.start) / m.resolution)
	if e > m.cur.Load() { // a clock that went back leaves the number where it was
		m.cur.Store(e)
	}
	e = m.cur.Load()
	for _, t := range m.triggers {
		m.evaluate(ctx, t, e, now)
	}
	h := m.snapshot(now)
	m.health.Store(h)
	return *h
}

// sum returns the counts of the n buckets up to the number e.
func (m *Monitor) sum(e, n int64) (s [numCounters]int64) {
	for i := max(e-n+1, 0); i <= e; i++ {
		b := &m.ring[i%int64(len(m.ring))]
		if b.epoch.Load() != i {
			continue // nothing was observed in that bucket
		}
		for k := range s {
			s[k] += b.n[k].Load()
		}
	}
	return s
}

// figure returns t's figure over s and the samples it is taken over.
func figure(k Kind, s *[numCounters]int64) (float64, int64) {
	rate := func(num, den int64) (float64, int64) {
		if den == 0 {
			return 0, 0
		}
		return float64(num) / float64(den), den
	}
	switch k {
	case ErrorRate:
		return rate(s[newFailed], s[newCalls])
	case Latency:
		n := min(s[newTimed], s[oldTimed])
		if n == 0 || s[oldNanos] == 0 {
			return 0, 0
		}
		newMean := float64(s[newNanos]) / float64(s[newTimed])
		oldMean := float64(s[oldNanos]) / float64(s[oldTimed])
		return newMean / oldMean, n
	case MismatchRate:
		return rate(s[mismatches], s[comparisons])
	}
	f, n := rate(s[authCalls]-s[unanswered], s[authCalls])
	if n == 0 {
		return 1, 0 // nothing asked of the new store: nothing refused
	}
	return f, n
}

func (m *Monitor) evaluate(ctx context.Context, t *trigger, e int64, now time.Time) {
	s := m.sum(e, t.buckets)
	t.figure, t.samples = figure(t.rule.Kind, &s)
	breach := t.samples >= t.rule.MinSamples && t.rule.breached(t.figure)
	switch {
	case t.state == StateOK && breach:
		t.state, t.since, t.calm = StateFiring, now, time.Time{}
		m.act(ctx, t, now, false)
	case t.state == StateOK:
	case breach:
		t.calm = time.Time{}
		if t.failed || now.Sub(t.acted) >= t.rule.Window {
			m.act(ctx, t, now, !t.failed)
		}
	case t.calm.IsZero():
		t.calm = now
	case now.Sub(t.calm) >= t.rule.Window:
		t.state, t.since, t.calm, t.failed, t.lastErr = StateOK, time.Time{}, time.Time{}, false, ""
		m.logger.InfoContext(ctx, "cutover: trigger re-armed", "migration", m.migration,
			"trigger", t.rule.Kind.String(), "figure", t.figure, "samples", t.samples)
	}
}

// act calls t's action for a firing at now.
func (m *Monitor) act(ctx context.Context, t *trigger, now time.Time, repeat bool) {
	f := Firing{Migration: m.migration, Instance: m.instance, Rule: t.rule,
		Figure: t.figure, Samples: t.samples, At: now, Repeat: repeat, Retry: t.failed}
	t.acted = now
	t.actions++
	m.logger.WarnContext(ctx, "cutover: trigger fired", "migration", m.migration, "instance", m.instance,
		"trigger", t.rule.Kind.String(), "action", t.rule.Action.String(), "figure", t.figure,
		"threshold", t.rule.Threshold, "samples", t.samples, "window", t.rule.Window, "repeat", repeat)
	actx, cancel := context.WithTimeout(ctx, m.actionTimeout)
	defer cancel()
	res, err := m.call(actx, t.rule.Action, f)
	t.failed = err != nil
	t.lastErr, t.detail = "", res.Detail
	switch {
	case err != nil:
		t.outcome, t.lastErr = OutcomeFailed, err.Error()
		m.logger.ErrorContext(ctx, "cutover: trigger action failed; retried at the next evaluation",
			"migration", m.migration, "trigger", t.rule.Kind.String(), "action", t.rule.Action.String(), "err", err)
	case res.Skipped:
		t.outcome = OutcomeSkipped
		m.logger.InfoContext(ctx, "cutover: trigger action skipped", "migration", m.migration, "instance", m.instance,
			"trigger", t.rule.Kind.String(), "action", t.rule.Action.String(), "detail", res.Detail)
	default:
		t.outcome = OutcomeDone
	}
}

// call calls the action a with f, its panic recovered into an error.
func (m *Monitor) call(ctx context.Context, a Action, f Firing) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("trigger: %s action panicked: %v", a, p)
		}
	}()
	switch {
	case a == Demote:
		res, err = m.demote(ctx, f)
		if err != nil {
			return Result{}, fmt.Errorf("trigger: demote %s: %w", m.migration, err)
		}
		return res, nil
	case m.history != nil:
		res, err = recordAlarm(ctx, m.history, f)
		if m.alarm != nil && (err == nil && !res.Skipped || err != nil && !f.Retry) {
			m.alarm(ctx, f)
		}
		return res, err
	case m.alarm != nil:
		m.alarm(ctx, f)
		return Result{Detail: "hook called"}, nil
	}
	m.logger.ErrorContext(ctx, "cutover: alarm: "+f.String(), "migration", m.migration)
	return Result{Detail: "logged"}, nil
}

// snapshot returns the health of the triggers as evaluated at now.
func (m *Monitor) snapshot(now time.Time) *Health {
	h := &Health{Migration: m.migration, Instance: m.instance, Ready: true, At: now,
		Triggers: make([]TriggerHealth, len(m.triggers))}
	for i, t := range m.triggers {
		h.Triggers[i] = TriggerHealth{Kind: t.rule.Kind, Action: t.rule.Action, State: t.state,
			Figure: t.figure, Threshold: t.rule.Threshold, Samples: t.samples, MinSamples: t.rule.MinSamples,
			WindowSeconds: t.rule.Window.Seconds(), Since: t.since, LastAction: t.acted,
			Actions: t.actions, Outcome: t.outcome, Detail: t.detail, Error: t.lastErr}
		if t.state == StateFiring && t.rule.Action == Demote {
			h.Ready = false
		}
	}
	return h
}

// Hold says why a backfill should wait: while a [Latency] trigger fires,
// the new store is already slower than the budget, and copying rows into
// it would slow it more. It returns "" otherwise, and never an error. It
// reads what the last evaluation left, so it is cheap, and it matches the
// hook of backfill.WithHold:
//
//	backfill.New(m, keys, batch, backfill.WithHold(monitor.Hold))
//
// The reason, recorded in the backfill's state while it holds, names the
// figure, such as "latency trigger firing: new store 3.2x the old
// store's mean latency over 10m0s (threshold 2x)".
func (m *Monitor) Hold(context.Context) (string, error) {
	h := m.health.Load()
	for _, t := range h.Triggers {
		if t.Kind == Latency && t.State == StateFiring {
			return fmt.Sprintf("latency trigger firing: new store %.3gx the old store's mean latency over %v (threshold %.3gx)",
				t.Figure, time.Duration(t.WindowSeconds*float64(time.Second)), t.Threshold), nil
		}
	}
	return "", nil
}
