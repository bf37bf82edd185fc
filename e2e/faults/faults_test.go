package faults

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
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
)

var long = flag.Bool("faults.long", false, "run each fault window for 10 s with up to 5000 operations per worker, instead of 1 s")

// EnvReport names a file that TestFaults writes its report to, for the
// record of a run.
const EnvReport = "CUTOVER_FAULT_REPORT"

func TestMain(m *testing.M) {
	// toxiproxy logs every connection through zerolog, and the MySQL
	// driver every connection the proxy cuts.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	goleak.VerifyTestMain(servers{m}, append(toxiproxyLinks, testdb.IgnoreForkThread)...)
}

// toxiproxyLinks ignores the goroutines that toxiproxy (v2.5.0) leaves
// behind by design. When a connection through a proxy closes with data in
// flight (a client gives up on a slow reply, or a proxy is cut; see Proxy),
// the link's writer ends, and the toxics' goroutines that still hold a chunk (the
// noop, latency, bandwidth and slicer toxics send it on without a select)
// block for good on a channel no one reads; the link's reader, sending into
// them, blocks too. toxiproxy offers no way to end them. They hold their
// channels and one chunk each, nothing of the test's.
var toxiproxyLinks = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
	goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
}

// servers runs the tests of m and stops the servers, as testdb.Main does.
type servers struct{ m *testing.M }

func (s servers) Run() int { return testdb.Run(s.m) }

// settings are the sizes of a walk.
type settings struct {
	workers   int           // goroutines of load
	perWorker int           // keys each owns
	window    time.Duration // length of a fault window
	ops       int           // operations per worker per window, at most
	pace      time.Duration // mean pause between a worker's operations
	timeout   time.Duration // secondary timeout, and bound on each new-store query
	drain     time.Duration // the longest a drain of the repair log may go without repairing an entry
}

func walkSettings() settings {
	s := settings{workers: 16, perWorker: 32, window: time.Second, ops: 200, pace: 10 * time.Millisecond,
		timeout: 200 * time.Millisecond, drain: time.Minute}
	if *long {
		s.window, s.ops, s.drain = 10*time.Second, 5000, 5*time.Minute
	}
	return s
}

// latencyBound is the most the p99 of callers' latency may be in any
// window. A caller waits at most for the old store, the secondary timeout
// (or, in live and rampdown, the new store's query bound before the
// fallback) and the repair log's insert, which dualwrite bounds by the
// secondary timeout too; the rest is margin for a machine shared with other
// test processes under -race. The faults would hold an unbounded call for
// two seconds or more. The report gives the measured numbers.
func (s settings) latencyBound() time.Duration { return 5*s.timeout + 500*time.Millisecond }

// TestFaults walks a migration from off to complete on PostgreSQL and on
// MariaDB, with the new store behind toxiproxy, under concurrent load,
// through every fault in every stage; see the package documentation.
func TestFaults(t *testing.T) {
	var reports []*Report
	defer func() {
		if path := os.Getenv(EnvReport); path != "" && len(reports) > 0 {
			var b strings.Builder
			for _, r := range reports {
				if len(r.Windows) == 0 {
					continue // not run
				}
				b.WriteString(r.String())
				b.WriteString("\n")
			}
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Errorf("write report: %v", err)
			}
		}
	}()
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		rep := &Report{DB: kind}
		reports = append(reports, rep)
		t.Run(kind, func(t *testing.T) {
			defer func() { t.Logf("\n%s", rep) }()
			walk(t, kind, rep)
		})
	}
}

// walker holds everything one walk uses.
type walker struct {
	t        *testing.T
	ctx      context.Context
	s        settings
	kind     string
	name     string // the migration
	rep      *Report
	old      *testdb.DB // the old store, reached directly
	newAdmin *testdb.DB // the new store, reached directly: set-up and checks only
	stores   [2]*Table  // as the application reaches them: the new one through the proxy
	bulk     *Table     // the new store through the proxy, for the backfill: no request waits on it
	direct   [2]*Table  // both reached directly
	proxy    *Proxy
	store    *expandcontract.Store
	durable  *repair.Log
	repairs  *countingLog
	loop     *repairLoop
	metrics  *metrictest.Reader
	stages   *Stages
	gets     *shadowread.Reader[User]
	load     *Load

	open     *Window // the window the load records into, if any
	openSnap snapshot
}

