package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/backoff"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// batchAttempts is how many times a batch is tried when it fails on a
// deadlock, a serialization failure or a lock timeout, which roll it back
// whole and may pass.
const batchAttempts = 5

// releaseTimeout bounds the statements a run makes after its context is
// done: giving back the lease.
const releaseTimeout = 5 * time.Second

// control is the migration's row, whose backfill and lease columns steer
// its runner.
type control = meta.Row

// run is the state of one call of Run.
type run struct {
	after      any    // the checkpoint's key; nil before the first batch
	checkpoint string // after, encoded
	rows       int64  // rows copied, over every run
	runRows    int64  // rows copied by this run
	total      int64
	batches    int64
	start      time.Time     // when this run started, on the real clock
	paused     time.Duration // time spent paused
	next       time.Time     // when the rate limit lets the next batch start
	released   bool          // the lease was given back
	// startDetail is the history's record of the run's start, written
	// with its first commit, so that a run that copies nothing changes
	// nothing; started is set once it is.
	startDetail string
	startedAt   time.Time // when the run took the lease, on the store's clock
	started     bool
	batch       trace.Span // the span of the batch in flight; nil between batches
	part        *part      // the range of a partitioned backfill that the run copies; nil for the whole
	throttled   string     // why the run waits, as recorded in the metadata; "" if it does not

	// The settings the run applies, those of the metadata where set and
	// the runner's options otherwise, as of the metadata's settings
	// number settings; win reads batches of batchSize keys.
	settings  int64
	batchSize int
	rateLimit float64
	win       window
	samples   []meta.Sample // the backfill's progress samples, as committed
	recent    rateWindow    // the ends of the recent batches, for the rate measured
}

// recentBatches is how many of the latest batches the rate a runner
// measures and records spans.
const recentBatches = 16

// rateWindow holds the ends of a run's recent batches: when each ended, by
// the store's clock (the clock of the progress samples and of the status
// that reads them), and the rows the run had copied by then. The zero
// value holds none.
type rateWindow struct {
	at      [recentBatches + 1]time.Time
	rows    [recentBatches + 1]int64
	n, next int
}

// reset starts the window anew from rows copied at at.
func (w *rateWindow) reset(at time.Time, rows int64) {
	*w = rateWindow{}
	w.add(at, rows)
}

// add records the end at at of a batch, with rows copied by then,
// dropping the oldest end beyond recentBatches+1.
func (w *rateWindow) add(at time.Time, rows int64) {
	w.at[w.next], w.rows[w.next] = at, rows
	w.next = (w.next + 1) % len(w.at)
	w.n = min(w.n+1, len(w.at))
}

// rateAt returns the rows per second from the oldest end that adding the
// end of a batch at at, with rows copied by then, would keep, to that end;
// 0 if there is none or no time passed.
func (w *rateWindow) rateAt(at time.Time, rows int64) float64 {
	base, perSecond := w.rateParts(at, 0)
	if rows+base < 0 {
		return 0
	}
	return float64(rows+base) * perSecond
}

// rateParts returns the parts of the rate that rateAt returns for a batch
// ending at at that copies n rows after before rows were copied, before
// n is known: that rate is (base + n) * perSecond. perSecond is 0 if there
// is no end or no time passed.
func (w *rateWindow) rateParts(at time.Time, before int64) (base int64, perSecond float64) {
	if w.n == 0 {
		return 0, 0
	}
	oldest := (w.next - w.n + len(w.at)) % len(w.at)
	if w.n == len(w.at) {
		oldest = (oldest + 1) % len(w.at)
	}
	d := at.Sub(w.at[oldest]).Seconds()
	if d <= 0 {
		return 0, 0
	}
	return before - w.rows[oldest], 1 / d
}

// Run backfills the migration until no key is left beyond the checkpoint,
// then records the backfill as done, gives back the lease and returns nil.
// It returns nil at once if the backfill is already done.
//
// The migration must be in the [expandcontract.Backfill] phase; otherwise, or if it
// leaves it during the run, Run returns an error wrapping
// [ErrWrongPhase]. Run first takes the backfill's lease: if another
// runner holds it and its lease has not run out, Run returns a
// *[LeaseHeldError]; a lease that ran out (its runner died) is taken over,
// which the history of the migration records. Each batch commits with the
// checkpoint, in one transaction that succeeds only while the runner holds
// the lease, so a runner whose lease was taken over never commits again
// and returns an error wrapping [ErrLeaseLost].
//
// A run records its start in the history, and the backfill's start time
// and total, with its first commit: a run that stops before any batch
// commits, for want of a table or on a failing batch, leaves the metadata
// as it found it.
//
// A pause asked for through the metadata ([Pause], from any
// instance) stops the runner before its next commit, or during a wait
// between batches longer than the poll interval; it waits, keeping its
// lease, until the backfill is resumed, canceled or ctx is done. A
// cancellation ([Cancel]) makes Run give back the lease and
// return an error wrapping [ErrCanceled]. A batch in flight when either is
// asked for is rolled back and done again later, never twice. A rate
// limit or batch size set through the metadata ([SetRate],
// [SetBatchSize]) is applied from the next commit on, the batch in
// flight committing as it was read. When ctx is
// done, or a batch fails, Run rolls the batch back, gives back the lease
// and returns the error; the next run resumes from the checkpoint.
//
// If a batch, the throttle hook or the progress function panics, the
// panic goes on up to Run's caller as it was, as it would have without the
// library, since a panic in one's own code is a bug to see rather than an
// error to handle; but first Run rolls the batch in flight back, stops
// renewing the lease and gives it back, so that another runner can take
// over at once. runtime.Goexit (t.FailNow in a test) is handled the same.
//
// Run may be called again after it returns, but not while it runs.
//
// With a tracer provider ([expandcontract.WithTracerProvider]), a run is a
// span named cutover.expandcontract.backfill.run, with a child per batch
// when it is recorded; see the package documentation.
func (b *Runner) Run(ctx context.Context) (err error) {
	if !b.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: %q: Run is already running on this Runner", ErrInvalidInput, b.name)
	}
	defer b.running.Store(false)

	ctx, span := b.tracer.Start(ctx, spanRun, b.spanRun)
	returned := false
	defer func() {
		if !returned { // a panic or runtime.Goexit goes on up
			telemetry.EndSpan(span, telemetry.Panic.String(), errAbandoned)
			return
		}
		telemetry.EndSpan(span, runOutcome(err), err)
	}()
	err = b.run(ctx, span)
	returned = true
	return err
}

