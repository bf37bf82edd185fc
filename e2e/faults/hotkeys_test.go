package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/shadowread"
	"github.com/cutover-go/cutover/sqlrow"
)

// hotKeys is the number of keys that every worker of TestHotKeys writes.
const hotKeys = 8

// hotSettings are the sizes of a hot-key run: the walk's workers, windows
// and timeouts, on hotKeys keys that all of them share (perWorker is not
// used).
func hotSettings() settings {
	return settings{workers: 16, window: time.Second, ops: 100, pace: 10 * time.Millisecond,
		timeout: 200 * time.Millisecond, drain: time.Minute}
}

// The faults of a hot-key run: a subset of the walk's, so that a run stays
// short, in the order each part of the walk gets them. The parts that end
// with a check end on a fault that fails some calls and not others, so
// that the check finds repairs pending, as a stop of the traffic at any
// moment would.
var (
	hotDualFaults     = []Fault{faultNone, faultLatency, faultReset, faultOutage, faultRecovery}
	hotFaults         = []Fault{faultNone, faultLatency, faultTimeout, faultOutage, faultRecovery, faultReset}
	hotRampdownFaults = []Fault{faultNone, faultOutage, faultReset}
	hotCompleteFaults = []Fault{faultNone, faultLatency, faultOutage, faultRecovery}
)

// TestHotKeys walks a migration through every stage, on PostgreSQL and on
// MariaDB, with sixteen workers that all write and read the same eight
// keys, so that writes of one key race all the time: in each store, with
// the repairer's copies, the backfill's and the verifications' repairs.
//
// Each database gets two runs of the same scenario. The versioned run
// writes with dualwrite.Writer.WriteVersioned and sqlrow.Rows.Save into
// tables with a version column, backfills with sqlrow.CopyRange and
// repairs with sqlrow.Pair.Repair. The run without versions writes with
// Writer.Write and an unguarded upsert (the last writer wins), and repairs
// by copying the row of the entry's source over its target unguarded, as
// the walk did before versions; its backfill is CopyRange too, which with
// every version at 0 only inserts the rows the new store lacks.
//
// The walk moves the migration's phase as TestFaults does: dualwrite, a
// backfill under dual writes, dualwrite and shadow, shadow, a verification
// under load before reads move, then in switchreads shadow and live, live
// and rampdown, rampdown, and, in contract, complete. Where the walk gives
// two stages, each request picks one of them at random (see stageMix), as
// a flag rolled out to part of the traffic would, and the repairer asks
// the same source for the stage of the key it repairs. Each part gets some
// of the suite's faults on the new store, one window each. Verifications
// run while the traffic goes on: before the move to switchreads, and in
// the background through each part of switchreads, each sending the keys
// it finds apart to the repair log.
//
// Each part of switchreads ends with a check, as if the traffic stopped
// there: the load idles, the shadow comparisons and the repair log drain,
// a final verification sends what differs to the repair log, the log
// drains again and a second verification reports what is still apart; then
// both stores are checked against the history of the writes (see
// staleness). After complete the new store alone is checked. A write
// counts as acknowledged when it returned nil. The versioned run must
// leave no key older than an acknowledged write in either store, lose no
// acknowledged write and end each check with the stores identical; the
// run without versions is measured only. Both are logged in one table at
// the end, with the reads that returned a value older than a write
// acknowledged before they started.
//
//	go -C e2e test -race -count=1 -run TestHotKeys -v ./faults/
func TestHotKeys(t *testing.T) {
	var results []*hotResult
	defer func() {
		if len(results) > 0 {
			t.Logf("\n%s", hotTable(results))
		}
	}()
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		t.Run(kind, func(t *testing.T) {
			for _, versioned := range []bool{true, false} {
				res := &hotResult{DB: kind, Versioned: versioned}
				results = append(results, res)
				t.Run(res.run(), func(t *testing.T) {
					hotWalk(t, kind, res)
					if versioned {
						res.assertClean(t)
					}
				})
			}
		})
	}
}

// hotResult is what one run of TestHotKeys measured.
type hotResult struct {
	DB        string
	Versioned bool
	Duration  time.Duration
	Totals    Row // every window's together
	Restamps  int64
	Recorded  int64 // keys recorded in the repair log
	Repaired  int64 // entries the repairer repaired
	// Verifications under load: runs and clean ones, and keys found apart
	// in all; the move to switchreads was forced if none before it was
	// clean.
	Verifies, CleanVerifies, VerifyDiffs int64
	Forced                               bool
	Checks                               []hotCheck
	// Reads that returned a row, and those of them that were stale, by
	// the read's stage.
	Reads, StaleReads [len(cutover.Stages)]int
	Report            *Report
}

func (r *hotResult) run() string {
	if r.Versioned {
		return "versioned"
	}
	return "unversioned"
}

// hotCheck is one store checked at one point of a run. At a point where
// both stores are written, the final verification counted the keys apart
// once the repair log drained, and again once its own repairs drained.
type hotCheck struct {
	Point       string
	Side        cutover.Side
	Final, Left int64 // -1: no verification at this point
	staleness
}

