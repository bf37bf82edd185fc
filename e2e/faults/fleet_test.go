package faults

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
	"github.com/cutover-go/cutover/trigger"
)

// The sizes of a fleet, and its settings in the fake clock that its
// monitors and bounds share.
const (
	fleetStep      = 5 * time.Second  // fake time per round, and the monitors' bucket
	fleetTTL       = 10 * time.Second // the bounds' TTL
	fleetCoolDown  = 10 * time.Minute // a demotion's cool-down, and the quiet period after a lift
	fleetWorkers   = 8                // workers of each instance
	fleetPerWorker = 16               // keys each owns
	fleetOps       = 8                // operations per worker per round
	fleetRoundWait = 2 * time.Minute  // the longest a round's operations may take
	fleetReadWait  = 30 * time.Second // the longest a bound's background read may take
)

// fleetInstances are the names of a fleet's service instances.
var fleetInstances = []string{"api-1", "api-2"}

// sensitiveRules are the triggers of TestAutoDemotion: the playbook's
// automatic rollback (error rate above 5%, availability below 95%) over
// windows of 30 seconds with 50 samples, and its latency and mismatch
// alarms over a minute.
func sensitiveRules() []trigger.Rule {
	return []trigger.Rule{
		{Kind: trigger.ErrorRate, Threshold: trigger.DefaultErrorRate, Window: 30 * time.Second, MinSamples: 50, Action: trigger.Demote},
		{Kind: trigger.Availability, Threshold: trigger.DefaultAvailability, Window: 30 * time.Second, MinSamples: 50, Action: trigger.Demote},
		{Kind: trigger.Latency, Threshold: trigger.DefaultLatencyRatio, Window: time.Minute, MinSamples: 50, Action: trigger.Alarm},
		{Kind: trigger.MismatchRate, Threshold: trigger.DefaultMismatchRate, Window: time.Minute, MinSamples: 50, Action: trigger.Alarm},
	}
}

// observers tells each of its observers of every event: the monitors of
// one instance behind one wrapper.
type observers []cutover.Observer

func (os observers) ObserveCall(ctx context.Context, c cutover.CallEvent) {
	for _, o := range os {
		o.ObserveCall(ctx, c)
	}
}

func (os observers) ObserveFallback(ctx context.Context, f cutover.FallbackEvent) {
	for _, o := range os {
		o.ObserveFallback(ctx, f)
	}
}

func (os observers) ObserveComparison(ctx context.Context, c cutover.ComparisonEvent) {
	for _, o := range os {
		o.ObserveComparison(ctx, c)
	}
}

// ObservesLatency reports whether one of the observers uses latencies.
func (os observers) ObservesLatency() bool {
	for _, o := range os {
		if lo, ok := o.(cutover.LatencyObserver); !ok || lo.ObservesLatency() {
			return true
		}
	}
	return false
}

// instance is one service instance of a fleet: its own connection pools
// to both stores, its own handle of the metadata store on the fake clock,
// its own bound, monitors, breaker, writer and reader, and its load. The
// repair log and its repairer are the walker's, shared by the fleet, so
// that one clock, the real one, says when an entry is due.
type instance struct {
	name   string
	mig    *expandcontract.Migration
	bound  *expandcontract.Bound
	mons   []*trigger.Monitor
	lib    *library
	gets   *shadowread.Reader[User]
	load   *Load
	stages [len(cutover.Stages)]atomic.Int64 // operations by stage since the last round
	hooks  atomic.Int64                      // calls of the alarm hook
}

// fleet is a migration walked to switchreads by a walker, with the flag
// at live and the instances of fleetInstances serving it, in rounds: each
// round moves the fake clock on by fleetStep, evaluates every monitor (as
// Monitor.Run would once per interval), and lets every worker of every
// instance make fleetOps operations.
type fleet struct {
	*walker
	clock *testutil.Clock
	start time.Time                 // the fake clock's start
	flag  *Stages                   // the flag owner's stage
	op    *expandcontract.Migration // an operator's handle, on the fake clock
	inst  []*instance
	round int

	// changed is when the ceiling last changed, by the fake clock; from
	// changed + fleetTTL on, every bound must make live want.
	changed time.Time
	want    cutover.Stage
	setAt   time.Time // the SetAt of the ceiling last seen
	// figures is the worst figure each kind of trigger reached with its
	// minimum samples, over every monitor and evaluation.
	figures map[trigger.Kind]float64
}