// errAbandoned is what the span of a run learns of a panic or a
// runtime.Goexit that ended it.
var errAbandoned = errors.New("backfill: run ended by a panic or runtime.Goexit in a batch, throttle or progress function")

// run is Run, in span.
func (b *Runner) run(ctx context.Context, span trace.Span) error {
	if b.cfg.ranges > 1 {
		return b.runRanges(ctx, span)
	}
	r, c, err := b.acquire(ctx)
	if err != nil || r == nil {
		return err
	}
	return b.runOne(ctx, span, r, c)
}

// runOne copies the keys of r, whose lease the runner took, until none is
// left: the whole backfill, or r's range of a partitioned one.
func (b *Runner) runOne(ctx context.Context, span trace.Span, r *run, c control) error {
	runCtx, stop := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { b.heartbeat(runCtx, stop, r) })
	b.gaugeRows.Store(r.rows)
	b.gaugeTotal.Store(r.total)
	reg, regErr := b.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(b.ratio, ratio(b.gaugeRows.Load(), b.gaugeTotal.Load()), b.attrs)
		return nil
	}, b.ratio)
	if regErr != nil {
		b.k.Logger.WarnContext(ctx, "cutover: backfill progress gauge unavailable", "migration", b.name, "err", regErr)
	}

	// Deferred, so that it runs however the run ends: also when a batch,
	// the throttle hook or the progress function panics or calls
	// runtime.Goexit, which then goes on up the caller's stack.
	returned := false
	defer func() {
		if span.IsRecording() && r.part == nil { // runRanges sets them for all its ranges
			span.SetAttributes(telemetry.KeyRows.Int64(r.runRows), keyBatches.Int64(r.batches))
		}
		stop(nil)
		wg.Wait()
		if reg != nil {
			_ = reg.Unregister()
		}
		if !r.released {
			b.release(ctx, r)
		}
		if !returned {
			r.endBatch(telemetry.Panic.String(), 0, errAbandoned)
			b.k.Logger.ErrorContext(ctx, "cutover: backfill run ended by a panic or runtime.Goexit in a batch, throttle or progress function; "+
				"its batch in flight is rolled back and its lease given back", "migration", b.name, "owner", b.cfg.owner,
				"checkpoint", r.checkpoint)
		}
	}()
	err := b.loop(runCtx, &wg, r, c)
	returned = true
	return err
}

// acquire checks that the backfill may run and takes its lease. It
// returns a nil run if the backfill is already done.
func (b *Runner) acquire(ctx context.Context) (*run, control, error) {
	var (
		c        control
		done     bool
		takeover string
		now      time.Time
	)
	err := b.retry(ctx, "take the lease", func() error {
		done, takeover = false, ""
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			if c, err = b.control(ctx, tx, true); err != nil {
				return err
			}
			switch {
			case c.Phase != backfillPhase:
				return b.phaseErr(c)
			case c.DoneAt.Valid:
				done = true
				return nil
			case c.Canceled != 0:
				return fmt.Errorf("%w: backfill of %q at checkpoint %q; lift the cancellation with backfill.ResetCancel to run it",
					ErrCanceled, b.name, c.Checkpoint.String)
			}
			if ok, err := b.hasRanges(ctx, tx); err != nil || ok {
				if ok {
					err = fmt.Errorf("%w: %q: the backfill is split into ranges; run it with backfill.WithRanges", ErrInvalidInput, b.name)
				}
				return err
			}
			now = b.k.Now()
			if held := b.heldBy(c, now); held != nil {
				return held
			}
			if c.LeaseOwner.Valid && c.LeaseOwner.String != b.cfg.owner {
				takeover = fmt.Sprintf("; took over the lease of %q, which ran out at %s",
					c.LeaseOwner.String, meta.FromMicros(c.LeaseUntil).Format(time.RFC3339Nano))
			}
			res, err := tx.ExecContext(ctx, b.qTake, b.cfg.owner, meta.Micros(now.Add(b.cfg.ttl)), b.name, b.cfg.owner, meta.Micros(now))
			if err != nil {
				return fmt.Errorf("backfill: %q: take the lease: %w", b.name, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				// Taken meanwhile, or (MySQL) our own lease left unchanged.
				if c, err = b.control(ctx, tx, true); err != nil {
					return err
				}
				if held := b.heldBy(c, now); held != nil {
					return held
				}
			}
			return nil
		})
	})
	if err != nil || done {
		return nil, c, err
	}
	if takeover != "" {
		b.k.Logger.WarnContext(ctx, "cutover: backfill lease taken over from a runner that stopped renewing it",
			"migration", b.name, "owner", b.cfg.owner, "previous", c.LeaseOwner.String)
	}
	r := &run{rows: c.Rows, total: c.Total, start: time.Now(), startedAt: now,
		startDetail: fmt.Sprintf("start at checkpoint %q with %d rows copied%s", c.Checkpoint.String, c.Rows, takeover)}
	r.next = r.start
	b.apply(ctx, r, c)
	if r.samples, err = meta.DecodeSamples(c.Samples.String); err != nil {
		b.k.Logger.WarnContext(ctx, "cutover: backfill progress samples unreadable; they start anew", "migration", b.name, "err", err)
	}
	if c.Checkpoint.Valid {
		if r.after, err = decodeKey(b.keys.kind, c.Checkpoint.String); err != nil {
			b.release(ctx, r)
			return nil, c, fmt.Errorf("%w: %q: %w", expandcontract.ErrCorrupt, b.name, err)
		}
		r.checkpoint = c.Checkpoint.String
	}
	b.k.Logger.InfoContext(ctx, "cutover: backfill started", "migration", b.name, "owner", b.cfg.owner,
		"checkpoint", r.checkpoint, "rows", r.rows)
	return r, c, nil
}

