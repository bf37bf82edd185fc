package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/shadowread"
)

// keyState is what the callers know about one key. Each key belongs to one
// worker, which writes it one version after the other, so the last
// acknowledged version is exact: only that worker touches its keys' states
// while the load runs.
type keyState struct {
	attempted int64 // the highest version a write was attempted with
	acked     int64 // the highest version a write was acknowledged with
	ackedWin  int   // the window of that acknowledgement, -1 for the seed
	// lastStage is the stage of the last attempted write.
	lastStage cutover.Stage
	// unrecorded is set once a write of the key failed because the repair
	// log could not record it: the stores may then differ with no entry to
	// repair them.
	unrecorded bool
}

// callerError is an error a caller got, kept as an example for the report.
type callerError struct {
	Op    string
	Stage cutover.Stage
	Err   error
}

// workerStats is what one worker saw during one window. Only that worker
// writes it, but for ops, which the controller reads atomically; the
// controller reads the rest once the window is closed.
type workerStats struct {
	ops, writes, acked, writeErrs, reads, readErrs int64

	foreign    int64 // errors not from the authoritative store
	unrecorded int64 // errors because the repair log could not record the key
	unexpected int64 // errors in a stage where the old store answers for a failing new one
	stale      int64 // reads of an own key older than its last acknowledged write
	staleBad   int64 // of stale, those in a stage that must read the freshest copy

	latency     []time.Duration
	foreignErrs []callerError // first few
	otherErrs   []callerError // first few
}

// Stages is the stage source of the walk. The controller sets the stage;
// each operation resolves it once, as a flag is evaluated once per request,
// and carries it in its context, so that the library and the checks of the
// operation see the same stage even when the controller moves on meanwhile.
type Stages struct{ cur atomic.Uint32 }

type stageKey struct{}

// Set makes s the stage of the operations that start from now on.
func (st *Stages) Set(s cutover.Stage) { st.cur.Store(uint32(s)) }

// Get returns the stage set last.
func (st *Stages) Get() cutover.Stage { return cutover.Stage(st.cur.Load()) }

// Source returns the stage source to give the library: the stage the
// operation's context carries.
func (st *Stages) Source() cutover.StageSource { return carried(st.Get) }

// carried returns a stage source that gives the stage an operation's
// context carries, and otherwise the one stage returns.
func carried(stage func() cutover.Stage) cutover.StageSource {
	return cutover.StageFunc(func(ctx context.Context) cutover.Stage {
		if s, ok := ctx.Value(stageKey{}).(cutover.Stage); ok {
			return s
		}
		return stage()
	})
}

// Window is one slice of the walk: one stage, one fault, and what the
// callers saw meanwhile.
type Window struct {
	Index int
	Stage cutover.Stage
	Fault Fault
	Start time.Time

	cap     int64 // operations per worker in this window
	active  atomic.Int64
	workers []workerStats
}

// Load is the concurrent traffic of the walk: workers that write their own
// keys and read random keys through the library, as fast as the pace lets
// them and at most a bounded number of times per window.
type Load struct {
	stage  func(ctx context.Context) cutover.Stage // the stage of an operation about to start
	saves  *dualwrite.Writer
	gets   *shadowread.Reader[User]
	stores [2]*Table
	pace   time.Duration // pause between two operations of a worker
	// deadline bounds each operation, as a request deadline would; the
	// stores' own timeouts are much shorter.
	deadline time.Duration

	keys  [][]string   // keys[w] are the keys of worker w
	state [][]keyState // state[w][k] is the state of keys[w][k]
	all   []string     // every key

	windows
}