// newFleet walks the migration name on the database kind to switchreads
// under the walker's load, stops that load, and starts the fleet's
// instances, each with one monitor per rule set.
func newFleet(t *testing.T, kind, name string, rulesets ...[]trigger.Rule) *fleet {
	s := walkSettings()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	w := &walker{t: t, ctx: ctx, s: s, kind: kind, name: name, rep: &Report{DB: kind}, stages: &Stages{}}
	w.setUp()
	f := &fleet{walker: w, clock: testutil.NewClock(time.Now().UTC().Truncate(time.Second)), flag: &Stages{},
		want: cutover.Live, figures: map[trigger.Kind]float64{}}
	f.start = f.clock.Now()
	f.flag.Set(cutover.Live)
	for _, n := range fleetInstances {
		w.seedKeys(slices.Concat(loadKeys(n, fleetWorkers, fleetPerWorker)...))
	}
	w.move(expandcontract.DualWrite, cutover.DualWrite)
	w.window(cutover.DualWrite, faultNone, s.ops)
	w.move(expandcontract.Backfill, cutover.DualWrite)
	w.window(cutover.DualWrite, Fault{Name: "(backfill)", What: "backfill of the new table"}, 10*s.ops)
	w.backfill()
	w.window(cutover.Shadow, Fault{Name: "(verify)", What: "drain and verify under load"}, 10*s.ops)
	w.verifyUnderLoad()
	w.move(expandcontract.SwitchReads, cutover.Shadow)
	w.closeWindow()
	w.load.Stop()

	f.op = suite.Migration(f.openStore(w.old.DB), name)
	for _, n := range fleetInstances {
		f.inst = append(f.inst, f.newInstance(n, rulesets))
	}
	for _, inst := range f.inst {
		inst.load.Start(ctx)
		t.Cleanup(func() { inst.load.Stop() })
	}
	w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("fleet: %d instances x %d workers x %d keys, %d operations per worker per round; "+
		"fake clock: %v per round, bound TTL %v, cool-down and quiet period %v; secondary timeout %v, p99 bound %v",
		len(f.inst), fleetWorkers, fleetPerWorker, fleetOps, fleetStep, fleetTTL, fleetCoolDown, s.timeout, s.latencyBound()))
	return f
}

// openStore opens a handle of the metadata store in db on the fake clock.
func (f *fleet) openStore(db *sqlx.DB) *expandcontract.Store {
	store, err := expandcontract.Open(f.ctx, db, expandcontract.WithClock(f.clock.Now),
		expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = store.Close() })
	return store
}