// heldBy returns the error for a lease that c shows held by another live
// runner at now, or nil.
func (b *Runner) heldBy(c control, now time.Time) error {
	if c.LeaseOwner.Valid && c.LeaseOwner.String != b.cfg.owner && c.LeaseUntil.Valid && c.LeaseUntil.Int64 > meta.Micros(now) {
		return &LeaseHeldError{Migration: b.name, Owner: c.LeaseOwner.String, Until: meta.FromMicros(c.LeaseUntil)}
	}
	return nil
}

func (b *Runner) phaseErr(c control) error {
	return fmt.Errorf("%w: %q is in phase %s; a backfill runs only in phase %s", ErrWrongPhase, b.name, c.Phase, expandcontract.Backfill)
}

// control reads the migration's steering columns, locking its row when
// lock is set and q is a transaction.
func (b *Runner) control(ctx context.Context, q sqlx.QueryerContext, lock bool) (control, error) {
	var c control
	query := b.qControl
	if lock {
		query = b.qControlLock
	}
	err := sqlx.GetContext(ctx, q, &c, query, b.name)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w: %q", expandcontract.ErrNotFound, b.name)
	}
	if err != nil {
		return c, fmt.Errorf("backfill: %q: read state: %w", b.name, err)
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, nil
}

// apply makes r apply the settings of c: the batch size and rate limit an
// operator set, where set, and the runner's options otherwise.
func (b *Runner) apply(ctx context.Context, r *run, c control) {
	size, rate := b.cfg.batchSize, b.cfg.rate
	if c.BatchSize > 0 {
		size = int(c.BatchSize)
	}
	if c.RateLimit > 0 {
		rate = c.RateLimit
	}
	changed := r.win.size != 0 && (size != r.batchSize || rate != r.rateLimit)
	if rate != r.rateLimit {
		r.next = time.Time{} // the new rate counts from the next batch's start
	}
	r.settings, r.rateLimit = c.Settings, rate
	if size != r.win.size {
		r.batchSize, r.win = size, b.keys.window(size, r.part)
	}
	if changed {
		b.k.Logger.InfoContext(ctx, "cutover: backfill settings changed", "migration", b.name, "owner", b.cfg.owner,
			"batch_size", r.batchSize, "rate_limit", r.rateLimit)
	}
}

func (b *Runner) version(ctx context.Context, tx *sqlx.Tx) (int64, error) {
	var v int64
	if err := tx.GetContext(ctx, &v, b.k.Q(`SELECT version FROM `+b.k.T.Migrations+` WHERE name = ?`), b.name); err != nil {
		return 0, fmt.Errorf("backfill: %q: read version: %w", b.name, err)
	}
	if v < 1 {
		return 0, fmt.Errorf("%w: migration %q: version %d", expandcontract.ErrCorrupt, b.name, v)
	}
	return v, nil
}

// scanned is the result of a scan.
type scanned struct {
	rng   expandcontract.KeyRange
	first any
	ok    bool
	err   error
}

// lookahead is a scan of the range after a key, run while the batch that
// ends at that key runs, so that the next batch need not wait for it.
type lookahead struct {
	after any
	size  int // the keys of the batch scanned
	done  chan scanned
}

// lookAhead starts a scan, with w, of the range after the key after.
func (b *Runner) lookAhead(ctx context.Context, wg *sync.WaitGroup, w window, after any) *lookahead {
	la := &lookahead{after: after, size: w.size, done: make(chan scanned, 1)}
	wg.Go(func() {
		var sc scanned
		sc.rng, sc.first, sc.ok, sc.err = b.scan(ctx, w, after)
		la.done <- sc
	})
	return la
}