// assertClean fails t unless the run left no store older than an
// acknowledged write and lost no acknowledged write, by real-time order and
// by version, and the stores ended each check identical after the final
// repairs; unless no caller got an error from a store that did not answer
// for its stage; and unless no read was stale in dualwrite and complete,
// where every write is ordered by the store that answers the reads.
func (r *hotResult) assertClean(t *testing.T) {
	t.Helper()
	if r.Totals.Foreign > 0 {
		t.Errorf("%d caller errors did not come from the authoritative store", r.Totals.Foreign)
	}
	for _, s := range []cutover.Stage{cutover.DualWrite, cutover.Complete} {
		if r.StaleReads[s] > 0 {
			t.Errorf("%d reads in %s returned a value older than a write acknowledged before they started", r.StaleReads[s], s)
		}
	}
	for _, c := range r.Checks {
		if c.Older+c.Lost+c.VOlder+c.VLost > 0 {
			t.Errorf("%s, %s store: %d keys older than an acknowledged write, %d acknowledged writes lost; by version %d keys and %d writes: %s",
				c.Point, c.Side, c.Older, c.Lost, c.VOlder, c.VLost, strings.Join(c.Examples, "; "))
		}
		if c.Left > 0 && c.Side == cutover.Old {
			t.Errorf("%s: after the final verification's repairs, %d keys still differ", c.Point, c.Left)
		}
	}
}

