package faults

import (
	"context"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

var (
	soakDuration = flag.Duration("soak.duration", 35*time.Second,
		"how long TestSoak mixes faults, stage moves and repairer restarts under load (capped at 30m)")
	soakSeed = flag.Uint64("soak.seed", 0, "seed of TestSoak's schedule; 0 picks one from the clock (always logged)")
	soakDB   = flag.String("soak.db", "",
		`database of TestSoak: "postgres", "mysql", "all", or "" to pick one by the seed (even: postgres, odd: mysql)`)
)

// soakFaults are the faults TestSoak puts on the new store at random:
// every fault of the walk; faultNone takes the fault away (recover).
var soakFaults = []Fault{faultLatency, faultTimeout, faultReset, faultBandwidth, faultSlicer, faultOutage}

// TestSoak is a bounded soak of the fault suite: with the suite's stores,
// proxy, load and repairer, it walks a migration to switchreads and then,
// for -soak.duration, mixes at random (math/rand/v2, seeded by -soak.seed
// and always logged) faults on the new store and their recovery, stage moves
// forward and back among dualwrite, shadow, live and rampdown, phase moves
// back to backfill and forward again to switchreads (by force: after a move
// back, the guard wants a verification newer than that move, and the checks
// at the end verify), and stops and restarts of the repairer,
// while the suite's sixteen workers write and read. Each slice of the mix,
// from one change to the next, is a window of the suite's report and gets
// the suite's checks: caller errors only from the authoritative store, no
// stale read where the freshest store answers, p99 within the suite's
// bound. At the end, in rampdown with the fault taken away, the repairer
// running, the load idle and the repair log drained, the stores must be
// identical and hold every acknowledged write; then, in complete, the new
// store alone must hold every key's last acknowledged version.
//
// The workers each own their keys, as in TestFaults, so that the last
// acknowledged version of every key is exact; the stores' version-guarded
// upserts still race with the repairer's and the backfill's writes of the
// same keys. The seed fixes the schedule, not the interleaving of the
// workers, so a replay repeats the sequence of faults and moves.
//
// One database per run keeps CI short: by default the seed picks it. Run
//
//	go -C e2e test -race -count=1 -run TestSoak ./faults/ -v
//	go -C e2e test -race -count=1 -run TestSoak ./faults/ -v -soak.seed=N -soak.db=all -soak.duration=10m -timeout=30m
func TestSoak(t *testing.T) {
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	dur := min(max(*soakDuration, time.Second), 30*time.Minute)
	var kinds []string
	switch *soakDB {
	case "":
		kinds = []string{[]string{sqldialect.Postgres, sqldialect.MySQL}[seed%2]}
	case "all":
		kinds = []string{sqldialect.Postgres, sqldialect.MySQL}
	case sqldialect.Postgres, sqldialect.MySQL:
		kinds = []string{*soakDB}
	default:
		t.Fatalf("-soak.db=%q: want postgres, mysql, all or empty", *soakDB)
	}
	t.Logf("soak: seed %d, duration %v, databases %v; replay with -soak.seed=%d -soak.db=%s -soak.duration=%v",
		seed, dur, kinds, seed, kinds[0], dur)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { soak(t, kind, seed, dur) })
	}
}

// soaker is a walker driven by a random schedule.
type soaker struct {
	*walker
	rng      *rand.Rand
	phase    expandcontract.Phase
	stage    cutover.Stage
	fault    Fault
	repairOn bool
	moves    int
	phases   int
	faults   int
	restarts int
}

func soak(t *testing.T, kind string, seed uint64, dur time.Duration) {
	s := walkSettings()
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	rep := &Report{DB: kind}
	w := &walker{t: t, ctx: ctx, s: s, kind: kind, name: "users-soak", rep: rep, stages: &Stages{}}
	k := &soaker{walker: w, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		phase: expandcontract.Expand, stage: cutover.Off, fault: faultNone, repairOn: true}
	start := time.Now()
	defer func() {
		if t.Failed() {
			t.Logf("\n%s", rep)
		}
	}()
	w.setUp()
	// Replace the suite's repairer, while the log is still empty, with one
	// of small batches and a short repair timeout, so that stopping it under
	// a fault is quick.
	w.loop.stop()
	repairer, err := repair.New(w.durable, repairKey(w.stores),
		repair.WithBatch(20), repair.WithBackoff(20*time.Millisecond, 500*time.Millisecond),
		repair.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repairer.Close() })
	w.loop = startRepairs(ctx, repairer)
	t.Cleanup(w.loop.stop)

	// To switchreads, as the walk goes, with a fault in off (the new store
	// is not used) and one under dual writes.
	k.slice(k.pick(soakFaults))
	k.movePhase(expandcontract.DualWrite, cutover.DualWrite)
	k.slice(k.pick(soakFaults))
	k.clearFault()
	k.movePhase(expandcontract.Backfill, cutover.DualWrite)
	w.window(cutover.DualWrite, Fault{Name: "(backfill)", What: "backfill of the new table"}, 10*s.ops)
	w.backfill()
	w.window(cutover.Shadow, Fault{Name: "(verify)", What: "drain and verify under load"}, 10*s.ops)
	k.stage = cutover.Shadow
	w.verifyUnderLoad()
	k.movePhase(expandcontract.SwitchReads, cutover.Shadow)

	// The mix.
	end := time.Now().Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil && !t.Failed() {
		switch n := k.rng.IntN(10); {
		case n < 4:
			if k.fault.Name != faultNone.Name && k.rng.IntN(3) == 0 {
				k.clearFault()
			} else {
				k.applyFault(k.pick(soakFaults))
			}
		case n < 8:
			k.moveStage()
		case n < 9:
			k.movePhaseAtRandom()
		default:
			k.toggleRepairer()
		}
		k.slice(k.fault)
	}

	// The end: recover, restart repairs, back to switchreads and rampdown,
	// let the breaker close under load, then check with the load idle.
	k.clearFault()
	if !k.repairOn {
		k.toggleRepairer()
	}
	if k.phase == expandcontract.Backfill {
		k.forceSwitchReads()
	}
	k.stage = cutover.Rampdown
	k.moves++
	k.slice(faultRecovery)
	w.closeWindow()
	w.checkIdentical()

	k.movePhase(expandcontract.Contract, cutover.Complete)
	k.slice(faultNone)
	w.closeWindow()
	w.load.Stop()
	w.checkComplete()

	tot := rep.Total()
	t.Logf("soak summary: db %s, seed %d, duration %v (mix %v), windows %d, writes %d, acked %d, lost %d, caller errors %d, foreign %d, "+
		"recorded %d, repaired %d, moves %d (phase %d), faults injected %d, repairer restarts %d, worst p99 %v",
		kind, seed, time.Since(start).Round(time.Millisecond), dur, len(rep.Windows), tot.Writes, tot.Acked, tot.Lost,
		tot.WriteErrs+tot.ReadErrs, tot.Foreign, w.repairs.total.Load(), w.loop.repaired.Load(), k.moves, k.phases, k.faults, k.restarts, worstP99(rep))
}