// loop runs batches until none is left. Goroutines it starts join wg.
//
// The keys of the next batch are read while the current batch runs, on
// another connection: the range after a batch depends only on the batch's
// last key and size, and a batch that does not commit, or after which the
// batch size changes, leaves that read unused.
func (b *Runner) loop(ctx context.Context, wg *sync.WaitGroup, r *run, c control) error {
	if c.Paused != 0 {
		if err := b.waitResume(ctx, r); err != nil {
			return err
		}
	}
	if r.part == nil {
		if err := b.estimate(ctx, r); err != nil {
			return err
		}
	}
	r.recent.reset(b.k.Now(), r.runRows)
	var ahead *lookahead
	for {
		if ctx.Err() != nil {
			return b.ctxErr(ctx)
		}
		if err := b.throttle(ctx, r); err != nil {
			return err
		}
		start := time.Now()
		bctx, span := telemetry.Child(ctx, b.tracer, spanBatch, b.spanOne)
		r.batch = span
		var sc scanned
		if ahead != nil && ahead.after == r.after && ahead.size == r.win.size {
			sc = <-ahead.done
		} else {
			sc.rng, sc.first, sc.ok, sc.err = b.scan(bctx, r.win, r.after)
		}
		ahead = nil
		rng, first, ok, err := sc.rng, sc.first, sc.ok, sc.err
		if err != nil {
			b.duration.Record(ctx, time.Since(start).Seconds(), b.attrsErr)
			r.endBatch(batchError, 0, err)
			return err
		}
		if !ok {
			finish := b.finish
			if r.part != nil {
				finish = b.finishPart
			}
			halt, err := finish(bctx, r)
			switch {
			case err != nil:
				r.endBatch(batchError, 0, err)
				return err
			case halt != nil:
				r.endBatch(batchHalted, 0, nil)
				if err := b.halted(ctx, r, *halt); err != nil {
					return err
				}
				continue
			}
			r.endBatch(batchDone, 0, nil)
			return nil
		}
		ahead = b.lookAhead(ctx, wg, r.win, rng.To)
		rows, halt, err := b.commit(bctx, r, rng, first)
		if err != nil {
			b.duration.Record(ctx, time.Since(start).Seconds(), b.attrsErr)
			r.endBatch(batchError, 0, err)
			return err
		}
		if halt != nil {
			r.endBatch(batchHalted, 0, nil)
			if err := b.halted(ctx, r, *halt); err != nil {
				return err
			}
			continue
		}
		r.endBatch(batchOK, rows, nil)
		end := time.Now()
		b.duration.Record(ctx, end.Sub(start).Seconds(), b.attrsOK)
		b.rows.Add(ctx, rows, b.attrs)
		r.after, r.checkpoint = rng.To, encodeKey(rng.To)
		r.rows += rows
		r.runRows += rows
		r.batches++
		b.gaugeRows.Store(r.rows)
		b.report(r, false)
		if err := b.pace(ctx, r, start, end, rows); err != nil {
			return err
		}
	}
}

// pace waits after a batch that started at start, ended at end and copied
// rows, as the rate limit and the batch pause say. A wait longer than the
// poll interval reads the metadata every poll interval: a pause, a
// cancellation or a lost lease is acted on at once, and a new rate limit
// makes the wait as long as the batch takes at that rate.
func (b *Runner) pace(ctx context.Context, r *run, start, end time.Time, rows int64) error {
	until := func() time.Time {
		t := end.Add(b.cfg.batchPause)
		if r.rateLimit > 0 {
			if r.next.Before(start) {
				r.next = start
			}
			r.next = r.next.Add(time.Duration(float64(rows) / r.rateLimit * float64(time.Second)))
			t = later(t, r.next)
		}
		return t
	}
	deadline := until()
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil
		}
		if wait <= b.cfg.poll {
			if err := backoff.Sleep(ctx, wait); err != nil {
				return b.ctxErr(ctx)
			}
			return nil
		}
		c, ok, err := b.poll(ctx, "waiting")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if b.mustHalt(c) {
			return b.halted(ctx, r, c) // after a pause, the next batch goes at once
		}
		if c.Settings != r.settings {
			rate := r.rateLimit
			b.apply(ctx, r, c)
			if r.rateLimit != rate {
				deadline = until() // the new rate applies from this batch's start
			}
		}
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Span names and attribute keys of runs and batches.
const (
	spanRun   = "cutover.expandcontract.backfill.run"
	spanBatch = "cutover.expandcontract.backfill.batch"

	keyOwner   = attribute.Key("cutover.backfill.owner") // the runner's id, as WithOwner sets it
	keyBatches = attribute.Key("cutover.batches")        // batches a run committed
)

// The outcomes of a batch, as the cutover.outcome of its span says them.
const (
	batchOK     = "ok"     // copied and committed with its checkpoint
	batchDone   = "done"   // found no key left, and recorded the backfill done
	batchHalted = "halted" // rolled back for a pause, a cancellation, a lost lease or a phase left
	batchError  = "error"  // failed, and so did the run
	// and telemetry.Panic's "panic": a panic or runtime.Goexit ended it
)

// endBatch ends the span of the batch in flight, if any, with outcome, the
// rows it copied and its error: all of it only if the span is recording, so
// that a batch that is not traced builds no attributes.
func (r *run) endBatch(outcome string, rows int64, err error) {
	span := r.batch
	r.batch = nil
	if span != nil && span.IsRecording() {
		telemetry.EndSpan(span, outcome, err, telemetry.KeyRows.Int64(rows))
	}
}

// runOutcome classifies the error of a run for its span: "ok", "refused"
// (the lease is held, or the migration not in backfill), "canceled"
// (through the metadata or by ctx), "lease_lost" or "error".
func runOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrWrongPhase):
		return "refused"
	case errors.Is(err, ErrCanceled), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case errors.Is(err, ErrLeaseLost):
		return "lease_lost"
	}
	return "error"
}

// estimate sets the run's total: the one given, or the rows copied plus
// the keys beyond the checkpoint. The metadata gets it with the run's
// first commit.
func (b *Runner) estimate(ctx context.Context, r *run) error {
	if b.cfg.totalSet {
		r.total = b.cfg.total
	} else {
		var n int64
		var err error
		if r.after == nil {
			err = b.keys.db.GetContext(ctx, &n, b.keys.countAll)
		} else {
			err = b.keys.db.GetContext(ctx, &n, b.keys.countAfter, r.after)
		}
		if err != nil {
			if ctx.Err() != nil {
				return b.ctxErr(ctx)
			}
			return fmt.Errorf("backfill: %q: count the keys to copy: %w", b.name, err)
		}
		r.total = r.rows + n
	}
	b.gaugeTotal.Store(r.total)
	return nil
}