// windows runs the workers of a load and switches the window they record
// into. Each worker waits for a window, makes operations in it until its
// share of the window runs out, pausing about pace between two, and works
// until Stop.
type windows struct {
	workers int
	pace    time.Duration // mean pause between two operations of a worker

	cur     atomic.Pointer[Window]
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// operation makes one operation of worker id in window w, recording into
// ws, the worker's share of w.
type operation func(ctx context.Context, id int, w *Window, ws *workerStats, rng *rand.Rand)

// NewLoad returns the load of workers workers, each owning perWorker keys
// seeded at version 1 in the old store.
func NewLoad(workers, perWorker int, stages *Stages, saves *dualwrite.Writer, gets *shadowread.Reader[User], stores [2]*Table, pace time.Duration) *Load {
	return newLoad("user", workers, perWorker, func(context.Context) cutover.Stage { return stages.Get() }, saves, gets, stores, pace)
}

// newLoad returns the load of workers workers, each owning perWorker keys
// named after prefix, seeded at version 1 in the old store; each
// operation's stage is what stage returns as it starts.
func newLoad(prefix string, workers, perWorker int, stage func(context.Context) cutover.Stage, saves *dualwrite.Writer,
	gets *shadowread.Reader[User], stores [2]*Table, pace time.Duration) *Load {
	l := &Load{stage: stage, saves: saves, gets: gets, stores: stores, deadline: 5 * time.Second,
		keys: loadKeys(prefix, workers, perWorker), state: make([][]keyState, workers), windows: windows{workers: workers, pace: pace}}
	for w := range workers {
		for _, id := range l.keys[w] {
			l.state[w] = append(l.state[w], keyState{attempted: 1, acked: 1, ackedWin: -1})
			l.all = append(l.all, id)
		}
	}
	slices.Sort(l.all)
	return l
}

// loadKeys returns the keys of a load: keys[w] are the perWorker keys of
// worker w, named after prefix.
func loadKeys(prefix string, workers, perWorker int) [][]string {
	keys := make([][]string, workers)
	for w := range workers {
		for k := range perWorker {
			keys[w] = append(keys[w], fmt.Sprintf("%s-%02d-%03d", prefix, w, k))
		}
	}
	return keys
}

// Keys returns every key, sorted.
func (l *Load) Keys() []string { return l.all }

// Start starts the workers. They wait for a window, and work until Stop.
func (l *Load) Start(ctx context.Context) { l.start(ctx, l.op) }

// start starts the workers, each making its operations with op.
func (l *windows) start(ctx context.Context, op operation) {
	l.stopped.Store(false)
	for w := range l.workers {
		l.wg.Go(func() { l.work(ctx, w, op) })
	}
}

// Stop stops the workers and waits for them, closing the current window.
func (l *windows) Stop() *Window {
	l.stopped.Store(true)
	l.wg.Wait()
	return l.cur.Swap(nil)
}

// NewWindow returns window index of stage and fault, letting each worker
// make at most ops operations in it.
func (l *windows) NewWindow(index int, stage cutover.Stage, f Fault, ops int) *Window {
	return &Window{Index: index, Stage: stage, Fault: f, cap: int64(ops), workers: make([]workerStats, l.workers)}
}

// Switch makes next the window the workers record into, and returns the
// previous one once no operation still records into it.
func (l *windows) Switch(next *Window) *Window {
	if next != nil {
		next.Start = time.Now()
	}
	prev := l.cur.Swap(next)
	if prev != nil {
		for prev.active.Load() != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return prev
}

// Busy reports whether some worker may still make an operation in w.
func (w *Window) Busy() bool {
	for i := range w.workers {
		if atomic.LoadInt64(&w.workers[i].ops) < w.cap {
			return true
		}
	}
	return false
}

func (l *windows) work(ctx context.Context, id int, op operation) {
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	for !l.stopped.Load() && ctx.Err() == nil {
		w := l.cur.Load()
		if w == nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		w.active.Add(1)
		if l.cur.Load() != w {
			w.active.Add(-1)
			continue
		}
		ws := &w.workers[id]
		if atomic.LoadInt64(&ws.ops) >= w.cap {
			w.active.Add(-1)
			time.Sleep(l.pace)
			continue
		}
		op(ctx, id, w, ws, rng)
		atomic.AddInt64(&ws.ops, 1)
		w.active.Add(-1)
		time.Sleep(l.pace/2 + rand.N(l.pace+1))
	}
}

// op makes one write (60%) or one read (40%), half of the reads of the
// worker's own keys, whose last acknowledged version it knows.
func (l *Load) op(ctx context.Context, id int, w *Window, ws *workerStats, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, l.deadline)
	defer cancel()
	stage := l.stage(ctx)
	ctx = context.WithValue(ctx, stageKey{}, stage)
	if rng.IntN(10) < 6 {
		k := rng.IntN(len(l.keys[id]))
		key, st := l.keys[id][k], &l.state[id][k]
		st.attempted++
		st.lastStage = stage
		u := userAt(key, st.attempted)
		start := time.Now()
		err := l.saves.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
			return l.stores[side].Put(ctx, u)
		})
		if ws.wrote(key, stage, start, err) {
			st.acked, st.ackedWin = u.Version, w.Index
		} else if isUnrecorded(err) {
			st.unrecorded = true
		}
		return
	}
	var key string
	var own *keyState
	if rng.IntN(2) == 0 {
		k := rng.IntN(len(l.keys[id]))
		key, own = l.keys[id][k], &l.state[id][k]
	} else {
		key = l.all[rng.IntN(len(l.all))]
	}
	start := time.Now()
	u, err := l.gets.Read(ctx, key, func(ctx context.Context, side cutover.Side) (User, error) {
		return l.stores[side].Get(ctx, key)
	})
	if !ws.read(key, stage, start, err) {
		return
	}
	if own != nil && u.Version < own.acked {
		ws.stale++
		if stage != cutover.Live && stage != cutover.Rampdown {
			// The old store answers up to shadow and holds every
			// acknowledged write; complete starts after every repair.
			ws.staleBad++
		}
	}
}