// hotTable renders the results of every run: one line per store checked.
func hotTable(results []*hotResult) string {
	var b strings.Builder
	b.WriteString("== hot keys: 16 workers on 8 keys, per-request stages, faults on the new store ==\n")
	b.WriteString("older: keys whose value is older than an acknowledged write (one that started after the write of the value returned); " +
		"lost: such acknowledged writes; notlast: keys holding neither the acknowledged write that finished last nor a write overlapping it; " +
		"v.older, v.lost: the same by version (versioned runs)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "db\trun\tcheck\tstore\tkeys\tmissing\tolder\tlost\tnotlast\tv.older\tv.lost\tfinal\tleft\t")
	for _, r := range results {
		for _, c := range r.Checks {
			v := func(n int64, show bool) string {
				if !show {
					return "-"
				}
				return fmt.Sprint(n)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", r.DB, r.run(), c.Point, c.Side,
				c.Keys, c.Missing, c.Older, c.Lost, c.NotLast, v(int64(c.VOlder), r.Versioned), v(int64(c.VLost), r.Versioned),
				v(c.Final, c.Final >= 0), v(c.Left, c.Left >= 0))
		}
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "db\trun\ttook\twrites\tacked\tw.err\treads\tr.err\tforeign\trestamps\trecorded\trepaired\tverifies\tclean\tapart\tforced\t")
	for _, s := range cutover.Stages[1:] {
		fmt.Fprintf(tw, "stale.%s\t", s)
	}
	fmt.Fprintln(tw)
	for _, r := range results {
		tot := r.Totals
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t", r.DB, r.run(),
			r.Duration.Round(100*time.Millisecond), tot.Writes, tot.Acked, tot.WriteErrs, tot.Reads, tot.ReadErrs, tot.Foreign,
			r.Restamps, r.Recorded, r.Repaired, r.Verifies, r.CleanVerifies, r.VerifyDiffs, r.Forced)
		for _, s := range cutover.Stages[1:] {
			fmt.Fprintf(tw, "%d/%d\t", r.StaleReads[s], r.Reads[s])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	b.WriteString("final, left: keys apart at the final verification of a check, and after its repairs; verifies, clean, apart: " +
		"verifications under load, the clean ones, keys they found apart; forced: the move to switchreads overrode its guard; " +
		"stale.STAGE: reads of that stage that returned a value older than a write acknowledged before they started, of those that returned a row\n")
	return b.String()
}

// stageMix is the stage source of TestHotKeys. The walk sets the stages
// that the flag may pick in the current part of the walk, and each request
// picks one of them at random, once, as a flag rolled out to a share of
// the requests is evaluated once per request, and carries it in its
// context, so that the library and the checks of the request see the same
// stage. A call with no stage in its context, such as the repairer's,
// picks one.
type stageMix struct {
	cur atomic.Pointer[[]cutover.Stage]
}

// Set makes ss the stages that requests pick from from now on.
func (m *stageMix) Set(ss ...cutover.Stage) { m.cur.Store(&ss) }

// stages returns the stages set.
func (m *stageMix) stages() []cutover.Stage { return *m.cur.Load() }

// pick returns one of the stages set, at random.
func (m *stageMix) pick() cutover.Stage {
	ss := m.stages()
	return ss[rand.IntN(len(ss))]
}

// label names the stages set, as in "shadow+live".
func (m *stageMix) label() string {
	var names []string
	for _, s := range m.stages() {
		names = append(names, s.String())
	}
	return strings.Join(names, "+")
}

// Source returns the stage source to give the library.
func (m *stageMix) Source() cutover.StageSource { return carried(m.pick) }

// hotRow is a row of the users table as the hot-key load reads it.
type hotRow struct {
	Name    string
	Version cutover.Version
}

// hotTables is the users table of one run in both stores, as the
// application writes, reads, copies and repairs it: with versions, through
// package sqlrow, or without, with unguarded upserts.
type hotTables struct {
	versioned bool
	rows      *sqlrow.Rows  // the table in either store; in the run without versions every version stays 0
	dbs       [2]*sqlx.DB   // as the application reaches them: the new store through the proxy
	timeout   time.Duration // bound on each call to the new store, as Table's
	upsert    string        // the unguarded upsert of the run without versions
	restamps  atomic.Int64  // versioned calls that found a newer version and were stamped again
}

func newHotTables(t *testing.T, kind string, dbs [2]*sqlx.DB, timeout time.Duration, versioned bool) *hotTables {
	t.Helper()
	rows, err := sqlrow.New(dbs[cutover.Old].DriverName(), sqlrow.Table{Name: "users", Key: "id", Version: "version", Columns: []string{"name"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &hotTables{versioned: versioned, rows: rows, dbs: dbs, timeout: timeout}
	switch kind {
	case sqldialect.MySQL:
		h.upsert = `INSERT INTO users (id, name, version) VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE name = VALUES(name)`
	default:
		h.upsert = `INSERT INTO users (id, name, version) VALUES ($1, $2, 0) ON CONFLICT (id) DO UPDATE SET name = excluded.name`
	}
	return h
}

// bound bounds a call to side: the new store's by the timeout.
func (h *hotTables) bound(ctx context.Context, side cutover.Side) (context.Context, context.CancelFunc) {
	if side != cutover.New {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, h.timeout)
}

// save writes value as the row of key through w, calling stamped with
// every version a store is handed (versioned run only), and returns the
// version the write returned (0 without versions).
func (h *hotTables) save(ctx context.Context, w *dualwrite.Writer, key, value string, stamped func(cutover.Version)) (cutover.Version, error) {
	if !h.versioned {
		return 0, w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error { return h.put(ctx, side, key, value) })
	}
	return w.WriteVersioned(ctx, key, func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
		stamped(s.Version)
		ctx, cancel := h.bound(ctx, s.Side)
		defer cancel()
		v, err := h.rows.Save(ctx, h.dbs[s.Side], s, key, value)
		if err != nil {
			if errors.Is(err, cutover.ErrStaleVersion) {
				h.restamps.Add(1)
			}
			return v, &StoreError{Side: s.Side, Op: "save", Err: err}
		}
		return v, nil
	})
}

// put is the unguarded upsert of the run without versions.
func (h *hotTables) put(ctx context.Context, side cutover.Side, key, value string) error {
	ctx, cancel := h.bound(ctx, side)
	defer cancel()
	if _, err := h.dbs[side].ExecContext(ctx, h.upsert, key, value); err != nil {
		return &StoreError{Side: side, Op: "put", Err: err}
	}
	return nil
}

// get reads the row of key from side.
func (h *hotTables) get(ctx context.Context, side cutover.Side, key string) (hotRow, error) {
	ctx, cancel := h.bound(ctx, side)
	defer cancel()
	return h.read(ctx, side, h.dbs[side], key)
}

// read reads the row of key from db, the database of side.
func (h *hotTables) read(ctx context.Context, side cutover.Side, db *sqlx.DB, key string) (hotRow, error) {
	row, err := h.rows.Get(ctx, db, key)
	if err != nil {
		return hotRow{}, &StoreError{Side: side, Op: "get", Err: err}
	}
	if !row.Found {
		return hotRow{}, &StoreError{Side: side, Op: "get", Err: fmt.Errorf("%w: %q", errNotFound, key)}
	}
	name, ok := row.Values[0].(string)
	if !ok {
		return hotRow{}, &StoreError{Side: side, Op: "get", Err: fmt.Errorf("name of %q is a %T", key, row.Values[0])}
	}
	return hotRow{Name: name, Version: row.Version}, nil
}

// repairer returns the repair function of the run: sqlrow.Pair.Repair with
// versions, the key's stage from stage; without, a copy from the entry's
// source (the store that is not its target) over its target, unguarded.
func (h *hotTables) repairer(stage cutover.StageSource) repair.Func {
	if h.versioned {
		p := &sqlrow.Pair{
			Old:   sqlrow.Store{DB: h.dbs[cutover.Old], Rows: h.rows},
			New:   sqlrow.Store{DB: h.dbs[cutover.New], Rows: h.rows},
			Stage: func(ctx context.Context, _ string) cutover.Stage { return stage.Stage(ctx) },
		}
		return p.Repair
	}
	return func(ctx context.Context, r cutover.Repair) error {
		row, err := h.get(ctx, r.Target.Other(), r.Key)
		if err != nil {
			if !isStoreFailure(err) {
				return nil // the suite never deletes
			}
			return err
		}
		return h.put(ctx, r.Target, r.Key, row.Name)
	}
}

// hotWrite is one write of a key, as its caller saw it.
type hotWrite struct {
	value      string
	start, end time.Time // before the call, and after it returned
	acked      bool      // it returned nil
	version    cutover.Version
	stamps     []cutover.Version // every version a store was handed for it
}

// keyHistory is every write of one key. The seed, the row the old store
// held before the migration, is its first write, acknowledged at version 0.
type keyHistory struct {
	mu      sync.Mutex
	writes  []hotWrite
	byValue map[string]int // index of the write of each value; values are unique
}

func newKeyHistory(seed string, at time.Time) *keyHistory {
	return &keyHistory{writes: []hotWrite{{value: seed, start: at, end: at, acked: true, stamps: []cutover.Version{0}}},
		byValue: map[string]int{seed: 0}}
}

// begin records the start of a write of value and returns its index.
func (h *keyHistory) begin(value string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes = append(h.writes, hotWrite{value: value, start: time.Now()})
	h.byValue[value] = len(h.writes) - 1
	return len(h.writes) - 1
}

func (h *keyHistory) stamp(i int, v cutover.Version) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes[i].stamps = append(h.writes[i].stamps, v)
}

// end records the end of write i.
func (h *keyHistory) end(i int, v cutover.Version, err error) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &h.writes[i]
	w.end, w.acked, w.version = now, err == nil, v
}

// hotLoad is the traffic of TestHotKeys: workers that each write (70%) and
// read (30%) random keys of the same few, through the library, at most a
// bounded number of times per window, and record every write in the key's
// history.
type hotLoad struct {
	windows
	mix      *stageMix
	saves    *dualwrite.Writer
	gets     *shadowread.Reader[hotRow]
	tables   *hotTables
	keys     []string
	hist     []*keyHistory
	seq      []int       // seq[w] counts the writes of worker w, for unique values
	reads    [][]hotRead // reads[w] are the reads of worker w that returned a row
	deadline time.Duration
}

// hotRead is a read that returned a row.
type hotRead struct {
	key   int // index in keys
	value string
	start time.Time
	stage cutover.Stage
}

func (l *hotLoad) op(ctx context.Context, id int, _ *Window, ws *workerStats, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, l.deadline)
	defer cancel()
	stage := l.mix.pick()
	ctx = context.WithValue(ctx, stageKey{}, stage)
	k := rng.IntN(len(l.keys))
	key, h := l.keys[k], l.hist[k]
	start := time.Now()
	if rng.IntN(10) < 7 {
		l.seq[id]++
		value := fmt.Sprintf("%s-w%02d-%06d", key, id, l.seq[id])
		i := h.begin(value)
		v, err := l.tables.save(ctx, l.saves, key, value, func(v cutover.Version) { h.stamp(i, v) })
		h.end(i, v, err)
		ws.wrote(key, stage, start, err)
		return
	}
	row, err := l.gets.Read(ctx, key, func(ctx context.Context, side cutover.Side) (hotRow, error) {
		return l.tables.get(ctx, side, key)
	})
	if ws.read(key, stage, start, err) {
		l.reads[id] = append(l.reads[id], hotRead{key: k, value: row.Name, start: start, stage: stage})
	}
}