// throttle holds the next batch while the lag throttle, the throttle hook
// or the hold asks it to wait, recording why in the metadata while it
// waits.
func (b *Runner) throttle(ctx context.Context, r *run) error {
	if b.cfg.lag == nil && b.cfg.throttle == nil && b.cfg.hold == nil {
		return nil
	}
	for {
		wait, why, err := b.throttleWait(ctx)
		if ctx.Err() != nil {
			return b.ctxErr(ctx)
		}
		if err != nil {
			return err
		}
		if wait <= 0 {
			if r.throttled != "" {
				b.k.Logger.InfoContext(ctx, "cutover: backfill no longer throttled", "migration", b.name, "owner", b.cfg.owner)
			}
			return nil // the next commit clears the record
		}
		b.setThrottled(ctx, r, why)
		if err := b.waitThrottled(ctx, r, wait); err != nil {
			return err
		}
	}
}

// maxThrottledLen bounds the reason for a throttle that the metadata
// records, in bytes.
const maxThrottledLen = 500

// throttleWait asks the lag throttle, then the throttle hook, then the
// hold, whether the next batch must wait, and returns how long and why.
func (b *Runner) throttleWait(ctx context.Context) (time.Duration, string, error) {
	if l := b.cfg.lag; l != nil {
		why, err := l.check(ctx, time.Now())
		if ctx.Err() != nil {
			return 0, "", nil
		}
		if err != nil {
			if ok, suppressed := b.lagLogs.Allow(); ok {
				b.k.Logger.WarnContext(ctx, "cutover: backfill cannot read the replication lag; it waits until it can",
					"migration", b.name, "owner", b.cfg.owner, "err", err, "suppressed", suppressed)
			}
			why = "replica lag unknown: " + err.Error()
		}
		if why != "" {
			return b.cfg.poll, why, nil
		}
	}
	if b.cfg.throttle != nil {
		wait, err := b.cfg.throttle(ctx)
		if ctx.Err() != nil {
			return 0, "", nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("backfill: %q: throttle: %w", b.name, err)
		}
		if wait > 0 {
			return wait, "throttle hook: wait " + wait.String(), nil
		}
	}
	if b.cfg.hold != nil {
		why, err := b.cfg.hold(ctx)
		if ctx.Err() != nil {
			return 0, "", nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("backfill: %q: hold: %w", b.name, err)
		}
		if why != "" {
			return b.cfg.poll, why, nil
		}
	}
	return 0, "", nil
}

// setThrottled records in the metadata why r waits, if that changed.
func (b *Runner) setThrottled(ctx context.Context, r *run, why string) {
	if len(why) > maxThrottledLen {
		why = strings.ToValidUTF8(why[:maxThrottledLen], "")
	}
	if why == r.throttled {
		return
	}
	if r.throttled == "" {
		b.k.Logger.InfoContext(ctx, "cutover: backfill throttled", "migration", b.name, "owner", b.cfg.owner, "why", why)
	}
	q, args := b.qThrottled, []any{why, b.name, b.cfg.owner}
	if r.part != nil {
		q, args = b.ranges.throttled, args[:2]
	}
	if _, err := b.k.DB.ExecContext(ctx, q, args...); err != nil {
		if ctx.Err() == nil {
			b.k.Logger.WarnContext(ctx, "cutover: backfill could not record that it is throttled", "migration", b.name, "err", err)
		}
		return
	}
	r.throttled = why
}

// waitThrottled waits for a throttle, wait long, reading the metadata
// every poll interval, so that a pause, a cancellation or a lost lease is
// acted on at once.
func (b *Runner) waitThrottled(ctx context.Context, r *run, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		if left < b.cfg.poll {
			if err := backoff.Sleep(ctx, left); err != nil {
				return b.ctxErr(ctx)
			}
			return nil
		}
		c, ok, err := b.poll(ctx, "throttled")
		if err != nil {
			return err
		}
		if ok && b.mustHalt(c) {
			return b.halted(ctx, r, c) // after a pause, the throttle is asked again
		}
	}
}

// scan reads, with w, the range of the next batch of keys after the key
// after (nil: from the start), and the first key of the batch. It reports
// false if no key is left.
func (b *Runner) scan(ctx context.Context, w window, after any) (rng expandcontract.KeyRange, first any, ok bool, err error) {
	var args []any
	if after != nil {
		args = append(args, after)
	}
	if w.hi != nil {
		args = append(args, w.hi)
	}
	q := w.next
	if after == nil {
		q = w.first
	}
	row := b.keys.db.QueryRowxContext(ctx, q, args...)
	var n int64
	rng.From = after
	if b.keys.kind == expandcontract.TextKeys {
		var lo, hi sql.NullString
		err = row.Scan(&lo, &hi, &n)
		first, rng.To = lo.String, hi.String
	} else {
		var lo, hi sql.NullInt64
		err = row.Scan(&lo, &hi, &n)
		first, rng.To = lo.Int64, hi.Int64
	}
	if err != nil {
		if ctx.Err() != nil {
			return rng, nil, false, b.ctxErr(ctx)
		}
		return rng, nil, false, fmt.Errorf("backfill: %q: read the next %s keys after %s: %w",
			b.name, b.keys.kind, boundString(after), err)
	}
	return rng, first, n > 0, nil
}