// wrote counts a write of key in stage that started at start and returned
// err, and reports whether it was acknowledged.
func (ws *workerStats) wrote(key string, stage cutover.Stage, start time.Time, err error) bool {
	ws.latency = append(ws.latency, time.Since(start))
	ws.writes++
	if err == nil {
		ws.acked++
		return true
	}
	ws.writeErrs++
	ws.check(callerError{Op: "write " + key, Stage: stage, Err: err})
	return false
}

// read counts a read of key in stage that started at start and returned
// err, and reports whether it returned a row.
func (ws *workerStats) read(key string, stage cutover.Stage, start time.Time, err error) bool {
	ws.latency = append(ws.latency, time.Since(start))
	ws.reads++
	if err != nil {
		ws.readErrs++
		ws.check(callerError{Op: "read " + key, Stage: stage, Err: err})
		return false
	}
	return true
}

const keepErrors = 5

// check counts an error a caller got, as foreign if it did not come from a
// store the stage makes authoritative.
func (ws *workerStats) check(e callerError) {
	if isUnrecorded(e.Err) {
		// Not the store's error but the repair log's, which has a budget of
		// its own (see TestRepairLogSlowerThanSecondaryTimeout): a caller
		// must never see it while the log is up, so it counts as foreign.
		ws.unrecorded++
		ws.foreign++
		if len(ws.foreignErrs) < keepErrors {
			ws.foreignErrs = append(ws.foreignErrs, e)
		}
		return
	}
	if e.Stage != cutover.Complete {
		// The old store is never faulted and answers whenever the new
		// one fails: no caller may see an error before complete.
		ws.unexpected++
	}
	if fromAuthoritative(e.Stage, e.Err) {
		if len(ws.otherErrs) < keepErrors {
			ws.otherErrs = append(ws.otherErrs, e)
		}
		return
	}
	ws.foreign++
	if len(ws.foreignErrs) < keepErrors {
		ws.foreignErrs = append(ws.foreignErrs, e)
	}
}

// isUnrecorded reports whether err says that a write reached the
// authoritative store but the repair log failed to record that the other
// store needs repair.
func isUnrecorded(err error) bool {
	var se *dualwrite.SecondaryError
	return errors.As(err, &se) && se.RecordErr != nil
}

