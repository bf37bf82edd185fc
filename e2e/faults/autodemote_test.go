package faults

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/trigger"
)

var calmFor = flag.Duration("autodemote.calm", time.Minute,
	"how long TestNoFalseDemotion runs its fault-free load (at least 1m, at most 30m)")

// TestAutoDemotion is the automatic back-off under faults, on PostgreSQL
// and on MariaDB: two service instances serve a migration in switchreads
// with the flag at live, each with its own pools, metadata handle, bound,
// monitor (sensitiveRules, demoting with trigger.DemoteTo to shadow),
// breaker, writer and reader. The new store gets 2 s of latency on every
// reply, then, after a recovery, an operator's lift and the quiet period,
// a full outage. Each time, by the fake clock that the monitors and the
// bounds share (a round of load per fleetStep): a demote trigger fires
// within its window of the fault's start, the metadata holds one ceiling
// and the history one demotion with its trigger, figures and instance,
// the instance whose demotion lost the race says why in its health, and
// both bounds make live shadow within the trigger's window plus their TTL.
// After the demotion, every operation runs in shadow, the callers get no
// error and their p99 is within the suite's bound (see
// settings.latencyBound). At the end, with the load idle and the repair
// log drained, the stores are identical and hold every acknowledged
// write.
//
//	go -C e2e test -race -count=1 -run TestAutoDemotion -v ./faults/
func TestAutoDemotion(t *testing.T) {
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		t.Run(kind, func(t *testing.T) {
			f := newFleet(t, kind, "users-auto", sensitiveRules())
			defer func() { t.Logf("\n%s", f.rep) }()
			f.rounds(3, cutover.Live)
			f.demotion(faultLatency)
			f.rounds(3, cutover.Shadow)
			f.lift("new store fast again")
			f.clock.Advance(fleetCoolDown) // the quiet period after the lift
			f.rounds(3, cutover.Live)
			f.demotion(faultOutage)
			f.rounds(3, cutover.Shadow)
			if held := f.events("held"); len(held) > 0 {
				t.Errorf("demotions held by a quiet period: %+v", held)
			}
			f.checkEnd()
		})
	}
}

// demoteWindow is the shortest window of the demote triggers of
// sensitiveRules.
const demoteWindow = 30 * time.Second