// below returns the value an [SQLBatch] binds to :from in the first
// batch, whose first key is first: a value below every key.
func (b *Runner) below(ctx context.Context, first any) (any, error) {
	noBound := func(why string) error {
		return fmt.Errorf("%w: %q: the SQL batch needs a value for :from below the first key %s, and %s; "+
			"use a BatchFunc, which gets a nil From for the first batch", ErrInvalidInput, b.name, boundString(first), why)
	}
	switch k := first.(type) {
	case int64:
		if k == math.MinInt64 {
			return nil, noBound("no integer is smaller")
		}
		return k - 1, nil
	case string:
		if k == "" {
			return nil, noBound("no string is smaller")
		}
		var n int64
		if err := b.keys.db.GetContext(ctx, &n, b.keys.atOrBelow, ""); err != nil {
			if ctx.Err() != nil {
				return nil, b.ctxErr(ctx)
			}
			return nil, fmt.Errorf("backfill: %q: look for keys equal to the empty string: %w", b.name, err)
		}
		if n > 0 {
			return nil, noBound(fmt.Sprintf("the column's collation takes %d of its keys as equal to the empty string", n))
		}
		return "", nil
	}
	return nil, fmt.Errorf("backfill: %q: key %v of type %T", b.name, first, first)
}

// boundString shows a key in messages: quoted, or "the start" for nil.
func boundString(k any) string {
	switch v := k.(type) {
	case nil:
		return "the start"
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return strconv.Quote(encodeKey(k))
}

// rangeString shows a range in messages, as (from, to].
func rangeString(r expandcontract.KeyRange) string {
	from := "start"
	if r.From != nil {
		from = boundString(r.From)
	}
	return "(" + from + ", " + boundString(r.To) + "]"
}

// commit runs the batch over rng, whose first key is first, and commits
// it with the checkpoint, the rate measured over the recent batches and
// the progress samples, and the first batch of r with the record of its
// start. If the checkpoint could not be written because the runner must
// stop or wait, it rolls the batch back and returns the state that says
// why; if it could not because the settings changed, it applies them and
// writes it.
func (b *Runner) commit(ctx context.Context, r *run, rng expandcontract.KeyRange, first any) (rows int64, halt *control, err error) {
	batchRange := rng
	if _, ok := b.batch.(*compiledSQL); ok && rng.From == nil {
		if batchRange.From, err = b.below(ctx, first); err != nil {
			return 0, nil, err
		}
	}
	if r.part != nil {
		return b.commitPart(ctx, r, rng, batchRange)
	}
	if b.qFused != "" && r.started && !sampleDue(r.samples, b.k.Now()) {
		rows, halt, ok := b.commitFused(ctx, r, rng, batchRange)
		switch {
		case halt != nil:
			return 0, halt, nil
		case ok:
			return rows, nil, nil
		case ctx.Err() != nil:
			return 0, nil, b.ctxErr(ctx)
		}
	}
	err = b.retry(ctx, "batch", func() error {
		rows, halt = 0, nil
		tx, err := b.k.BeginTx(ctx)
		if err != nil {
			return fmt.Errorf("backfill: %q: begin batch: %w", b.name, err)
		}
		defer func() { _ = tx.Rollback() }()
		if rows, err = b.batch.CopyRange(ctx, tx, batchRange); err != nil {
			return fmt.Errorf("backfill: %q: batch %s: %w", b.name, rangeString(rng), err)
		}
		if rows < 0 {
			return fmt.Errorf("backfill: %q: batch %s reported %d rows", b.name, rangeString(rng), rows)
		}
		now := b.k.Now()
		samples, added := meta.AddSample(r.samples, now, r.rows+rows, false)
		var encoded any // NULL keeps the samples as they are
		if added {
			encoded = meta.EncodeSamples(samples)
		}
		args := []any{encodeKey(rng.To), rows, r.total, meta.Micros(r.startedAt), meta.Micros(now.Add(b.cfg.ttl)),
			meta.Micros(now), r.recent.rateAt(now, r.runRows+rows), encoded, b.name, b.cfg.owner, backfillPhase, r.settings}
		res, err := tx.ExecContext(ctx, b.qCheckpoint, args...)
		if err != nil {
			return fmt.Errorf("backfill: %q: write checkpoint: %w", b.name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if halt, err = b.missed(ctx, tx, r, "write checkpoint", b.qCheckpoint, args); err != nil || halt != nil {
				return err // rolled back by the deferred call
			}
		}
		if err := b.recordStart(ctx, tx, r); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("backfill: %q: commit batch: %w", b.name, err)
		}
		r.started, r.samples, r.throttled = true, samples, ""
		r.recent.add(now, r.runRows+rows)
		return nil
	})
	if err != nil && ctx.Err() != nil {
		err = b.ctxErr(ctx)
	}
	return rows, halt, err
}

// missed handles a write of a batch's transaction tx, the statement q
// with args whose last is the settings number, that matched no row of
// the migration: it returns the state that forbids the commit, or, if the
// settings changed, applies them and writes again with their number, the
// batch committing as it was scanned and the next ones following them.
// Otherwise the row matched but was left unchanged (MySQL counts changed
// rows only).
func (b *Runner) missed(ctx context.Context, tx *sqlx.Tx, r *run, what, q string, args []any) (*control, error) {
	halt, changed, err := b.restate(ctx, tx, r, true)
	if err != nil || halt != nil || !changed {
		return halt, err
	}
	args[len(args)-1] = r.settings
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return nil, fmt.Errorf("backfill: %q: %s: %w", b.name, what, err)
	}
	return nil, nil
}

// restate reads the migration's state through q, locking its row if lock
// is set and q is a transaction, for a runner whose checkpoint matched no
// row: it returns the state that forbids the commit, if there is one, and
// otherwise applies the settings if they changed, and reports whether they
// did.
func (b *Runner) restate(ctx context.Context, q sqlx.QueryerContext, r *run, lock bool) (halt *control, changed bool, err error) {
	c, err := b.control(ctx, q, lock)
	if err != nil {
		return nil, false, err
	}
	if b.mustHalt(c) {
		return &c, false, nil
	}
	if c.Settings != r.settings {
		b.apply(ctx, r, c)
		return nil, true, nil
	}
	return nil, false, nil
}