// snapshot is what the library's metrics and the repair loop had counted
// at one moment.
type snapshot struct {
	fallbacks, refused, opened, mismatches, recorded, repaired int64
}

func (w *walker) snapshot() snapshot { return takeSnapshot(w.metrics, w.repairs, w.loop) }

// takeSnapshot reads the counts of the library's metrics in m, of the
// repair log's entries recorded through repairs and of those loop
// repaired.
func takeSnapshot(m *metrictest.Reader, repairs *countingLog, loop *repairLoop) snapshot {
	return snapshot{
		fallbacks:  m.Sum("cutover.dualwrite.fallbacks", "", "") + m.Sum("cutover.shadowread.fallbacks", "", ""),
		refused:    m.Sum("cutover.breaker.rejections", "", ""),
		opened:     m.Sum("cutover.breaker.transitions", "cutover.breaker.state", breaker.Open.String()),
		mismatches: m.Sum("cutover.shadowread.mismatches", "", ""),
		recorded:   repairs.total.Load(),
		repaired:   loop.repaired.Load(),
	}
}

func walk(t *testing.T, kind string, rep *Report) {
	s := walkSettings()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w := &walker{t: t, ctx: ctx, s: s, kind: kind, name: "users-move", rep: rep, stages: &Stages{}}
	w.setUp()

	// off, in phase expand: only the old store is used; the new one is
	// not even reached.
	w.window(cutover.Off, faultNone, s.ops)
	w.window(cutover.Off, faultOutage, s.ops)

	// dualwrite: every fault on the secondary.
	w.move(expandcontract.DualWrite, cutover.DualWrite)
	for _, f := range stageFaults {
		w.window(cutover.DualWrite, f, s.ops)
	}

	// backfill, under dual writes, with the library's resumable backfill.
	w.move(expandcontract.Backfill, cutover.DualWrite)
	w.window(cutover.DualWrite, Fault{Name: "(backfill)", What: "backfill of the new table"}, 10*s.ops)
	w.backfill()

	// shadow: every fault on the compared store.
	for _, f := range stageFaults {
		w.window(cutover.Shadow, f, s.ops)
	}

	// Reads may move once a verification after the backfill is clean.
	w.window(cutover.Shadow, Fault{Name: "(verify)", What: "drain and verify under load"}, 10*s.ops)
	w.verifyUnderLoad()
	w.move(expandcontract.SwitchReads, cutover.Shadow)

	// live and rampdown: the new store answers, the old one stands in.
	for _, stage := range []cutover.Stage{cutover.Live, cutover.Rampdown} {
		for _, f := range stageFaults {
			w.window(stage, f, s.ops)
		}
	}

	// The last stage writing both stores is over: with the load stopped,
	// drain the repair log and check that the stores are identical and
	// hold every acknowledged write.
	w.closeWindow()
	w.checkIdentical()

	// complete: the new store alone, with no fallback; its errors are now
	// the callers'.
	w.move(expandcontract.Contract, cutover.Complete)
	for _, f := range stageFaults {
		w.window(cutover.Complete, f, s.ops)
	}
	w.closeWindow()
	w.load.Stop()
	w.checkComplete()
	w.summarize()
}

// setUp creates the two databases, the proxy, the library's wrappers and
// the load, and registers their shutdown.
func (w *walker) setUp() {
	t, ctx, s := w.t, w.ctx, w.s
	var newDB *sqlx.DB
	w.old, w.newAdmin, w.proxy, newDB = openStores(ctx, t, w.kind, s.workers)
	w.stores[cutover.Old] = mustTable(t, cutover.Old, w.old.DB, 0)
	w.stores[cutover.New] = mustTable(t, cutover.New, newDB, s.timeout)
	w.bulk = mustTable(t, cutover.New, newDB, 10*time.Second)
	w.direct[cutover.Old] = w.stores[cutover.Old]
	w.direct[cutover.New] = mustTable(t, cutover.New, w.newAdmin.DB, 0)

	lib := newLibrary(ctx, t, w.old.DB, w.name, w.stages.Source(), s.timeout)
	w.metrics, w.store, w.durable, w.repairs = lib.metrics, lib.store, lib.durable, lib.repairs
	w.gets = newReader[User](t, lib, w.stages.Source(), s.timeout)
	w.load = NewLoad(s.workers, s.perWorker, w.stages, lib.saves, w.gets, w.stores, s.pace)
	w.seed()
	w.loop = lib.startRepairs(ctx, t, repairKey(w.stores), 200)
	w.load.Start(ctx)
	t.Cleanup(func() { w.load.Stop() })
	for _, f := range stageFaults {
		w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("fault %-12s %s", f.Name+":", f.What))
	}
	w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("settings: %d workers x %d keys, windows of %v with at most %d operations per worker, "+
		"pace %v, secondary timeout and new-store query bound %v, breaker opens after 5 consecutive failures for 250 ms, "+
		"p99 bound %v", s.workers, s.perWorker, s.window, s.ops, s.pace, s.timeout, s.latencyBound()))
}