// staleReads counts the reads that returned a value older than a write
// acknowledged before the read started (see staleness), by the read's
// stage. Call it after Stop.
func (l *hotLoad) staleReads() (reads, stale [len(cutover.Stages)]int) {
	after := make([]*ackedAfter, len(l.hist))
	for k, h := range l.hist {
		after[k] = newAckedAfter(h)
	}
	for _, rs := range l.reads {
		for _, r := range rs {
			reads[r.stage]++
			if after[r.key].before(l.hist[r.key], r.value, r.start) {
				stale[r.stage]++
			}
		}
	}
	return reads, stale
}

// ackedAfter answers, for the writes of one key, whether some acknowledged
// write started after a given write returned and returned itself before a
// given moment.
type ackedAfter struct {
	starts  []time.Time // of the acknowledged writes, in order
	minEnds []time.Time // minEnds[i]: the earliest end of the writes from i on
}

func newAckedAfter(h *keyHistory) *ackedAfter {
	var acked []hotWrite
	for _, w := range h.writes {
		if w.acked {
			acked = append(acked, w)
		}
	}
	slices.SortFunc(acked, func(a, b hotWrite) int { return a.start.Compare(b.start) })
	a := &ackedAfter{starts: make([]time.Time, len(acked)), minEnds: make([]time.Time, len(acked))}
	for i := len(acked) - 1; i >= 0; i-- {
		a.starts[i], a.minEnds[i] = acked[i].start, acked[i].end
		if i+1 < len(acked) && a.minEnds[i+1].Before(acked[i].end) {
			a.minEnds[i] = a.minEnds[i+1]
		}
	}
	return a
}

// before reports whether an acknowledged write started after the write of
// value (in h) returned, and returned before at: a read that started at at
// and returned value was stale. A value no write wrote is older than every
// write.
func (a *ackedAfter) before(h *keyHistory, value string, at time.Time) bool {
	i := 0
	if w, ok := h.byValue[value]; ok {
		end := h.writes[w].end
		i, _ = slices.BinarySearchFunc(a.starts, end, func(s, end time.Time) int {
			if s.After(end) {
				return 1
			}
			return -1
		})
	}
	return i < len(a.minEnds) && a.minEnds[i].Before(at)
}