// recordStart adds the start of r to the history with tx, unless it is
// there already.
func (b *Runner) recordStart(ctx context.Context, tx *sqlx.Tx, r *run) error {
	if r.started {
		return nil
	}
	v, err := b.version(ctx, tx)
	if err != nil {
		return err
	}
	if err := b.k.AddEvent(ctx, tx, meta.Event{Migration: b.name, At: r.startedAt, Actor: b.cfg.owner, Kind: "backfill",
		From: backfillPhase, To: backfillPhase, Version: v, Detail: r.startDetail}); err != nil {
		return fmt.Errorf("backfill: %q: record start: %w", b.name, err)
	}
	return nil
}

// mustHalt reports whether c forbids the runner to commit.
// A partitioned backfill's leases are those of its ranges, which the
// commits of their batches check.
func (b *Runner) mustHalt(c control) bool {
	lost := b.cfg.ranges <= 1 && (!c.LeaseOwner.Valid || c.LeaseOwner.String != b.cfg.owner)
	return c.Phase != backfillPhase || lost || c.Paused != 0 || c.Canceled != 0
}

// halted acts on the state c that stopped a commit: it returns the error
// that ends the run, or nil after waiting out a pause.
func (b *Runner) halted(ctx context.Context, r *run, c control) error {
	switch {
	case c.Phase != backfillPhase:
		return b.phaseErr(c)
	case b.cfg.ranges <= 1 && (!c.LeaseOwner.Valid || c.LeaseOwner.String != b.cfg.owner):
		return b.lostErr(c)
	case c.Canceled != 0:
		return b.canceled(ctx, r)
	case c.Paused != 0:
		return b.waitResume(ctx, r)
	}
	return nil
}

func (b *Runner) lostErr(c control) error {
	if c.LeaseOwner.Valid {
		return fmt.Errorf("%w: %q: the lease is now held by %q", ErrLeaseLost, b.name, c.LeaseOwner.String)
	}
	return fmt.Errorf("%w: %q: the lease was given back by another runner", ErrLeaseLost, b.name)
}

// waitResume waits, keeping the lease, until the backfill is resumed.
func (b *Runner) waitResume(ctx context.Context, r *run) error {
	b.k.Logger.InfoContext(ctx, "cutover: backfill paused", "migration", b.name, "owner", b.cfg.owner, "checkpoint", r.checkpoint)
	start := time.Now()
	defer func() { r.paused += time.Since(start) }()
	for {
		c, ok, err := b.poll(ctx, "paused")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		paused := c.Paused != 0
		if c.Paused = 0; b.mustHalt(c) { // stopped for another reason than the pause
			return b.halted(ctx, r, c)
		}
		if paused {
			continue
		}
		b.k.Logger.InfoContext(ctx, "cutover: backfill resumed", "migration", b.name, "owner", b.cfg.owner)
		if c.Settings != r.settings {
			b.apply(ctx, r, c)
		}
		r.recent.reset(b.k.Now(), r.runRows)
		r.next = time.Time{} // the time paused is owed to no rate limit
		return nil
	}
}

// poll waits the poll interval and reads the migration's state, for a
// runner that waits (what: "paused" or "waiting"). It returns false, after
// logging, if the read failed, and an error if ctx is done.
func (b *Runner) poll(ctx context.Context, what string) (control, bool, error) {
	if err := backoff.Sleep(ctx, b.cfg.poll); err != nil {
		return control{}, false, b.ctxErr(ctx)
	}
	c, err := b.control(ctx, b.k.DB, false)
	if err != nil {
		if ctx.Err() != nil {
			return c, false, b.ctxErr(ctx)
		}
		b.k.Logger.WarnContext(ctx, "cutover: "+what+" backfill could not read its state", "migration", b.name, "err", err)
		return c, false, nil
	}
	return c, true, nil
}

// canceled records that the runner stopped on a cancellation and gives
// back the lease.
func (b *Runner) canceled(ctx context.Context, r *run) error {
	err := b.k.InTx(ctx, func(tx *sqlx.Tx) error {
		q, args := b.releaseQuery(r)
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 || !r.started {
			return nil // the lease is gone already, or the run left no trace: nothing to record
		}
		v, err := b.version(ctx, tx)
		if err != nil {
			return err
		}
		return b.k.AddEvent(ctx, tx, meta.Event{Migration: b.name, Actor: b.cfg.owner, Kind: "backfill", From: backfillPhase, To: backfillPhase,
			Version: v, Detail: fmt.Sprintf("stopped on cancel at checkpoint %q with %d rows copied", r.checkpoint, r.rows)})
	})
	if err == nil {
		r.released = true
	}
	b.k.Logger.InfoContext(ctx, "cutover: backfill canceled", "migration", b.name, "owner", b.cfg.owner,
		"checkpoint", r.checkpoint, "rows", r.rows)
	return fmt.Errorf("%w: backfill of %q stopped at checkpoint %q with %d rows copied; lift the cancellation with backfill.ResetCancel to resume",
		ErrCanceled, b.name, r.checkpoint, r.rows)
}