func worstP99(r *Report) time.Duration {
	var p time.Duration
	for _, row := range r.Windows {
		p = max(p, row.P99)
	}
	return p
}

func (k *soaker) pick(fs []Fault) Fault { return fs[k.rng.IntN(len(fs))] }

// slice runs one window of the mix in the current stage, with fault as its
// name (the proxy already has it), for a random 150 ms to 1.2 s.
func (k *soaker) slice(f Fault) {
	w := k.walker
	w.stages.Set(k.stage)
	next := w.load.NewWindow(len(w.rep.Windows)+boolInt(w.open != nil), k.stage, k.label(f), w.s.ops)
	w.switchTo(next)
	d := 150*time.Millisecond + time.Duration(k.rng.Int64N(int64(1050*time.Millisecond)))
	for time.Since(next.Start) < d && next.Busy() && w.ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// label names a window by its fault, marking one with the repairer stopped.
func (k *soaker) label(f Fault) Fault {
	if !k.repairOn {
		f.Name += "+norepair"
	}
	return f
}

func (k *soaker) applyFault(f Fault) {
	if err := k.proxy.Apply(f); err != nil {
		k.t.Fatal(err)
	}
	k.fault = f
	k.faults++
}

func (k *soaker) clearFault() {
	if err := k.proxy.Clear(); err != nil {
		k.t.Fatal(err)
	}
	k.fault = faultNone
}

// moveStage moves the stage one or more steps forward or back within the
// bounds of the phase, never to off and never to complete.
func (k *soaker) moveStage() {
	lo, hi := k.phase.Stages()
	lo = max(lo, cutover.DualWrite)
	if lo == hi {
		return
	}
	for {
		s := lo + cutover.Stage(k.rng.IntN(int(hi-lo)+1))
		if s != k.stage {
			k.stage = s
			k.moves++
			return
		}
	}
}

// movePhaseAtRandom moves the phase back from switchreads to backfill,
// when the stage is one backfill allows, or forward again.
func (k *soaker) movePhaseAtRandom() {
	switch {
	case k.phase == expandcontract.Backfill:
		k.forceSwitchReads()
	case k.phase == expandcontract.SwitchReads && k.stage <= cutover.Shadow:
		k.movePhase(expandcontract.Backfill, k.stage)
	}
}

// movePhase moves the migration to phase to and the stage to stage, as the
// walk's move does.
func (k *soaker) movePhase(to expandcontract.Phase, stage cutover.Stage) {
	k.t.Helper()
	k.move(to, stage)
	k.phase, k.stage = to, stage
	k.moves++
	k.phases++
}

// forceSwitchReads moves the migration from backfill, where a move back
// took it, forward to switchreads again, keeping the stage. The guard
// refuses the move, since the verification before the first switchreads
// started before the move back; a new one would have to wait for the
// fault to go, so the move is forced, as an operator who accepts the
// repair log's catching up would force it.
func (k *soaker) forceSwitchReads() {
	k.t.Helper()
	_, err := suite.Migration(k.store, k.name).Move(k.ctx, expandcontract.Move{To: expandcontract.SwitchReads,
		Actor: "faults", Reason: "soak: forward again without a new verification", Force: true})
	if err != nil {
		k.t.Fatalf("move to switchreads: %v", err)
	}
	k.phase = expandcontract.SwitchReads
	k.moves++
	k.phases++
}

// toggleRepairer stops the repairer, or starts it again, keeping its
// counts.
func (k *soaker) toggleRepairer() {
	w := k.walker
	if k.repairOn {
		w.loop.stop()
		k.repairOn = false
		return
	}
	prev := w.loop
	next := startRepairs(w.ctx, prev.r)
	next.repaired.Add(prev.repaired.Load())
	next.failed.Add(prev.failed.Load())
	w.loop = next
	w.t.Cleanup(next.stop)
	k.repairOn = true
	k.restarts++
}