// staleness is what one store holds, against the history of the writes.
// The writes of a key race, so which of them is the last is defined by the
// order of time: a write happened after another if it started after the
// other returned. A store's value is older than an acknowledged write if
// that write happened after the write of the value; that write is then
// lost. A missing row, or a value no write wrote, is older than every
// acknowledged write. Versions order the writes too: in the versioned run
// a store must hold at least the highest version that an acknowledged
// write returned, with the value written at that version.
type staleness struct {
	Keys, Missing int
	Older         int // keys whose value is older than an acknowledged write
	Lost          int // acknowledged writes that happened after the write of the value held
	// NotLast counts keys holding neither the acknowledged write that
	// returned last nor a write, acknowledged or not, overlapping it in
	// time: a coarser view, in which a failed write that started after
	// the last acknowledged one ended and landed still counts.
	NotLast int
	// By version (versioned run only): keys below the highest acknowledged
	// version or with a value not written at their version, and the
	// acknowledged writes above the version held.
	VOlder, VLost int
	Examples      []string // the first few keys found older
}

const keepExamples = 5

// check checks every key of a store, whose rows read returns, against the
// history. Call it with the load idle or stopped.
func (l *hotLoad) check(ctx context.Context, read func(ctx context.Context, key string) (hotRow, error)) (staleness, error) {
	var s staleness
	for k, key := range l.keys {
		row, err := read(ctx, key)
		found := err == nil
		if err != nil && isStoreFailure(err) {
			return s, err
		}
		h := l.hist[k]
		h.mu.Lock()
		c := h.check(row, found)
		h.mu.Unlock()
		s.Keys++
		s.Missing += boolInt(!found)
		s.Older += boolInt(c.lost > 0)
		s.Lost += c.lost
		s.NotLast += boolInt(c.notLast)
		if l.tables.versioned {
			s.VOlder += boolInt(c.vOlder)
			s.VLost += c.vLost
		}
		if (c.lost > 0 || c.vOlder && l.tables.versioned) && len(s.Examples) < keepExamples {
			s.Examples = append(s.Examples, fmt.Sprintf("%s holds %q at v%d (found %v): %d acknowledged writes after it, such as %s",
				key, row.Name, row.Version, found, c.lost, c.after))
		}
	}
	return s, nil
}

// keyCheck is the check of one key of one store.
type keyCheck struct {
	lost    int    // acknowledged writes that happened after the value held
	after   string // the first of them
	notLast bool
	vOlder  bool
	vLost   int
}

// check checks row, the key's row in a store (found says whether there is
// one), against the writes of the key. Call it with h.mu held.
func (h *keyHistory) check(row hotRow, found bool) keyCheck {
	var c keyCheck
	held := -1
	if i, ok := h.byValue[row.Name]; ok && found {
		held = i
	}
	last, maxAcked := -1, cutover.Version(0)
	for i, w := range h.writes {
		if !w.acked {
			continue
		}
		if last < 0 || w.end.After(h.writes[last].end) {
			last = i
		}
		maxAcked = max(maxAcked, w.version)
		if held < 0 || w.start.After(h.writes[held].end) {
			if c.lost == 0 {
				c.after = fmt.Sprintf("%q (%v after the write held returned, v%d)", w.value, w.start.Sub(h.writes[max(held, 0)].end).Round(time.Microsecond), w.version)
			}
			c.lost++
		}
		if w.version > row.Version || !found {
			c.vLost++
		}
	}
	if held < 0 {
		c.notLast, c.vOlder = true, true
		return c
	}
	s, l := h.writes[held], h.writes[last]
	c.notLast = held != last && !(s.start.Before(l.end) && s.end.After(l.start))
	c.vOlder = row.Version < maxAcked || !slices.Contains(s.stamps, row.Version)
	return c
}

// verifyLoop runs verifications one after the other in the background,
// while the load goes on, each sending the keys it finds apart to the
// repair log, until stopped or after at most maxVerifies.
type verifyLoop struct {
	runs, clean, diffs atomic.Int64
	cancel             context.CancelFunc
	done               chan struct{}
	err                error // the first failure, read after done
}

const maxVerifies = 500