// openStores opens the old and the new database of kind, each with an
// empty users table, starts a proxy in front of the new one, and opens the
// new store's pool through the proxy. Both pools the application uses, the
// old one and the proxied one, are sized for workers; t's cleanup closes
// them and the proxy.
func openStores(ctx context.Context, t *testing.T, kind string, workers int) (old, newAdmin *testdb.DB, proxy *Proxy, newDB *sqlx.DB) {
	t.Helper()
	old, newAdmin = testdb.Open(t, kind), testdb.Open(t, kind)
	for _, db := range []*testdb.DB{old, newAdmin} {
		if err := CreateUsers(ctx, db.DB); err != nil {
			t.Fatalf("create users: %v", err)
		}
	}
	p := proxied(t, kind, newAdmin)
	proxy, newDB = p.proxy, p.db
	for _, db := range []*sqlx.DB{old.DB, newDB} {
		db.SetMaxOpenConns(2 * workers)
		db.SetMaxIdleConns(2 * workers)
	}
	return old, newAdmin, proxy, newDB
}

// library is the library as the suite's application embeds it: the
// migration's metadata in the old database, its durable repair log behind a
// counting one, a breaker of the new store shared by the writer and the
// readers, the dual writer, and the metrics they report.
type library struct {
	metrics *metrictest.Reader
	logger  *slog.Logger
	store   *expandcontract.Store
	durable *repair.Log
	repairs *countingLog
	breaker *breaker.Breaker
	saves   *dualwrite.Writer
}

// newLibrary sets up the library for the migration name, with its metadata
// in db, the stages from stages and timeout as the secondary timeout. The
// breaker opens after five failures in a row, for 250 ms.
func newLibrary(ctx context.Context, t *testing.T, db *sqlx.DB, name string, stages cutover.StageSource, timeout time.Duration) *library {
	t.Helper()
	l := &library{metrics: metrictest.New(t), logger: slog.New(slog.DiscardHandler)}
	var err error
	if l.store, err = expandcontract.Open(ctx, db, expandcontract.WithLogger(l.logger)); err != nil {
		t.Fatal(err)
	}
	if _, err := suite.Migration(l.store, name).Ensure(ctx, "faults"); err != nil {
		t.Fatal(err)
	}
	if l.durable, err = repair.NewLog(suite.Migration(l.store, name)); err != nil {
		t.Fatal(err)
	}
	l.repairs = newCountingLog(l.durable)
	l.wire(t, stages, timeout)
	return l
}