// fromAuthoritative reports whether err, returned to a caller in stage,
// came from the store that answers for the stage: the old store up to
// shadow; in live and rampdown the old store (which answers when the new
// one fails) or an answer, not a failure, of the new one; the new store in
// complete. A secondary store's failure must never reach the caller.
func fromAuthoritative(stage cutover.Stage, err error) bool {
	var se *dualwrite.SecondaryError
	if errors.As(err, &se) {
		return false
	}
	side, ok := errorSide(err)
	if !ok {
		return false
	}
	switch stage {
	case cutover.Live, cutover.Rampdown:
		return side == cutover.Old || !isStoreFailure(err)
	}
	return side == stage.Authoritative()
}

// Totals is what the callers saw in a window, all workers together.
type Totals struct {
	Ops, Writes, Acked, WriteErrs, Reads, ReadErrs   int64
	Foreign, Unexpected, Unrecorded, Stale, StaleBad int64
	P50, P99, Max                                    time.Duration
	ForeignErrs, OtherErrs                           []callerError
}

// Totals adds up the workers' numbers of a closed window.
func (w *Window) Totals() Totals {
	var t Totals
	var lat []time.Duration
	for i := range w.workers {
		ws := &w.workers[i]
		t.Ops += ws.ops
		t.Writes += ws.writes
		t.Acked += ws.acked
		t.WriteErrs += ws.writeErrs
		t.Reads += ws.reads
		t.ReadErrs += ws.readErrs
		t.Stale += ws.stale
		t.StaleBad += ws.staleBad
		t.Foreign += ws.foreign
		t.Unexpected += ws.unexpected
		t.Unrecorded += ws.unrecorded
		lat = append(lat, ws.latency...)
		t.ForeignErrs = append(t.ForeignErrs, ws.foreignErrs...)
		t.OtherErrs = append(t.OtherErrs, ws.otherErrs...)
	}
	slices.Sort(lat)
	t.P50, t.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	if len(lat) > 0 {
		t.Max = lat[len(lat)-1]
	}
	return t
}

// quantile returns the q-quantile of sorted, by the nearest-rank method:
// the smallest value that at least q of the values do not exceed.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Lost checks every key against the rows of a store: the row must hold the
// key's last acknowledged version or a newer one that was attempted (a
// write whose caller got an error may still have landed), never an older
// one. It returns the keys that fail, with what the store holds, and counts
// them by the window of their last acknowledgement. Call it after Stop.
func (l *Load) Lost(rows map[string]User) (lost []string, byWindow map[int]int64) {
	byWindow = map[int]int64{}
	for w := range l.keys {
		for k, key := range l.keys[w] {
			st := l.state[w][k]
			got, ok := rows[key]
			if ok && got.Version >= st.acked && got.Version <= st.attempted && got == userAt(key, got.Version) {
				continue
			}
			lost = append(lost, fmt.Sprintf("%s: acked v%d, attempted v%d, store has %+v (present %v)", key, st.acked, st.attempted, got, ok))
			byWindow[st.ackedWin]++
		}
	}
	slices.Sort(lost)
	return lost, byWindow
}

// Unrecorded returns the keys a write of which failed because the repair
// log could not record the key. Call it after Stop.
func (l *Load) Unrecorded() map[string]bool {
	m := map[string]bool{}
	for w := range l.keys {
		for k, key := range l.keys[w] {
			if l.state[w][k].unrecorded {
				m[key] = true
			}
		}
	}
	return m
}

// WrittenIn returns the keys whose last write was attempted in stage.
func (l *Load) WrittenIn(stage cutover.Stage) map[string]bool {
	m := map[string]bool{}
	for w := range l.keys {
		for k, key := range l.keys[w] {
			if st := l.state[w][k]; st.lastStage == stage && st.attempted > 1 {
				m[key] = true
			}
		}
	}
	return m
}