func startVerifies(ctx context.Context, m *expandcontract.Migration, old, new verify.RowSource, repairs cutover.RepairLog) *verifyLoop {
	ctx, cancel := context.WithCancel(ctx)
	l := &verifyLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for range maxVerifies {
			res, err := suite.Verify(ctx, m, old, new, verify.WithRecheck(250*time.Millisecond), verify.WithRepairLog(repairs))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				l.err = err
				return
			}
			l.runs.Add(1)
			l.diffs.Add(res.Differences)
			if res.Clean() {
				l.clean.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return l
}

// stop stops the loop, waits for it and returns its failure, if any.
func (l *verifyLoop) stop() error {
	l.cancel()
	<-l.done
	return l.err
}

// hotRunner holds everything one run of TestHotKeys uses.
type hotRunner struct {
	t        *testing.T
	ctx      context.Context
	s        settings
	kind     string
	name     string // the migration
	res      *hotResult
	rep      *Report
	old      *testdb.DB
	newAdmin *testdb.DB
	proxy    *Proxy
	store    *expandcontract.Store
	durable  *repair.Log
	repairs  *countingLog
	loop     *repairLoop
	metrics  *metrictest.Reader
	mix      *stageMix
	phase    expandcontract.Phase
	tables   *hotTables
	load     *hotLoad
	verifies *verifyLoop

	open      *Window
	openSnap  snapshot
	openLabel string
}

func hotWalk(t *testing.T, kind string, res *hotResult) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h := &hotRunner{t: t, ctx: ctx, s: hotSettings(), kind: kind, name: "users-hot", res: res,
		rep: &Report{DB: kind}, mix: &stageMix{}}
	res.Report = h.rep
	defer func() { t.Logf("%s run:\n%s", res.run(), h.rep) }()
	h.setUp()
	ops := h.s.ops

	h.move(expandcontract.DualWrite, cutover.DualWrite)
	for _, f := range hotDualFaults {
		h.window(f, ops)
	}

	h.move(expandcontract.Backfill, cutover.DualWrite)
	h.window(Fault{Name: "(backfill)", What: "backfill of the new table"}, 10*ops)
	h.backfill()
	h.set(cutover.DualWrite, cutover.Shadow)
	for _, f := range []Fault{faultNone, faultTimeout} {
		h.window(f, ops)
	}
	h.set(cutover.Shadow)
	for _, f := range []Fault{faultLatency, faultOutage, faultRecovery} {
		h.window(f, ops)
	}
	h.window(Fault{Name: "(verify)", What: "verify under load"}, 10*ops)
	h.verifyForSwitch()

	for _, part := range []struct {
		stages []cutover.Stage
		faults []Fault
	}{
		{[]cutover.Stage{cutover.Shadow, cutover.Live}, hotFaults},
		{[]cutover.Stage{cutover.Live, cutover.Rampdown}, hotFaults},
		{[]cutover.Stage{cutover.Rampdown}, hotRampdownFaults},
	} {
		h.set(part.stages...)
		h.startVerifies()
		for _, f := range part.faults {
			h.window(f, ops)
		}
		h.closeWindow()
		h.stopVerifies()
		h.checkBoth("after " + h.mix.label())
	}

	h.move(expandcontract.Contract, cutover.Complete)
	for _, f := range hotCompleteFaults {
		h.window(f, ops)
	}
	h.closeWindow()
	h.load.Stop()
	if err := h.load.gets.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	h.checkStore("at the end", cutover.New, [2]int64{-1, -1})

	res.Reads, res.StaleReads = h.load.staleReads()
	res.Duration = time.Since(start)
	res.Totals = h.rep.Total()
	res.Restamps = h.tables.restamps.Load()
	res.Recorded = h.repairs.total.Load()
	res.Repaired = h.loop.repaired.Load()
	recorded, refused := h.repairs.Counts()
	h.rep.Notes = append(h.rep.Notes,
		fmt.Sprintf("took %v; restamped store calls %d; repair log: %d keys recorded (%s), %d entries repaired, %d repair attempts failed; records that failed: %s",
			res.Duration.Round(time.Millisecond), res.Restamps, res.Recorded, byReason(recorded), res.Repaired, h.loop.failed.Load(), byReason(refused)),
		fmt.Sprintf("verifications under load: %d, %d clean, %d keys found apart", res.Verifies, res.CleanVerifies, res.VerifyDiffs))
}

// setUp creates the two databases, the proxy, the library's wrappers, the
// repairer and the load, and registers their shutdown.
func (h *hotRunner) setUp() {
	t, ctx, s := h.t, h.ctx, h.s
	var newDB *sqlx.DB
	h.old, h.newAdmin, h.proxy, newDB = openStores(ctx, t, h.kind, s.workers)
	h.tables = newHotTables(t, h.kind, [2]*sqlx.DB{cutover.Old: h.old.DB, cutover.New: newDB}, s.timeout, h.res.Versioned)

	h.mix.Set(cutover.Off)
	lib := newLibrary(ctx, t, h.old.DB, h.name, h.mix.Source(), s.timeout)
	h.metrics, h.store, h.durable, h.repairs = lib.metrics, lib.store, lib.durable, lib.repairs
	gets := newReader[hotRow](t, lib, h.mix.Source(), s.timeout)
	h.load = &hotLoad{windows: windows{workers: s.workers, pace: s.pace}, mix: h.mix, saves: lib.saves, gets: gets,
		tables: h.tables, seq: make([]int, s.workers), reads: make([][]hotRead, s.workers), deadline: 5 * time.Second}
	h.seed()
	h.loop = lib.startRepairs(ctx, t, h.tables.repairer(h.mix.Source()), 50)
	h.load.start(ctx, h.load.op)
	t.Cleanup(func() { h.load.Stop() })
	h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("settings: %d workers on %d keys, versions %v, windows of %v with at most %d operations per worker, "+
		"pace %v, secondary timeout and new-store query bound %v", s.workers, hotKeys, h.res.Versioned, s.window, s.ops, s.pace, s.timeout))
}