// wire makes the library's breaker, which opens after five failures in a
// row for 250 ms, and its dual writer, with the stages from stages,
// timeout as the secondary timeout and the extra options of the writer.
func (l *library) wire(t *testing.T, stages cutover.StageSource, timeout time.Duration, extra ...dualwrite.Option) {
	t.Helper()
	mp := l.metrics.Provider()
	var err error
	l.breaker, err = breaker.New("users-new", breaker.WithSettings(breaker.Settings{
		MaxRequests: 3,
		Timeout:     250 * time.Millisecond,
		ReadyToTrip: func(c breaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		IsFailure:   isStoreFailure,
	}), breaker.WithMeterProvider(mp), breaker.WithLogger(l.logger))
	if err != nil {
		t.Fatal(err)
	}
	l.saves, err = dualwrite.New("users.save", stages, l.repairs, append([]dualwrite.Option{
		dualwrite.WithBreaker(l.breaker), dualwrite.WithTimeout(timeout),
		dualwrite.WithMeterProvider(mp), dualwrite.WithLogger(l.logger)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
}

// newReader returns the shadow reader of rows of type T that goes with the
// library l, with the stages from stages, timeout on its comparisons and
// the extra options.
func newReader[T any](t *testing.T, l *library, stages cutover.StageSource, timeout time.Duration, extra ...shadowread.Option[T]) *shadowread.Reader[T] {
	t.Helper()
	r, err := shadowread.New[T]("users.get", stages, append([]shadowread.Option[T]{
		shadowread.WithBreaker[T](l.breaker), shadowread.WithRepairLog[T](l.repairs), shadowread.WithTimeout[T](timeout),
		shadowread.WithFailures[T](isStoreFailure), shadowread.WithMeterProvider[T](l.metrics.Provider()), shadowread.WithLogger[T](l.logger)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startRepairs starts draining the library's repair log with fn, in
// batches of batch entries, until t's cleanup stops it.
func (l *library) startRepairs(ctx context.Context, t *testing.T, fn repair.Func, batch int) *repairLoop {
	t.Helper()
	repairer, err := repair.New(l.durable, fn,
		repair.WithBatch(batch), repair.WithBackoff(20*time.Millisecond, 500*time.Millisecond),
		repair.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repairer.Close() })
	loop := startRepairs(ctx, repairer)
	t.Cleanup(loop.stop)
	return loop
}

func mustTable(t *testing.T, side cutover.Side, db *sqlx.DB, timeout time.Duration) *Table {
	t.Helper()
	tb, err := NewTable(side, db, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// seed writes version 1 of every key to the old store.
func (w *walker) seed() { w.seedKeys(w.load.Keys()) }

// seedKeys writes version 1 of keys to the old store.
func (w *walker) seedKeys(keys []string) {
	tx, err := w.old.BeginTxx(w.ctx, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	defer tx.Rollback()
	q := w.old.Rebind(`INSERT INTO users (id, name, version) VALUES (?, ?, ?)`)
	for _, key := range keys {
		u := userAt(key, 1)
		if _, err := tx.ExecContext(w.ctx, q, u.ID, u.Name, u.Version); err != nil {
			w.t.Fatalf("seed: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		w.t.Fatalf("seed: %v", err)
	}
}

// move moves the migration's phase and then the stage.
func (w *walker) move(to expandcontract.Phase, stage cutover.Stage) {
	w.t.Helper()
	if _, err := suite.Migration(w.store, w.name).Move(w.ctx, expandcontract.Move{To: to, Actor: "faults", Reason: "walk"}); err != nil {
		w.t.Fatalf("move to %s: %v", to, err)
	}
	w.stages.Set(stage)
}

// window runs one window: it sets the stage, starts recording the load
// into a new window, puts the fault on the new store, waits for the
// window's time or operations to run out, and takes the fault away. The
// window stays open, with the load recording into it, until the next
// window or closeWindow.
func (w *walker) window(stage cutover.Stage, f Fault, ops int) {
	w.t.Helper()
	w.stages.Set(stage)
	next := w.load.NewWindow(len(w.rep.Windows)+boolInt(w.open != nil), stage, f, ops)
	w.switchTo(next)
	holdFault(w.ctx, w.t, w.proxy, f, next, w.s.window)
}

// holdFault puts f on the new store's proxy p while the load records into
// win, until length has passed or win's operations have run out, and
// takes it away. A fault named in parentheses names a phase's work, which
// runs in the window once holdFault returns; it leaves the proxy as it is.
func holdFault(ctx context.Context, t *testing.T, p *Proxy, f Fault, win *Window, length time.Duration) {
	t.Helper()
	if err := p.Apply(f); err != nil {
		t.Fatal(err)
	}
	if f.Name[0] == '(' {
		return
	}
	for time.Since(win.Start) < length && win.Busy() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Clear(); err != nil {
		t.Fatal(err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// closeWindow ends the open window, leaving the load idle.
func (w *walker) closeWindow() { w.switchTo(nil) }

// switchTo makes next the open window, and turns the one it replaces into
// a row of the report, checking what its callers saw.
func (w *walker) switchTo(next *Window) {
	prev := w.load.Switch(next)
	snap := w.snapshot()
	if prev != nil {
		w.row(prev, snap)
	}
	w.open, w.openSnap = next, snap
}

// row adds the report's row of the closed window win, whose counters ended
// at end, and checks what its callers saw.
func (w *walker) row(win *Window, end snapshot) {
	t := w.t
	t.Helper()
	tot := win.Totals()
	r := windowRow(w.kind, win.Stage.String(), win, tot, w.openSnap, end)
	w.rep.Windows = append(w.rep.Windows, r)
	checkWindow(t, fmt.Sprintf("%s/%s", r.Stage, r.Fault), tot, w.s)
}

// checkWindow checks what the callers of the window where saw, tot: some
// operations ran, every caller error came from the authoritative store
// (none at all before complete), no read was stale where the freshest
// store answers, and the p99 of their latency is within the suite's
// bound.
func checkWindow(t *testing.T, where string, tot Totals, s settings) {
	t.Helper()
	if tot.Ops == 0 {
		t.Errorf("%s: no operation ran", where)
	}
	if tot.Foreign > 0 {
		t.Errorf("%s: %d caller errors did not come from the authoritative store, such as %v", where, tot.Foreign, describe(tot.ForeignErrs))
	}
	if tot.Unexpected > 0 {
		t.Errorf("%s: %d callers got an error while the old store was healthy and answering for the new one, such as %v",
			where, tot.Unexpected, describe(slices.Concat(tot.ForeignErrs, tot.OtherErrs)))
	}
	if tot.StaleBad > 0 {
		t.Errorf("%s: %d reads returned a version older than the key's last acknowledged write", where, tot.StaleBad)
	}
	if bound := s.latencyBound(); tot.P99 > bound {
		t.Errorf("%s: p99 caller latency %v exceeds %v (secondary timeout %v)", where, tot.P99, bound, s.timeout)
	}
}

// windowRow returns the report's row of the closed window win of a run on
// the database kind, in stage (one or more), whose callers saw tot and
// whose counters went from start to end.
func windowRow(kind, stage string, win *Window, tot Totals, start, end snapshot) Row {
	return Row{DB: kind, Stage: stage, Fault: win.Fault.Name, Duration: time.Since(win.Start),
		Writes: tot.Writes, Acked: tot.Acked, WriteErrs: tot.WriteErrs, Reads: tot.Reads, ReadErrs: tot.ReadErrs,
		Foreign: tot.Foreign, Unrecorded: tot.Unrecorded, Stale: tot.Stale, P50: tot.P50, P99: tot.P99, Max: tot.Max,
		Fallbacks: end.fallbacks - start.fallbacks, Refused: end.refused - start.refused,
		Opened: end.opened - start.opened, Mismatches: end.mismatches - start.mismatches,
		Recorded: end.recorded - start.recorded, Repaired: end.repaired - start.repaired}
}

func describe(errs []callerError) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, fmt.Sprintf("[%s in %s: %v]", e.Op, e.Stage, e.Err))
	}
	return strings.Join(parts, " ")
}

// backfill copies the old table to the new one with the library's
// backfill, in keyset batches, each batch read from the old store in the
// transaction that commits its checkpoint and written to the new store
// through the proxy, conditionally on the version, so that it never takes
// back a newer dual write. A run that fails is run again, as an operator
// would: it resumes from its checkpoint.
func (w *walker) backfill() {
	t := w.t
	d := w.old.Dialect
	batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		q, args := `SELECT id, name, version FROM users WHERE id <= ?`, []any{r.To}
		if r.From != nil {
			q, args = q+` AND id > ?`, append(args, r.From)
		}
		var rows []User
		if err := tx.SelectContext(ctx, &rows, d.Rebind(q), args...); err != nil {
			return 0, err
		}
		for _, u := range rows {
			if err := w.bulk.Put(ctx, u); err != nil {
				return 0, err
			}
		}
		return int64(len(rows)), nil
	})
	runBackfill(w.ctx, t, suite.Migration(w.store, w.name), batch, 100, w.rep)
}

// runBackfill backfills the users table of migration m with batch, in
// batches of size keys, and notes it in rep. A run that fails is run again,
// as an operator would: it resumes from its checkpoint; the third failure
// fails t.
func runBackfill(ctx context.Context, t *testing.T, m *expandcontract.Migration, batch backfill.Batch, size int, rep *Report) {
	t.Helper()
	b, err := backfill.New(m, backfill.Keyset{Table: "users", Column: "id", Kind: expandcontract.TextKeys},
		batch, backfill.WithBatchSize(size))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := b.Run(ctx)
		if err == nil {
			break
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("backfill run %d failed, resumed: %v", attempt, err))
		if attempt == 3 {
			t.Fatalf("backfill: %v", err)
		}
	}
	st, err := m.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("backfill: %d rows in %v under dual writes", st.Backfill.Rows, time.Since(start).Round(time.Millisecond)))
}

// rowSources returns the verification's view of the two tables, both
// reached directly.
func (w *walker) rowSources() (old, new *verify.SQLRows) {
	return userRows(w.kind, w.old.DB), userRows(w.kind, w.newAdmin.DB)
}

// userRows returns the verification's view of the users table in db, a
// database of kind: a row's value is its name and its version.
func userRows(kind string, db *sqlx.DB) *verify.SQLRows {
	value := `name || ':' || CAST(version AS TEXT)`
	if kind == sqldialect.MySQL {
		value = `CONCAT(name, ':', version)`
	}
	return &verify.SQLRows{DB: db, Table: "users", Key: "id", Kind: expandcontract.TextKeys, Value: value}
}

// drain waits until the repair log has no pending entry. Under load the
// log may take minutes to drain on a busy machine, but it drains as long as
// entries get repaired, so the wait fails once the repairer went s.drain
// without repairing any entry (a stuck repairer, or a store it cannot
// reach), or after five times that in all.
func (w *walker) drain() time.Duration {
	w.t.Helper()
	return drainLog(w.ctx, w.t, w.durable, w.loop, w.s.drain)
}

// drainLog waits until log has no pending entry, failing t once loop went
// stall without repairing any entry, or after five times that in all, and
// returns how long it waited.
func drainLog(ctx context.Context, t *testing.T, log *repair.Log, loop *repairLoop, stall time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	repaired, progressAt := loop.repaired.Load(), start
	for {
		n, err := log.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return time.Since(start)
		}
		now := time.Now()
		if r := loop.repaired.Load(); r != repaired {
			repaired, progressAt = r, now
		}
		if stalled, all := now.Sub(progressAt), now.Sub(start); stalled > stall || all > 5*stall {
			es, _ := log.Entries(ctx, repair.Query{Limit: 5})
			t.Fatalf("repair log: %d entries still pending after %v, the last %v with no entry repaired (bounds: %v without a repair, %v in all), such as %+v; the last round that failed: %v",
				n, all.Round(time.Millisecond), stalled.Round(time.Millisecond), stall, 5*stall, es, loop.lastError())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyUnderLoad drains the repair log and verifies the stores while the
// load goes on, as an operator would before moving reads. A write in
// flight between the reads of the two stores can show as a difference
// twice in a row, so up to three verifications are allowed; the strict
// check comes at the end of rampdown, with the load stopped.
func (w *walker) verifyUnderLoad() {
	t := w.t
	old, new := w.rowSources()
	for attempt := 1; ; attempt++ {
		took := w.drain()
		res, err := suite.Verify(w.ctx, suite.Migration(w.store, w.name), old, new, verify.WithRecheck(250*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("verify under load before switchreads, attempt %d: drained in %v, %d rows, %d differences %v",
			attempt, took.Round(time.Millisecond), res.Rows, res.Differences, res.Keys))
		if res.Clean() {
			return
		}
		if attempt == 3 {
			t.Fatalf("verification under load found differences three times: %+v", res)
		}
	}
}

// checkIdentical is the check after rampdown, the last stage that writes
// both stores: pending comparisons finished and the repair log drained,
// the verification must find the stores identical, and both must hold the
// last acknowledged version of every key.
func (w *walker) checkIdentical() {
	t := w.t
	if err := w.gets.Drain(w.ctx); err != nil {
		t.Fatal(err)
	}
	took := w.drain()
	old, new := w.rowSources()
	var diffs cutover.MemoryRepairLog
	res, err := suite.Verify(w.ctx, suite.Migration(w.store, w.name), old, new, verify.WithRepairLog(&diffs))
	if err != nil {
		t.Fatal(err)
	}
	w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("after rampdown, load stopped: repair log drained in %v; verification: %d rows old, %d new, %d differences (missing %d, extra %d, changed %d) %v",
		took.Round(time.Millisecond), res.Rows, res.NewRows, res.Differences, res.Missing, res.Extra, res.Changed, res.Keys))
	// A key whose write failed because the repair log could not record it
	// may differ: the library told the caller to repair it by hand. Any
	// other difference is a write the repair log should have had.
	unrecorded := w.load.Unrecorded()
	var strays, excused []string
	for _, e := range diffs.Entries() {
		if unrecorded[e.Key] {
			excused = append(excused, e.Key)
		} else {
			strays = append(strays, fmt.Sprintf("%s (%v)", e.Key, e.Err))
		}
	}
	if len(excused) > 0 {
		w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("after rampdown: %d keys differ whose last write failed because the repair log could not record it: %v",
			len(excused), excused))
	}
	if len(strays) > 0 {
		t.Errorf("after the repair log drained, the verification found %d differing keys: %v", len(strays), strays)
	}
	for _, side := range []cutover.Side{cutover.Old, cutover.New} {
		rows, err := w.direct[side].Rows(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		lost, byWindow := w.load.Lost(rows)
		w.attributeLost(byWindow)
		w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("after rampdown: %s store: %d keys, %d acknowledged writes lost", side, len(rows), len(lost)))
		if len(lost) > 0 {
			t.Errorf("%s store lost %d acknowledged writes: %s", side, len(lost), strings.Join(lost[:min(len(lost), 10)], "; "))
		}
	}
}

// checkComplete is the check at the end: the new store, now alone, must
// hold the last acknowledged version of every key, and differ from the
// retired old store only in keys written in complete.
func (w *walker) checkComplete() {
	t := w.t
	if err := w.gets.Drain(w.ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := w.direct[cutover.New].Rows(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	lost, byWindow := w.load.Lost(rows)
	w.attributeLost(byWindow)
	w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("at the end: new store: %d keys, %d acknowledged writes lost", len(rows), len(lost)))
	if len(lost) > 0 {
		t.Errorf("new store lost %d acknowledged writes: %s", len(lost), strings.Join(lost[:min(len(lost), 10)], "; "))
	}
	var diffs cutover.MemoryRepairLog
	old, new := w.rowSources()
	res, err := suite.Verify(w.ctx, suite.Migration(w.store, w.name), old, new, verify.WithRepairLog(&diffs))
	if err != nil {
		t.Fatal(err)
	}
	written := w.load.WrittenIn(cutover.Complete)
	unrecorded := w.load.Unrecorded()
	var strays []string
	for _, e := range diffs.Entries() {
		if !(written[e.Key] || unrecorded[e.Key]) || e.Err != verify.ErrValueDiffers {
			strays = append(strays, fmt.Sprintf("%s (%v)", e.Key, e.Err))
		}
	}
	w.rep.Notes = append(w.rep.Notes, fmt.Sprintf("at the end: old and new differ in %d keys, all written in complete: %v (%d keys written in complete)",
		res.Differences, len(strays) == 0, len(written)))
	if len(strays) > 0 {
		t.Errorf("old and new differ in keys not written in complete: %v", strays)
	}
}

// attributeLost adds lost writes to the rows of the windows that
// acknowledged them.
func (w *walker) attributeLost(byWindow map[int]int64) {
	for i, n := range byWindow {
		if i >= 0 && i < len(w.rep.Windows) {
			w.rep.Windows[i].Lost += n
		}
	}
}

// summarize adds the totals to the report's notes.
func (w *walker) summarize() {
	tot := w.rep.Total()
	recorded, refused := w.repairs.Counts()
	w.rep.Notes = append(w.rep.Notes,
		fmt.Sprintf("totals: writes attempted %d, acknowledged %d, lost %d; reads %d; caller errors %d (%.2f%%), "+
			"not from the authoritative store %d, from the repair log's timeout %d",
			tot.Writes, tot.Acked, tot.Lost, tot.Reads, tot.WriteErrs+tot.ReadErrs, 100*tot.ErrorRate(), tot.Foreign, tot.Unrecorded),
		fmt.Sprintf("repair log: %d keys recorded (%s), %d entries repaired, %d repair attempts failed and were retried; "+
			"records that failed: %s",
			w.repairs.total.Load(), byReason(recorded), w.loop.repaired.Load(), w.loop.failed.Load(), byReason(refused)),
		"reproduce: scripts/test.sh -race -run TestFaults -v",
		"longer windows (10 s): go -C e2e test -race -timeout 60m -run TestFaults -v ./faults/ -faults.long")
}

// byReason formats counts by reason, sorted by reason.
func byReason(m map[cutover.Reason]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", r, m[r]))
	}
	return strings.Join(parts, ", ")
}