// pool opens another connection pool with dsn, sized for an instance,
// and opens its connections, so that no timed call of the load pays for
// connecting.
func (f *fleet) pool(driver, dsn string) *sqlx.DB {
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		f.t.Fatal(err)
	}
	db.SetMaxOpenConns(2 * fleetWorkers)
	db.SetMaxIdleConns(2 * fleetWorkers)
	f.t.Cleanup(func() { db.Close() })
	var conns []*sql.Conn
	for range 2 * fleetWorkers {
		c, err := db.Conn(f.ctx)
		if err != nil {
			f.t.Fatalf("open a connection of an instance: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.Close() // back to the pool, idle
	}
	return db
}

// newInstance starts the instance name, with a monitor per rule set, each
// demoting the fleet to shadow with trigger.DemoteTo and recording its
// alarms in the history.
func (f *fleet) newInstance(name string, rulesets [][]trigger.Rule) *instance {
	t := f.t
	oldDB := f.pool(f.old.DriverName(), f.old.DSN)
	dsn, err := f.proxy.DSN(f.kind, f.newAdmin.DSN)
	if err != nil {
		t.Fatal(err)
	}
	newDB := f.pool(f.newAdmin.DriverName(), dsn)
	stores := [2]*Table{mustTable(t, cutover.Old, oldDB, 0), mustTable(t, cutover.New, newDB, f.s.timeout)}
	store := f.openStore(oldDB)
	inst := &instance{name: name, mig: suite.Migration(store, f.name)}
	if inst.bound, err = inst.mig.Bound(fleetTTL, name); err != nil {
		t.Fatal(err)
	}
	demote, err := trigger.DemoteTo(inst.mig, cutover.Shadow, fleetCoolDown)
	if err != nil {
		t.Fatal(err)
	}
	var obs observers
	for _, rules := range rulesets {
		m, err := trigger.New(f.name, demote, trigger.WithRules(rules...), trigger.WithResolution(fleetStep),
			trigger.WithClock(f.clock.Now), trigger.WithInstance(name), trigger.WithLogger(slog.New(slog.DiscardHandler)),
			trigger.WithAlarmHistory(inst.mig), trigger.WithAlarm(func(context.Context, trigger.Firing) { inst.hooks.Add(1) }))
		if err != nil {
			t.Fatal(err)
		}
		inst.mons = append(inst.mons, m)
		obs = append(obs, m)
	}
	inst.lib = &library{metrics: metrictest.New(t), logger: slog.New(slog.DiscardHandler), store: store,
		durable: f.durable, repairs: f.repairs}
	source := carried(func() cutover.Stage { return cutover.Live }) // every operation carries its stage
	inst.lib.wire(t, source, f.s.timeout, dualwrite.WithObserver(obs))
	inst.gets = newReader[User](t, inst.lib, source, f.s.timeout, shadowread.WithObserver[User](obs))
	inst.load = newLoad(name, fleetWorkers, fleetPerWorker, inst.resolve(f.flag), inst.lib.saves, inst.gets, stores, f.s.pace)
	return inst
}

// resolve returns the stage source of the instance's operations: the
// flag's stage, clamped by the bound, as flags.WithBound(bound.Clamp)
// does, counted by stage.
func (inst *instance) resolve(flag *Stages) func(context.Context) cutover.Stage {
	return func(ctx context.Context) cutover.Stage {
		s := inst.bound.Clamp(ctx, flag.Get())
		inst.stages[s].Add(1)
		return s
	}
}

// roundResult is what one round saw.
type roundResult struct {
	at      time.Time                    // the round's time, by the fake clock
	health  [][]trigger.Health           // by instance and monitor, as evaluated at the round's start
	tot     []Totals                     // what each instance's callers saw
	stages  [][len(cutover.Stages)]int64 // each instance's operations by stage
	clamped []cutover.Stage              // what each bound makes of live at the round's end
	real    time.Duration                // how long the round took
}

// runRound runs one round with fault named on the new store (the proxy
// has it already), checks what the callers of each instance saw as the
// suite checks every window, and waits, once the ceiling changed a TTL
// ago, until every bound has read it.
func (f *fleet) runRound(fault Fault) roundResult {
	t := f.t
	t.Helper()
	start := time.Now()
	if f.round > 0 {
		f.clock.Advance(fleetStep)
	}
	f.round++
	n := len(f.inst)
	r := roundResult{at: f.clock.Now(), tot: make([]Totals, n), stages: make([][len(cutover.Stages)]int64, n),
		clamped: make([]cutover.Stage, n)}
	r.health = f.evaluate()
	wins := make([]*Window, n)
	snaps := make([]snapshot, n)
	for i, inst := range f.inst {
		wins[i] = inst.load.NewWindow(f.round, cutover.Live, fault, fleetOps)
		snaps[i] = takeSnapshot(inst.lib.metrics, f.repairs, f.loop)
		inst.load.Switch(wins[i])
	}
	for slices.ContainsFunc(wins, (*Window).Busy) {
		if time.Since(start) > fleetRoundWait {
			t.Fatalf("round %d (%s): the instances' operations did not end within %v", f.round, fault.Name, fleetRoundWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, inst := range f.inst {
		inst.load.Switch(nil)
		r.tot[i] = wins[i].Totals()
		for s := range r.stages[i] {
			r.stages[i][s] = inst.stages[s].Swap(0)
		}
		row := windowRow(f.kind, inst.name+" "+stagesRun(r.stages[i]), wins[i], r.tot[i], snaps[i],
			takeSnapshot(inst.lib.metrics, f.repairs, f.loop))
		f.rep.Windows = append(f.rep.Windows, row)
		checkWindow(t, fmt.Sprintf("round %d at +%v, %s, %s", f.round, f.since(r.at), inst.name, fault.Name), r.tot[i], f.s)
	}
	f.settle()
	for i, inst := range f.inst {
		r.clamped[i] = inst.bound.Clamp(f.ctx, cutover.Live)
	}
	r.real = time.Since(start)
	return r
}

// since returns the fake time from the fleet's start to at.
func (f *fleet) since(at time.Time) time.Duration { return at.Sub(f.start) }

// stageMix names the stages that counts hold operations of.
func stagesRun(counts [len(cutover.Stages)]int64) string {
	var parts []string
	for s, n := range counts {
		if n > 0 {
			parts = append(parts, cutover.Stage(s).String())
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "+")
}

// evaluate evaluates every monitor of every instance at once, and notes
// a new ceiling in the metadata.
func (f *fleet) evaluate() [][]trigger.Health {
	h := make([][]trigger.Health, len(f.inst))
	var wg sync.WaitGroup
	for i, inst := range f.inst {
		h[i] = make([]trigger.Health, len(inst.mons))
		for j, m := range inst.mons {
			wg.Go(func() { h[i][j] = m.Evaluate(f.ctx) })
		}
	}
	wg.Wait()
	for _, hs := range h {
		for _, mh := range hs {
			for _, th := range mh.Triggers {
				if th.Samples < th.MinSamples {
					continue
				}
				worst, seen := f.figures[th.Kind]
				if !seen || th.Kind == trigger.Availability && th.Figure < worst || th.Kind != trigger.Availability && th.Figure > worst {
					f.figures[th.Kind] = th.Figure
				}
			}
		}
	}
	st, err := f.op.State(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if c := st.Ceiling; c != nil && c.Active(f.clock.Now()) && !c.SetAt.Equal(f.setAt) {
		f.setAt, f.changed, f.want = c.SetAt, c.SetAt, min(cutover.Live, c.Stage)
	}
	return h
}

// settle waits, once the ceiling changed a TTL ago or more by the fake
// clock, until every bound makes live what the ceiling says: the bound
// reads the metadata in the background, on real time, while the fake
// clock stands still. The wait is bounded; running out of it fails the
// test, as a bound that does not apply the ceiling within its TTL.
func (f *fleet) settle() {
	if f.changed.IsZero() || f.clock.Now().Before(f.changed.Add(fleetTTL)) {
		return
	}
	for _, inst := range f.inst {
		start := time.Now()
		for {
			got := inst.bound.Clamp(f.ctx, cutover.Live)
			if got == f.want {
				break
			}
			if time.Since(start) > fleetReadWait {
				f.t.Fatalf("%s: its bound makes live %v, not %v, at +%v by the fake clock, a TTL (%v) or more after the ceiling changed at +%v: "+
					"waited %v for its background read of the metadata", inst.name, got, f.want, f.since(f.clock.Now()), fleetTTL,
					f.since(f.changed), fleetReadWait)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// rounds runs n rounds with no fault, and checks that every operation ran
// in want.
func (f *fleet) rounds(n int, want cutover.Stage) []roundResult {
	f.t.Helper()
	var out []roundResult
	for range n {
		r := f.runRound(faultNone)
		f.allIn(r, want, "no fault")
		out = append(out, r)
	}
	return out
}

// allIn checks that every operation of round r ran in stage want.
func (f *fleet) allIn(r roundResult, want cutover.Stage, what string) {
	f.t.Helper()
	for i, inst := range f.inst {
		if got := r.stages[i][want]; got != r.tot[i].Ops {
			f.t.Errorf("%s, round at +%v: %s ran %d of its %d operations in %s (%s)", what, f.since(r.at), inst.name,
				got, r.tot[i].Ops, want, stagesRun(r.stages[i]))
		}
	}
}

// lift lifts the ceiling as an operator, and runs rounds until a TTL has
// passed, by the fake clock: then every bound makes live live again.
func (f *fleet) lift(reason string) {
	f.t.Helper()
	lifted, err := f.op.Lift(f.ctx, "operator", reason)
	if err != nil || !lifted {
		f.t.Fatalf("lift: %v, %v", lifted, err)
	}
	f.changed, f.want = f.clock.Now(), cutover.Live
	for f.clock.Now().Before(f.changed.Add(fleetTTL)) {
		f.runRound(faultNone)
	}
}

// events returns the migration's events of kind.
func (f *fleet) events(kind string) []expandcontract.Event {
	f.t.Helper()
	all, err := f.op.Events(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []expandcontract.Event
	for _, ev := range all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// hooks returns the calls of the alarm hooks, by instance.
func (f *fleet) hooks() map[string]int64 {
	m := map[string]int64{}
	for _, inst := range f.inst {
		if n := inst.hooks.Load(); n > 0 {
			m[inst.name] = n
		}
	}
	return m
}

// checkEnd stops nothing but checks, with the load idle: pending
// comparisons done and the repair log drained, the stores are identical
// and both hold every write acknowledged to the walker's callers and to
// every instance's.
func (f *fleet) checkEnd() {
	t := f.t
	for _, inst := range f.inst {
		if err := inst.gets.Drain(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.checkIdentical()
	for _, inst := range f.inst {
		for _, side := range []cutover.Side{cutover.Old, cutover.New} {
			rows, err := f.direct[side].Rows(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			lost, _ := inst.load.Lost(rows)
			f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("at the end: %s store: %d acknowledged writes of %s lost", side, len(lost), inst.name))
			if len(lost) > 0 {
				t.Errorf("%s store lost %d acknowledged writes of %s: %s", side, len(lost), inst.name, strings.Join(lost[:min(len(lost), 10)], "; "))
			}
		}
	}
}