// finish records that the backfill is done and gives back the lease, or
// returns the state that forbids it.
func (b *Runner) finish(ctx context.Context, r *run) (*control, error) {
	var halt *control
	err := b.retry(ctx, "finish", func() error {
		halt = nil
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			now := b.k.Now()
			var encoded any // NULL keeps the samples as they are
			if samples, added := meta.AddSample(r.samples, now, r.rows, true); added {
				encoded = meta.EncodeSamples(samples)
			}
			res, err := tx.ExecContext(ctx, b.qDone, meta.Micros(now), r.total, meta.Micros(r.startedAt), meta.Micros(now),
				encoded, b.name, b.cfg.owner, backfillPhase)
			if err != nil {
				return fmt.Errorf("backfill: %q: record done: %w", b.name, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				c, err := b.control(ctx, tx, true)
				if err != nil {
					return err
				}
				halt = &c
				return errHalt
			}
			if err := b.recordStart(ctx, tx, r); err != nil {
				return err
			}
			v, err := b.version(ctx, tx)
			if err != nil {
				return err
			}
			return b.k.AddEvent(ctx, tx, meta.Event{Migration: b.name, Actor: b.cfg.owner, Kind: "backfill", From: backfillPhase, To: backfillPhase,
				Version: v, Detail: fmt.Sprintf("done at checkpoint %q with %d rows copied", r.checkpoint, r.rows)})
		})
	})
	if errors.Is(err, errHalt) {
		return halt, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = b.ctxErr(ctx)
		}
		return nil, err
	}
	r.released, r.started = true, true
	b.gaugeTotal.Store(max(r.total, r.rows))
	b.report(r, true)
	b.k.Logger.InfoContext(ctx, "cutover: backfill done", "migration", b.name, "owner", b.cfg.owner,
		"rows", r.rows, "batches", r.batches)
	return nil, nil
}

// errHalt rolls back a transaction that found the runner must stop.
var errHalt = errors.New("backfill: halted")

// report calls the progress function.
func (b *Runner) report(r *run, done bool) {
	if b.cfg.progress == nil {
		return
	}
	p := Progress{Rows: r.rows, Total: r.total, Batches: r.batches, Checkpoint: r.checkpoint, Done: done,
		RateLimit: r.rateLimit, BatchSize: r.batchSize}
	if active := time.Since(r.start) - r.paused; active > 0 {
		p.Rate = float64(r.runRows) / active.Seconds()
	}
	if !done && p.Rate > 0 && r.total > r.rows {
		p.ETA = time.Duration(float64(r.total-r.rows) / p.Rate * float64(time.Second))
	}
	b.cfg.progress(p)
}

// heartbeat renews the lease every third of its TTL until ctx is done. If
// another runner took the lease, it cancels the run with ErrLeaseLost.
func (b *Runner) heartbeat(ctx context.Context, stop context.CancelCauseFunc, r *run) {
	t := time.NewTicker(b.cfg.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q, args := b.qRenew, []any{meta.Micros(b.k.Now().Add(b.cfg.ttl)), b.name, b.cfg.owner}
		if r.part != nil {
			q, args = b.ranges.renew, []any{args[0], b.name, r.part.no, b.cfg.owner}
		}
		res, err := b.k.DB.ExecContext(ctx, q, args...)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 1 {
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.k.Logger.WarnContext(ctx, "cutover: backfill lease renewal failed", "migration", b.name, "owner", b.cfg.owner, "err", err)
			continue
		}
		// Nothing renewed: lost, or (MySQL) renewed to the same time.
		if r.part != nil {
			if p, err := b.readPart(ctx, b.k.DB, r.part.no, false); err == nil && p.Owner.String != b.cfg.owner {
				b.k.Logger.WarnContext(ctx, "cutover: backfill range lease lost; stopping", "migration", b.name,
					"owner", b.cfg.owner, "range", r.part.no, "holder", p.Owner.String)
				stop(b.lostPartErr(r.part.no, p.Owner.String))
				return
			}
			continue
		}
		c, err := b.control(ctx, b.k.DB, false)
		if err != nil {
			continue
		}
		if !c.LeaseOwner.Valid || c.LeaseOwner.String != b.cfg.owner {
			b.k.Logger.WarnContext(ctx, "cutover: backfill lease lost; stopping", "migration", b.name,
				"owner", b.cfg.owner, "holder", c.LeaseOwner.String)
			stop(b.lostErr(c))
			return
		}
	}
}

// release gives back the lease of r, if the runner still holds it.
func (b *Runner) release(ctx context.Context, r *run) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	q, args := b.releaseQuery(r)
	if _, err := b.k.DB.ExecContext(ctx, q, args...); err != nil {
		b.k.Logger.WarnContext(ctx, "cutover: backfill lease not given back; it runs out by itself",
			"migration", b.name, "owner", b.cfg.owner, "err", err)
	}
}

// conflictRetries is the backoff between tries of a statement that lost
// a lock conflict.
var conflictRetries = backoff.Policy{Base: 20 * time.Millisecond, Max: time.Second}

// retry runs fn again while it fails on a deadlock, a serialization
// failure or a lock timeout, up to batchAttempts times.
func (b *Runner) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := int64(1); ; attempt++ {
		err := fn()
		d := b.k.Dialect
		if err == nil || attempt >= batchAttempts || ctx.Err() != nil ||
			!d.IsSerializationFailure(err) && !d.IsLockTimeout(err) {
			return err
		}
		b.k.Logger.WarnContext(ctx, "cutover: backfill statement lost a lock conflict; retrying",
			"migration", b.name, "step", what, "attempt", attempt, "err", err)
		if backoff.Sleep(ctx, conflictRetries.Wait(attempt)) != nil {
			return err
		}
	}
}

// ctxErr returns the error of a run whose context is done: the lost lease
// that stopped it, or the caller's cancellation.
func (b *Runner) ctxErr(ctx context.Context) error {
	err := context.Cause(ctx)
	if errors.Is(err, ErrLeaseLost) {
		return err
	}
	return fmt.Errorf("backfill: %q: %w", b.name, err)
}

func ratio(rows, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return min(1, float64(rows)/float64(total))
}