// demotion puts fault on the new store, runs rounds until both bounds
// make live shadow, then three more, takes the fault away and checks what
// TestAutoDemotion says.
func (f *fleet) demotion(fault Fault) {
	t := f.t
	t.Helper()
	before := len(f.events("demote"))
	if err := f.proxy.Apply(fault); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	start := f.clock.Now().Add(fleetStep) // the first round under the fault
	n := len(f.inst)
	fired, demoted := make([]time.Time, n), make([]time.Time, n)
	demotedReal := make([]time.Duration, n)
	var during, after []roundResult
	var ceilingRound *roundResult
	limit := int((demoteWindow+fleetTTL)/fleetStep) + 2
	for k := 0; slices.ContainsFunc(demoted, time.Time.IsZero); k++ {
		if k == limit {
			t.Fatalf("%s: after %d rounds (to +%v by the fake clock) not every bound makes live shadow: fired at %v, demoted at %v",
				fault.Name, k, f.since(f.clock.Now()), fired, demoted)
		}
		r := f.runRound(fault)
		for i := range f.inst {
			if fired[i].IsZero() && demoteFiring(r.health[i]) {
				fired[i] = r.at
			}
			if demoted[i].IsZero() && r.clamped[i] < cutover.Live {
				demoted[i], demotedReal[i] = r.at, time.Since(applied)
			}
		}
		if ceilingRound == nil && f.setAt.Equal(r.at) {
			ceilingRound = &r
		}
		during = append(during, r)
	}
	for range 3 {
		r := f.runRound(fault)
		f.allIn(r, cutover.Shadow, fault.Name+" after the demotion")
		after = append(after, r)
	}
	if err := f.proxy.Clear(); err != nil {
		t.Fatal(err)
	}

	st, err := f.op.State(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := st.Ceiling
	if c == nil || ceilingRound == nil {
		t.Fatalf("%s: no ceiling written by a round's evaluation: %+v", fault.Name, c)
	}
	rel := func(at time.Time) time.Duration { return at.Sub(start) }
	if c.Stage != cutover.Shadow || !slices.Contains(fleetInstances, c.Instance) || !strings.Contains(c.Figures, "threshold") ||
		c.Trigger != trigger.ErrorRate.String() && c.Trigger != trigger.Availability.String() {
		t.Errorf("%s: the ceiling: %+v", fault.Name, *c)
	}
	if rel(c.SetAt) > demoteWindow {
		t.Errorf("%s: the ceiling was set at +%v after the fault began, beyond the window %v", fault.Name, rel(c.SetAt), demoteWindow)
	}
	demotes := f.events("demote")[before:]
	if len(demotes) != 1 {
		t.Fatalf("%s: %d demotions in the history, want exactly one: %+v", fault.Name, len(demotes), demotes)
	}
	if ev := demotes[0]; ev.Actor != c.Instance || ev.Reason != c.Trigger || !strings.Contains(ev.Detail, c.Figures) ||
		!strings.Contains(ev.Detail, "ceiling shadow until") {
		t.Errorf("%s: the demotion's event %+v does not record the ceiling %+v", fault.Name, ev, *c)
	}
	for i, inst := range f.inst {
		switch {
		case fired[i].IsZero() || rel(fired[i]) > demoteWindow:
			t.Errorf("%s: %s: a demote trigger fired at +%v, not within its window %v", fault.Name, inst.name, rel(fired[i]), demoteWindow)
		case demoted[i].After(c.SetAt.Add(fleetTTL)):
			t.Errorf("%s: %s: its bound made live shadow at +%v, more than a TTL (%v) after the ceiling (+%v)",
				fault.Name, inst.name, rel(demoted[i]), fleetTTL, rel(c.SetAt))
		case rel(demoted[i]) > demoteWindow+fleetTTL:
			t.Errorf("%s: %s: demoted at +%v, beyond the window plus the TTL (%v)", fault.Name, inst.name, rel(demoted[i]), demoteWindow+fleetTTL)
		}
	}
	f.checkOutcomes(fault.Name, ceilingRound.health, *c)

	var b strings.Builder
	fmt.Fprintf(&b, "%s: fault applied before the round at +%v; ceiling %s set at +%v by %s's %s trigger: %s; one demote event in the history",
		fault.Name, f.since(start), c.Stage, rel(c.SetAt), c.Instance, c.Trigger, c.Figures)
	for i, inst := range f.inst {
		be, bp := callers(during, i)
		ae, ap := callers(after, i)
		fmt.Fprintf(&b, "\n  %s: fired at +%v, its bound made live shadow at +%v (bound: window %v + TTL %v = +%v) by the fake clock, %v after the fault by the real one; "+
			"callers until then: error rate %.2f%%, worst p99 %v; after: error rate %.2f%%, worst p99 %v (bound %v)",
			inst.name, rel(fired[i]), rel(demoted[i]), demoteWindow, fleetTTL, demoteWindow+fleetTTL, demotedReal[i].Round(time.Millisecond),
			100*be, bp, 100*ae, ap, f.s.latencyBound())
		if ae != 0 {
			t.Errorf("%s: %s: the callers' error rate after the demotion is %.2f%%, want 0", fault.Name, inst.name, 100*ae)
		}
	}
	t.Log(b.String())
	f.rep.Notes = append(f.rep.Notes, b.String())
}

// demoteFiring reports whether a demote trigger of one of the monitors
// fires.
func demoteFiring(hs []trigger.Health) bool {
	return firing(hs, func(th trigger.TriggerHealth) bool { return th.Action == trigger.Demote })
}

// latencyFiring reports whether the latency trigger of one of the monitors
// fires.
func latencyFiring(hs []trigger.Health) bool {
	return firing(hs, func(th trigger.TriggerHealth) bool { return th.Kind == trigger.Latency })
}

// firing reports whether a trigger that match accepts fires in one of the
// monitors.
func firing(hs []trigger.Health, match func(trigger.TriggerHealth) bool) bool {
	for _, h := range hs {
		for _, th := range h.Triggers {
			if match(th) && th.State == trigger.StateFiring {
				return true
			}
		}
	}
	return false
}

// checkOutcomes checks the health that the evaluations which made the
// ceiling c left: no instance ready, one demote action done, by the
// instance that set c, and every other firing demote trigger skipped,
// saying which ceiling was in force.
func (f *fleet) checkOutcomes(what string, health [][]trigger.Health, c expandcontract.Ceiling) {
	t := f.t
	t.Helper()
	var done []string
	for i, hs := range health {
		for _, h := range hs {
			if h.Ready {
				t.Errorf("%s: %s is ready while its demote triggers fire", what, f.inst[i].name)
			}
			for _, th := range h.Triggers {
				switch {
				case th.Action != trigger.Demote || th.State != trigger.StateFiring:
				case th.Outcome == trigger.OutcomeDone:
					done = append(done, f.inst[i].name+"/"+th.Kind.String())
				case th.Outcome != trigger.OutcomeSkipped || !strings.Contains(th.Detail, "not applied: a ceiling of shadow set by trigger "+c.Trigger):
					t.Errorf("%s: %s's %s trigger: outcome %s, %q, %q; want skipped, saying the ceiling in force",
						what, f.inst[i].name, th.Kind, th.Outcome, th.Detail, th.Error)
				}
			}
		}
	}
	if want := []string{c.Instance + "/" + c.Trigger}; !slices.Equal(done, want) {
		t.Errorf("%s: demote actions done %v, want %v", what, done, want)
	}
}

// callers returns the error rate and the worst p99 that instance i's
// callers saw in rounds.
func callers(rounds []roundResult, i int) (errRate float64, p99 time.Duration) {
	var ops, errs int64
	for _, r := range rounds {
		ops += r.tot[i].Writes + r.tot[i].Reads
		errs += r.tot[i].WriteErrs + r.tot[i].ReadErrs
		p99 = max(p99, r.tot[i].P99)
	}
	if ops > 0 {
		errRate = float64(errs) / float64(ops)
	}
	return errRate, p99
}

// TestNoFalseDemotion runs the fleet of TestAutoDemotion with no fault,
// on PostgreSQL and MariaDB, for -autodemote.calm (one minute) of real
// time, each instance with two monitors, the default rules and
// sensitiveRules, in rounds of fleetStep by their fake clock (so that the
// default windows of two to ten minutes fill). No demote trigger may fire,
// no ceiling be written and no demotion recorded; every operation runs in
// live. Alarms may fire (the new store is one proxy further away than the
// old one, and a read racing a write may compare two versions): they are
// counted and logged, with the worst figure of each trigger.
//
//	go -C e2e test -race -count=1 -run TestNoFalseDemotion -v ./faults/
func TestNoFalseDemotion(t *testing.T) {
	dur := min(max(*calmFor, time.Minute), 30*time.Minute)
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		t.Run(kind, func(t *testing.T) {
			f := newFleet(t, kind, "users-calm", trigger.DefaultRules(), sensitiveRules())
			start := time.Now()
			var ops int64
			for time.Since(start) < dur && !t.Failed() {
				r := f.runRound(faultNone)
				f.allIn(r, cutover.Live, "no fault")
				for i, hs := range r.health {
					ops += r.tot[i].Ops
					if demoteFiring(hs) {
						t.Errorf("round at +%v: a demote trigger of %s fires with no fault: %+v", f.since(r.at), f.inst[i].name, hs)
					}
				}
			}
			st, err := f.op.State(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Ceiling != nil {
				t.Errorf("a ceiling with no fault: %+v", *st.Ceiling)
			}
			if d, h := f.events("demote"), f.events("held"); len(d)+len(h) > 0 {
				t.Errorf("demotions with no fault: %+v %+v", d, h)
			}
			alarms := f.events("alarm")
			var kinds []string
			for _, a := range alarms {
				kinds = append(kinds, a.Actor+": "+a.Detail)
			}
			t.Logf("no fault for %v of real time, %d rounds, %v by the fake clock, %d operations: no demote trigger fired, no ceiling, no demotion; "+
				"worst figures with their minimum samples: %v; %d alarms recorded %v, alarm hooks called %v",
				time.Since(start).Round(time.Millisecond), f.round, f.since(f.clock.Now()), ops, f.figures, len(alarms), kinds, f.hooks())
		})
	}
}

// TestLatencyAlarmOnly slows the new store of the fleet, so that its calls
// succeed (a query and a new connection's round trips take well under the
// secondary timeout) but take many times the old store's, with one monitor per instance whose
// only trigger is a latency alarm over a minute: the alarm is recorded in
// the history once for the fleet, with its figures, and the hook of the
// instance that recorded it is called once; no ceiling is written, every
// operation stays in live, and the callers get no error. The threshold
// is 5, not the default 2: here the new store is one in-process proxy
// further away than the old one, which alone makes its mean latency two
// to three times the old store's under -race with no fault
// (TestNoFalseDemotion logs the figure), and no alarm may fire before the
// slow-down.
//
//	go -C e2e test -race -count=1 -run TestLatencyAlarmOnly -v ./faults/
func TestLatencyAlarmOnly(t *testing.T) {
	rule := trigger.Rule{Kind: trigger.Latency, Threshold: 5, Window: time.Minute, MinSamples: 50, Action: trigger.Alarm}
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		t.Run(kind, func(t *testing.T) {
			// A query takes two round trips at most (a MySQL one is
			// prepared and executed, and so is a PostgreSQL one the first
			// time a connection sees it), and a new connection, which
			// the change of fault makes, about four more.
			slow := Fault{Name: "slow", What: "20 ms added to every reply",
				Toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":20,"jitter":0}}`}
			f := newFleet(t, kind, "users-slow", []trigger.Rule{rule})
			defer func() { t.Logf("\n%s", f.rep) }()
			f.rounds(3, cutover.Live)
			if a, h := f.events("alarm"), f.hooks(); len(a) > 0 || len(h) > 0 {
				t.Fatalf("alarms before the new store slowed down (latency figure %v): %+v, hooks %v", f.figures[trigger.Latency], a, h)
			}
			baseline := f.figures[trigger.Latency]
			if err := f.proxy.Apply(slow); err != nil {
				t.Fatal(err)
			}
			first := make([]*trigger.Health, len(f.inst)) // each instance's health when its alarm first fired
			for k := 0; slices.Contains(first, nil); k++ {
				if k == 4 {
					t.Fatalf("the latency alarms did not fire within 4 rounds of the slow new store: worst figure %v, first firings %v",
						f.figures[trigger.Latency], first)
				}
				r := f.runRound(slow)
				f.allIn(r, cutover.Live, "slow")
				for i, hs := range r.health {
					if first[i] == nil && latencyFiring(hs) {
						first[i] = &hs[0]
					}
				}
			}
			f.allIn(f.runRound(slow), cutover.Live, "slow")
			if err := f.proxy.Clear(); err != nil {
				t.Fatal(err)
			}

			alarms := f.events("alarm")
			if len(alarms) != 1 || alarms[0].Reason != trigger.Latency.String() || !slices.Contains(fleetInstances, alarms[0].Actor) ||
				!strings.Contains(alarms[0].Detail, "alarm: latency") {
				t.Fatalf("want one latency alarm in the history, got %+v", alarms)
			}
			if h := f.hooks(); len(h) != 1 || h[alarms[0].Actor] != 1 {
				t.Errorf("alarm hooks called %v, want once, by %s, which recorded it", h, alarms[0].Actor)
			}
			st, err := f.op.State(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Ceiling != nil || len(f.events("demote")) > 0 {
				t.Errorf("an alarm demoted: %+v", st.Ceiling)
			}
			for i, h := range first {
				th := h.Triggers[0]
				want := trigger.OutcomeSkipped
				if f.inst[i].name == alarms[0].Actor {
					want = trigger.OutcomeDone
				}
				if !h.Ready || th.Outcome != want {
					t.Errorf("%s: health %+v when its alarm fired, want ready, outcome %s", f.inst[i].name, *h, want)
				}
			}
			msg := fmt.Sprintf("latency figure before the slow-down at most %.3g, with it %.3g (threshold %v); alarm recorded at +%v by %s: %s",
				baseline, f.figures[trigger.Latency], rule.Threshold, f.since(alarms[0].At), alarms[0].Actor, alarms[0].Detail)
			t.Log(msg)
			f.rep.Notes = append(f.rep.Notes, msg)
		})
	}
}