// seed writes every key to the old store, at version 0, and starts its
// history with it.
func (h *hotRunner) seed() {
	for k := range hotKeys {
		key := fmt.Sprintf("hot-%d", k)
		value := key + "-seed"
		if _, err := h.tables.rows.Put(h.ctx, h.old.DB, key, 0, value); err != nil {
			h.t.Fatalf("seed: %v", err)
		}
		h.load.keys = append(h.load.keys, key)
		h.load.hist = append(h.load.hist, newKeyHistory(value, time.Now()))
	}
}

// set makes ss the stages that requests pick from; the walk only gives
// stages that the phase allows.
func (h *hotRunner) set(ss ...cutover.Stage) {
	h.t.Helper()
	for _, s := range ss {
		if h.phase.Clamp(s) != s {
			h.t.Fatalf("stage %s is not allowed in phase %s", s, h.phase)
		}
	}
	h.mix.Set(ss...)
}

// move moves the migration's phase, and then the stages, to one stage.
func (h *hotRunner) move(to expandcontract.Phase, stage cutover.Stage) {
	h.t.Helper()
	h.moveForced(to, false, "walk")
	h.set(stage)
}

func (h *hotRunner) moveForced(to expandcontract.Phase, force bool, reason string) {
	h.t.Helper()
	mv := expandcontract.Move{To: to, Actor: "hotkeys", Reason: reason, Force: force}
	if _, err := suite.Migration(h.store, h.name).Move(h.ctx, mv); err != nil {
		h.t.Fatalf("move to %s: %v", to, err)
	}
	h.phase = to
}

// window runs one window of the load in the stages set, with fault f on
// the new store, as the walk's window does.
func (h *hotRunner) window(f Fault, ops int) {
	h.t.Helper()
	next := h.load.NewWindow(len(h.rep.Windows)+boolInt(h.open != nil), h.mix.stages()[0], f, ops)
	h.switchTo(next)
	holdFault(h.ctx, h.t, h.proxy, f, next, h.s.window)
}

// closeWindow ends the open window, leaving the load idle.
func (h *hotRunner) closeWindow() { h.switchTo(nil) }

// switchTo makes next the open window, and turns the one it replaces into
// a row of the report.
func (h *hotRunner) switchTo(next *Window) {
	prev := h.load.Switch(next)
	snap := takeSnapshot(h.metrics, h.repairs, h.loop)
	if prev != nil {
		h.rep.Windows = append(h.rep.Windows, windowRow(h.kind, h.openLabel, prev, prev.Totals(), h.openSnap, snap))
	}
	h.open, h.openSnap, h.openLabel = next, snap, h.mix.label()
}

// backfill copies the old table to the new one with sqlrow.CopyRange, in
// keyset batches of three keys, to the new store through the proxy.
func (h *hotRunner) backfill() {
	rows, dst := h.tables.rows, h.tables.dbs[cutover.New]
	batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return sqlrow.CopyRange(ctx, rows, tx, rows, dst, r.From, r.To)
	})
	runBackfill(h.ctx, h.t, suite.Migration(h.store, h.name), batch, 3, h.rep)
}

// verifyForSwitch verifies the stores under load, as an operator would
// before moving reads, and moves the migration to switchreads. The move
// needs a clean verification, which writes racing on every key can keep
// from coming: after five that are not clean, the move overrides the
// guard, and the result says so.
func (h *hotRunner) verifyForSwitch() {
	t := h.t
	old, new := userRows(h.kind, h.old.DB), userRows(h.kind, h.newAdmin.DB)
	for attempt := 1; ; attempt++ {
		res, err := suite.Verify(h.ctx, suite.Migration(h.store, h.name), old, new,
			verify.WithRecheck(250*time.Millisecond), verify.WithRepairLog(h.repairs))
		if err != nil {
			t.Fatal(err)
		}
		h.res.Verifies++
		h.res.VerifyDiffs += res.Differences
		h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("verify under load before switchreads, attempt %d: %d rows, %d differences %v",
			attempt, res.Rows, res.Differences, res.Keys))
		if res.Clean() {
			h.res.CleanVerifies++
			h.moveForced(expandcontract.SwitchReads, false, "clean verification under load")
			return
		}
		if attempt == 5 {
			h.res.Forced = true
			h.rep.Notes = append(h.rep.Notes, "move to switchreads forced: no verification under load was clean")
			h.moveForced(expandcontract.SwitchReads, true, "hot keys: no clean verification under load")
			return
		}
	}
}

// startVerifies starts verifying in the background.
func (h *hotRunner) startVerifies() {
	old, new := userRows(h.kind, h.old.DB), userRows(h.kind, h.newAdmin.DB)
	l := startVerifies(h.ctx, suite.Migration(h.store, h.name), old, new, h.repairs)
	h.verifies = l
	h.t.Cleanup(func() { l.stop() })
}

// stopVerifies stops the background verifications and counts them.
func (h *hotRunner) stopVerifies() {
	if err := h.verifies.stop(); err != nil {
		h.t.Fatalf("verification under load: %v", err)
	}
	h.res.Verifies += h.verifies.runs.Load()
	h.res.CleanVerifies += h.verifies.clean.Load()
	h.res.VerifyDiffs += h.verifies.diffs.Load()
}

// checkBoth is the check at the end of a part of the walk in which both
// stores are written, as if the traffic stopped there: with the load idle,
// the comparisons finished and the repair log drained, a final
// verification sends what differs to the repair log; once that has drained
// too, a second one counts what is still apart, and both stores are
// checked against the history.
func (h *hotRunner) checkBoth(point string) {
	t := h.t
	if err := h.load.gets.Drain(h.ctx); err != nil {
		t.Fatal(err)
	}
	m := suite.Migration(h.store, h.name)
	old, new := userRows(h.kind, h.old.DB), userRows(h.kind, h.newAdmin.DB)
	var diffs [2]int64
	for i := range diffs {
		took := drainLog(h.ctx, t, h.durable, h.loop, h.s.drain)
		res, err := suite.Verify(h.ctx, m, old, new, verify.WithRepairLog(h.repairs))
		if err != nil {
			t.Fatal(err)
		}
		diffs[i] = res.Differences
		h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("%s, load idle, verification %d: repair log drained in %v; %d differences %v",
			point, i+1, took.Round(time.Millisecond), res.Differences, res.Keys))
	}
	h.checkStore(point, cutover.Old, diffs)
	h.checkStore(point, cutover.New, diffs)
}

// checkStore checks the rows of side, read directly, against the history,
// after final verifications that found diffs.
func (h *hotRunner) checkStore(point string, side cutover.Side, diffs [2]int64) {
	db := h.old.DB
	if side == cutover.New {
		db = h.newAdmin.DB
	}
	s, err := h.load.check(h.ctx, func(ctx context.Context, key string) (hotRow, error) {
		return h.tables.read(ctx, side, db, key)
	})
	if err != nil {
		h.t.Fatalf("%s: read %s store: %v", point, side, err)
	}
	h.res.Checks = append(h.res.Checks, hotCheck{Point: point, Side: side, Final: diffs[0], Left: diffs[1], staleness: s})
	h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("%s: %s store: %d keys, %d missing, %d older than an acknowledged write, %d acknowledged writes lost, "+
		"%d holding neither the last acknowledged write nor one overlapping it; by version: %d keys older, %d writes lost %v",
		point, side, s.Keys, s.Missing, s.Older, s.Lost, s.NotLast, s.VOlder, s.VLost, s.Examples))
}

// TestHotKeysChecks checks the checks of TestHotKeys on a history made up:
// that they find a store older than an acknowledged write, and do not
// find one that holds a write that may be the last.
func TestHotKeysChecks(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	h := newKeyHistory("seed", t0)
	write := func(value string, start, end int, acked bool, v cutover.Version, stamps ...cutover.Version) {
		h.writes = append(h.writes, hotWrite{value: value, start: at(start), end: at(end), acked: acked, version: v, stamps: stamps})
		h.byValue[value] = len(h.writes) - 1
	}
	write("a", 10, 20, true, 10, 10)
	write("b", 30, 40, true, 25, 20, 25) // started after a returned; stamped again once
	write("c", 35, 50, false, 0, 30)     // failed, overlapping b: it may have landed
	write("d", 60, 70, false, 0)         // failed before any store was called
	for _, tc := range []struct {
		name  string
		row   hotRow
		found bool
		want  keyCheck
	}{
		{"the last acknowledged write", hotRow{"b", 25}, true, keyCheck{}},
		{"a failed write overlapping it", hotRow{"c", 30}, true, keyCheck{}},
		{"a write it happened after", hotRow{"a", 10}, true, keyCheck{lost: 1, notLast: true, vOlder: true, vLost: 1}},
		{"the seed", hotRow{"seed", 0}, true, keyCheck{lost: 2, notLast: true, vOlder: true, vLost: 2}},
		{"no row", hotRow{}, false, keyCheck{lost: 3, notLast: true, vOlder: true, vLost: 3}},
		{"a value no write wrote", hotRow{"x", 40}, true, keyCheck{lost: 3, notLast: true, vOlder: true}},
		{"the last value at a version it was not written at", hotRow{"b", 20}, true, keyCheck{vOlder: true, vLost: 1}},
	} {
		got := h.check(tc.row, tc.found)
		got.after = ""
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	a := newAckedAfter(h)
	for _, tc := range []struct {
		value string
		at    int
		stale bool
	}{
		{"a", 35, false}, // b has not returned yet
		{"a", 45, true},  // b returned before the read
		{"seed", 25, true},
		{"b", 80, false},
		{"c", 80, false},
		{"x", 5, true}, // older than every write, the seed too
	} {
		if got := a.before(h, tc.value, at(tc.at)); got != tc.stale {
			t.Errorf("a read at %d ms returning %q: stale %v, want %v", tc.at, tc.value, got, tc.stale)
		}
	}
}
