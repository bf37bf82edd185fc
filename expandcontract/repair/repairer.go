package repair

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/backoff"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// scope is the instrumentation scope of the package's metrics and spans.
const scope = "github.com/cutover-go/cutover/expandcontract/repair"

// ErrPanic is wrapped by the error recorded for a repair whose
// function panicked. The panic is recovered and counts as a failed attempt.
var ErrPanic = errors.New("repair: repair function panicked")

// Span names and attribute keys of repair rounds and calls.
const (
	spanRound = "cutover.expandcontract.repair.round"
	spanCall  = "cutover.expandcontract.repair.call"

	keyDue           = attribute.Key("cutover.repair.due")            // due entries a round read
	keyClaimed       = attribute.Key("cutover.repair.claimed")        // entries claimed: by a round, or for a call
	keyRepaired      = attribute.Key("cutover.repair.repaired")       // entries marked done
	keyFailed        = attribute.Key("cutover.repair.failed")         // entries whose repair failed
	keyStuck         = attribute.Key("cutover.repair.stuck")          // of those, entries that used their last attempt
	keyRecordedAgain = attribute.Key("cutover.repair.recorded_again") // entries repaired but recorded again meanwhile
	keyAttempt       = attribute.Key("cutover.attempt")               // the attempt a call makes, from 1
)

// Defaults of a [Repairer].
const (
	DefaultBatch        = 100
	DefaultBackoff      = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultPollInterval = time.Second
	DefaultTimeout      = 30 * time.Second
	DefaultClaimTTL     = 2 * time.Minute
	DefaultRetention    = 7 * 24 * time.Hour
)

// repairPruneEvery is how often, at most, a repairer deletes the entries
// older than its retention; each time it deletes at most repairPruneMax,
// in statements of repairPruneBatch.
const (
	repairPruneEvery = time.Minute
	repairPruneBatch = 1000
	repairPruneMax   = 10 * repairPruneBatch
)

// repairLatencyBuckets are the bounds, in seconds, of the histogram of the
// time from an entry's recording to its repair: from 100 ms to a day.
var repairLatencyBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600, 24 * 3600}

// Func repairs one key of a migration: it copies the row of r.Key
// from the store that is the source of truth to r.Target, or deletes it
// from r.Target if the source no longer has it. It must be idempotent, as
// a repair can run more than once: after a crash, after a failure, or
// because the key was recorded again. It must read the source when it
// runs, not trust anything recorded, since the source may have changed
// since. For [cutover.Mismatch] it should reconcile by a version or update
// time both copies carry, as the documentation of [cutover.Repair] says.
//
// It must return when ctx is done: a repair that runs past the repairer's
// claim TTL may be started again by another repairer. It may run while the
// key is being written (a write recorded meanwhile makes the key due
// again), and, for entries of one key that a library before schema
// version 2 recorded apart and so fall in different batches, while
// another repairer repairs the same key. Where a late copy of an older row
// would matter, copy conditionally, by a version or update time both
// copies carry.
//
// For SQL rows with a version column, sqlrow.Pair.Repair is such a
// function, ready made: it copies the newer version over the older one,
// and never over a newer write.
type Func func(ctx context.Context, r cutover.Repair) error

// Option configures a [Repairer].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	batch       int
	base, max   time.Duration
	poll        time.Duration
	maxAttempts int
	timeout     time.Duration
	claimTTL    time.Duration
	retention   time.Duration
}

// WithBatch sets how many due entries [Repairer.RunOnce] reads at
// once. The default is [DefaultBatch]; n must be positive.
func WithBatch(n int) Option {
	return optionFunc(func(c *config) { c.batch = n })
}

// WithBackoff sets the wait before an entry whose repair failed is
// due again: base after the first failure, doubling with each further
// failure up to maxWait, and then drawn at random between half of that
// and all of it, so that entries that failed together are not retried
// together. The defaults are [DefaultBackoff] and
// [DefaultMaxBackoff]; base must be positive and maxWait at least
// base.
func WithBackoff(base, maxWait time.Duration) Option {
	return optionFunc(func(c *config) { c.base, c.max = base, maxWait })
}

// WithPollInterval sets how long [Repairer.Run] waits when no entry
// is due before it looks again. The default is
// [DefaultPollInterval]; d must be positive.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.poll = d })
}

// WithMaxAttempts sets how many failed attempts make an entry stuck:
// it is then no longer retried, but kept, counted by the stuck gauge and
// [Log.Stuck], until [Log.RetryStuck]. The default, 0, retries
// forever; n must not be negative.
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) { c.maxAttempts = n })
}

// WithTimeout bounds each call of the repair function. The default
// is [DefaultTimeout]; d must be positive and less than the claim
// TTL.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.timeout = d })
}

// WithClaimTTL sets how long a repairer holds the entries it is
// repairing. Another repairer takes over entries held longer, so the
// entries of a repairer that crashed are repaired after at most d. The
// default is [DefaultClaimTTL]; d must be longer than the repair
// timeout.
func WithClaimTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.claimTTL = d })
}

// WithRetention sets how long entries are kept once repaired: a repairer
// deletes those repaired longer than d ago, by the store's clock, as it
// runs (at most once a minute, and at most 10,000 at a time). The default
// is [DefaultRetention]; 0 keeps them forever, and a negative d is an
// error. Entries not repaired are never deleted.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(c *config) { c.retention = d })
}

// Repairer drains a [Log] by calling a [Func] for each key
// recorded in it. Any number of repairers, in any number of processes, may
// drain the same log at once: an entry is held by one of them while its
// repair runs (a compare-and-swap on the entry's due time), so the function
// never runs twice at once for one entry unless it overruns the claim TTL.
// Create it with [New]; it is safe for concurrent use.
//
// A Repairer reports, with the store's meter provider:
//   - cutover.expandcontract.repairs.pending and
//     cutover.expandcontract.repairs.stuck, gauges of the log's entries not
//     repaired yet and of those stuck. They report the count last taken,
//     which [Repairer.RunOnce] refreshes at most every 15 seconds of the
//     store's clock, and [Log.Pending] and [Log.Stuck] whenever
//     they run; collecting them never queries the database. Before the
//     first count they report nothing.
//   - cutover.expandcontract.repairs.done, a counter of entries by the
//     result of their repair: "repaired" or "failed".
//   - cutover.expandcontract.repairs.latency, a histogram of the seconds
//     from the first recording of each entry to its repair.
//
// Every metric carries the migration's name as cutover.migration.
//
// As it runs, at most once a minute, a Repairer deletes the entries
// repaired longer ago than its retention ([WithRetention]).
type Repairer struct {
	log *Log
	fn  Func
	config

	selectDue string
	claim     string
	markDone  string
	logs      *telemetry.Limiter
	tracer    trace.Tracer
	spanAttrs trace.SpanStartOption // the attributes its spans start with
	done      *telemetry.Counter[repairResult]
	latency   metric.Float64Histogram
	attrs     metric.MeasurementOption
	reg       metric.Registration

	// prunedAt is when the repairer last deleted the entries older than
	// its retention, in microseconds of the store's clock; 0 before.
	prunedAt atomic.Int64

	// wait waits d, or until ctx is done; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
}

// Stats says what one [Repairer.RunOnce] did.
type Stats struct {
	// Claimed counts the entries claimed. Those neither Repaired nor Failed
	// were released, when ctx was done during their repair, taken over by
	// another repairer after the claim ran out, or recorded again.
	Claimed  int
	Repaired int // entries marked done
	Failed   int // entries whose repair failed and that will be retried, or are stuck
	Stuck    int // of Failed, entries that used their last attempt
	// RecordedAgain counts the entries whose repair succeeded but that were
	// recorded again while it ran: they are due again at once, not done.
	RecordedAgain int
}

// New returns a repairer that drains l with fn; a nil l, fn or option, or a
// bad option value, is an error wrapping [ErrInvalidInput]. Call
// [Repairer.Close] when done with it, to stop its gauges.
func New(l *Log, fn Func, opts ...Option) (*Repairer, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: nil repair log", ErrInvalidInput)
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: nil repair function", ErrInvalidInput)
	}
	c := config{batch: DefaultBatch, base: DefaultBackoff, max: DefaultMaxBackoff,
		poll: DefaultPollInterval, timeout: DefaultTimeout, claimTTL: DefaultClaimTTL, retention: DefaultRetention}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d is nil", ErrInvalidInput, i)
		}
		o.apply(&c)
	}
	switch {
	case c.batch < 1:
		return nil, fmt.Errorf("%w: repair batch must be positive, got %d", ErrInvalidInput, c.batch)
	case c.base <= 0 || c.max < c.base:
		return nil, fmt.Errorf("%w: repair backoff must be positive with max >= base, got base %v and max %v",
			ErrInvalidInput, c.base, c.max)
	case c.poll <= 0:
		return nil, fmt.Errorf("%w: repair poll interval must be positive, got %v", ErrInvalidInput, c.poll)
	case c.maxAttempts < 0:
		return nil, fmt.Errorf("%w: repair max attempts must not be negative, got %d", ErrInvalidInput, c.maxAttempts)
	case c.timeout <= 0:
		return nil, fmt.Errorf("%w: repair timeout must be positive, got %v", ErrInvalidInput, c.timeout)
	case c.claimTTL <= c.timeout:
		return nil, fmt.Errorf("%w: repair claim TTL %v must be longer than the repair timeout %v",
			ErrInvalidInput, c.claimTTL, c.timeout)
	case c.retention < 0:
		return nil, fmt.Errorf("%w: repair retention must be zero (keep forever) or positive, got %v", ErrInvalidInput, c.retention)
	}
	s := l.k
	r := &Repairer{
		log: l, fn: fn, config: c,
		selectDue: s.Q(`SELECT ` + repairColumns + ` FROM ` + s.T.Repairs +
			` WHERE migration = ? AND done_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ` + fmt.Sprint(c.batch)),
		claim: s.Q(`UPDATE ` + s.T.Repairs + ` SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ? AND done_at IS NULL`),
		markDone: s.Q(`UPDATE ` + s.T.Repairs + ` SET done_at = ?, open_entry = NULL
			WHERE id = ? AND records = ? AND done_at IS NULL`),
		logs:      telemetry.NewLimiter(time.Minute, 10, s.Now),
		tracer:    s.Tracer(scope),
		spanAttrs: trace.WithAttributes(telemetry.KeyMigration.String(l.name)),
		attrs:     metric.WithAttributeSet(attribute.NewSet(telemetry.KeyMigration.String(l.name))),
		wait:      backoff.Sleep,
	}
	meter := s.Meter(scope)
	base := []attribute.KeyValue{telemetry.KeyMigration.String(l.name)}
	var err error
	if r.done, err = telemetry.NewCounter(meter, "cutover.expandcontract.repairs.done",
		"Repair-log entries whose repair was attempted, by result.", "{entry}", base, telemetry.KeyReason, numRepairResults); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	if r.latency, err = meter.Float64Histogram("cutover.expandcontract.repairs.latency",
		metric.WithDescription("Time from the recording of a repair-log entry to its repair."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(repairLatencyBuckets...)); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	pending, err := meter.Int64ObservableGauge("cutover.expandcontract.repairs.pending",
		metric.WithDescription("Repair-log entries not repaired yet, as last counted."), metric.WithUnit("{entry}"))
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	stuck, err := meter.Int64ObservableGauge("cutover.expandcontract.repairs.stuck",
		metric.WithDescription("Repair-log entries that used up their attempts and wait to be retried, as last counted."),
		metric.WithUnit("{entry}"))
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	obs := metric.WithAttributeSet(attribute.NewSet(telemetry.KeyMigration.String(l.name)))
	if r.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if c := l.counts.Load(); c != nil {
			o.ObserveInt64(pending, c.pending, obs)
			o.ObserveInt64(stuck, c.stuck, obs)
		}
		return nil
	}, pending, stuck); err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	return r, nil
}

// Close stops the repairer's gauges. It does not wait for a running
// [Repairer.RunOnce] or [Repairer.Run]; cancel their context for that.
func (r *Repairer) Close() error {
	if err := r.reg.Unregister(); err != nil {
		return fmt.Errorf("repair: %w", err)
	}
	return nil
}

// Run repairs due entries until ctx is done, and then returns the
// context's cause. It calls [Repairer.RunOnce] again at once while batches
// come back full, and otherwise after the poll interval. Errors of a round,
// such as an unreachable database, are logged (rate limited) and the round
// is tried again after the poll interval.
func (r *Repairer) Run(ctx context.Context) error {
	for {
		stats, full, err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err != nil {
			if ok, suppressed := r.logs.Allow(); ok {
				r.log.k.Logger.ErrorContext(ctx, "cutover: repair round failed; retrying after the poll interval",
					"migration", r.log.name, "claimed", stats.Claimed, "repaired", stats.Repaired,
					"err", err, "suppressed", suppressed)
			}
		} else if full {
			continue
		}
		if err := r.wait(ctx, r.poll); err != nil {
			return err
		}
	}
}

// RunOnce repairs one batch of due entries, oldest first: entries not
// repaired whose due time has come. Entries of the same operation, key and
// target are repaired by one call of the repair function, with the fields
// of the latest of them. Each call holds its entries for the claim TTL
// first, so that no other repairer calls the function for them meanwhile;
// an entry another repairer holds is left to it.
//
// When the function succeeds, its entries are marked done, but for one
// that a record of its key joined while the function ran: that one is due
// again at once (counted in Stats.RecordedAgain). When it fails or panics,
// each of its entries is counted as failed once more, keeps the error, and
// is due again after the backoff; one that has used its last attempt (see
// [WithMaxAttempts]) becomes stuck instead. Nothing is marked done
// otherwise, and nothing deleted but entries repaired longer ago than the
// retention. If ctx is done while the function runs, its entries are
// released as they were, not counted as failed, and RunOnce returns the
// context's cause.
//
// With a tracer provider ([expandcontract.WithTracerProvider]), a round
// that finds due entries is a span named
// cutover.expandcontract.repair.round, with a child per call of the
// function; a round that finds none makes no span. See the package
// documentation.
func (r *Repairer) RunOnce(ctx context.Context) (Stats, error) {
	stats, _, err := r.runOnce(ctx)
	return stats, err
}

// repairGroup is the entries of a batch that one call repairs.
type repairGroup struct {
	rows    []repairRow // by id
	claimed []repairRow // the rows this repairer holds
}

type repairGroupKey struct {
	op, key string
	target  int64
}

// runOnce is RunOnce, also reporting whether the batch read was full.
func (r *Repairer) runOnce(ctx context.Context) (stats Stats, full bool, err error) {
	l, s := r.log, r.log.k
	defer func() {
		r.prune(ctx)
		if c := l.counts.Load(); c == nil || s.Now().Sub(c.at) >= repairCountEvery || c.at.After(s.Now()) {
			cctx, cancel := repairFinishContext(ctx)
			defer cancel()
			if _, cerr := l.count(cctx); cerr != nil {
				s.Logger.DebugContext(ctx, "cutover: counting pending repairs failed", "migration", l.name, "err", cerr)
			}
		}
	}()
	start := time.Now()
	var rows []repairRow
	if err := s.DB.SelectContext(ctx, &rows, r.selectDue, l.name, meta.Micros(s.Now())); err != nil {
		return stats, false, fmt.Errorf("repair: read due repairs of %q: %w", l.name, err)
	}
	if len(rows) == 0 {
		return stats, false, nil
	}
	ctx, span := r.tracer.Start(ctx, spanRound, r.spanAttrs, trace.WithTimestamp(start))
	defer func() {
		telemetry.EndSpan(span, callOutcome(ctx, ctx, err).String(), err, keyDue.Int(len(rows)),
			keyClaimed.Int(stats.Claimed), keyRepaired.Int(stats.Repaired), keyFailed.Int(stats.Failed),
			keyStuck.Int(stats.Stuck), keyRecordedAgain.Int(stats.RecordedAgain))
	}()
	full = len(rows) >= r.batch
	var groups []*repairGroup
	index := make(map[repairGroupKey]*repairGroup, len(rows))
	for _, row := range rows {
		k := repairGroupKey{row.Op, row.Key, row.Target}
		g := index[k]
		if g == nil {
			g = &repairGroup{}
			index[k] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, row)
	}
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return stats, full, context.Cause(ctx)
		}
		if err := r.repairOne(ctx, g, &stats); err != nil {
			return stats, full, err
		}
	}
	return stats, full, nil
}

// prune deletes the entries repaired longer ago than the retention, unless
// it did within the last repairPruneEvery (or the retention is 0).
func (r *Repairer) prune(ctx context.Context) {
	l, s := r.log, r.log.k
	now := s.Now()
	at, last := meta.Micros(now), r.prunedAt.Load()
	due := last == 0 || at-last >= repairPruneEvery.Microseconds() || at < last // or the clock went back
	if r.retention == 0 || ctx.Err() != nil || !due || !r.prunedAt.CompareAndSwap(last, at) {
		return
	}
	n, err := l.deleteDone(ctx, now.Add(-r.retention), repairPruneBatch, repairPruneMax)
	switch {
	case err != nil:
		s.Logger.WarnContext(ctx, "cutover: deleting repaired entries past their retention failed; they are tried again later",
			"migration", l.name, "deleted", n, "err", err)
	case n >= repairPruneMax:
		r.prunedAt.Store(0) // more to delete: again next round
	}
}

// repairOne claims the rows of g, calls the function for them and records
// the result.
func (r *Repairer) repairOne(ctx context.Context, g *repairGroup, stats *Stats) error {
	l, s := r.log, r.log.k
	start := s.Now()
	claimAt := meta.Micros(start.Add(r.claimTTL))
	for _, row := range g.rows {
		if err := ctx.Err(); err != nil {
			if len(g.claimed) > 0 {
				err = errors.Join(err, r.release(ctx, g, claimAt))
			}
			return fmt.Errorf("repair: claim repair %d of %q: %w", row.ID, l.name, err)
		}
		// A claim interrupted by the caller's cancellation could land
		// without our knowing, and hold the entry for the claim TTL: each
		// claim runs to its end, and is released if the caller has gone.
		cctx, cancel := repairFinishContext(ctx)
		res, err := l.exec(cctx, r.claim, claimAt, row.ID, row.NextAttemptAt)
		cancel()
		if err != nil {
			if len(g.claimed) > 0 {
				err = errors.Join(err, r.release(ctx, g, claimAt))
			}
			return fmt.Errorf("repair: claim repair %d of %q: %w", row.ID, l.name, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			g.claimed = append(g.claimed, row)
		}
	}
	if len(g.claimed) == 0 {
		return nil // another repairer has them
	}
	stats.Claimed += len(g.claimed)
	latest := slices.MaxFunc(g.claimed, func(a, b repairRow) int {
		return cmp.Or(cmp.Compare(a.RecordedAt, b.RecordedAt), cmp.Compare(a.ID, b.ID))
	})
	rep, err := latest.repair()
	if err != nil {
		// A row no repair can read: keep it, stuck, for a person to look at.
		err = fmt.Errorf("%w: repair %d: %w", expandcontract.ErrCorrupt, latest.ID, err)
		return r.failed(ctx, g, claimAt, err, true, stats)
	}
	fctx, cancel := context.WithTimeout(ctx, r.timeout)
	fctx, span := telemetry.Child(fctx, r.tracer, spanCall, r.spanAttrs)
	err = r.call(fctx, rep)
	if span.IsRecording() {
		attempt := slices.MaxFunc(g.claimed, func(a, b repairRow) int { return cmp.Compare(a.Attempts, b.Attempts) }).Attempts + 1
		telemetry.EndSpan(span, callOutcome(ctx, fctx, err).String(), err, telemetry.KeyOperation.String(rep.Op),
			telemetry.KeyStore.String(rep.Target.String()), telemetry.KeyReason.String(string(rep.Reason)),
			keyClaimed.Int(len(g.claimed)), keyAttempt.Int64(attempt))
	}
	cancel()
	switch {
	case err == nil:
		return r.repaired(ctx, g, claimAt, stats)
	case ctx.Err() != nil:
		if rerr := r.release(ctx, g, claimAt); rerr != nil {
			return errors.Join(context.Cause(ctx), rerr)
		}
		return context.Cause(ctx)
	}
	return r.failed(ctx, g, claimAt, err, false, stats)
}

// callOutcome classifies err, the error of a call of the repair function
// on fctx (or of a round, with fctx ctx) for the caller's ctx: ok, panic,
// canceled (ctx is done), timeout (the repair timeout ran out) or error.
func callOutcome(ctx, fctx context.Context, err error) telemetry.Outcome {
	switch {
	case err == nil:
		return telemetry.OK
	case errors.Is(err, ErrPanic):
		return telemetry.Panic
	case ctx.Err() != nil:
		return telemetry.Canceled
	case fctx.Err() != nil:
		return telemetry.Timeout
	}
	return telemetry.Error
}

// call calls the repair function, turning a panic into an error.
func (r *Repairer) call(ctx context.Context, rep cutover.Repair) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, p)
			r.log.k.Logger.ErrorContext(ctx, "cutover: repair function panicked; counted as a failed attempt",
				"migration", r.log.name, "op", rep.Op, "key", rep.Key, "target", rep.Target.String(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	return r.fn(ctx, rep)
}

// repairFinishContext returns a context for recording the result of a
// repair that already ran, which the caller's cancellation must not lose.
func repairFinishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// repairIDs returns the ids of rows and placeholders for them.
func repairIDs(rows []repairRow) (args []any, marks string) {
	args = make([]any, len(rows))
	for i, row := range rows {
		args[i] = row.ID
	}
	return args, strings.TrimSuffix(strings.Repeat("?, ", len(rows)), ", ")
}

// repaired marks the claimed rows of g done, but for the key's pending
// entry that records joined while the repair ran (claimAt shows it still
// held): that one is due again at once.
func (r *Repairer) repaired(ctx context.Context, g *repairGroup, claimAt int64, stats *Stats) error {
	l, s := r.log, r.log.k
	fctx, cancel := repairFinishContext(ctx)
	defer cancel()
	now := s.Now()
	var closed []repairRow // entries no record joins: done whoever holds them now
	var open *repairRow    // the key's pending entry, which records join
	for _, row := range g.claimed {
		if row.Open.Valid {
			open = &row
		} else {
			closed = append(closed, row)
		}
	}
	var done []repairRow
	if len(closed) > 0 {
		ids, marks := repairIDs(closed)
		_, err := l.exec(fctx, s.Q(`UPDATE `+s.T.Repairs+` SET done_at = ? WHERE id IN (`+marks+
			`) AND done_at IS NULL`), append([]any{meta.Micros(now)}, ids...)...)
		if err != nil {
			return fmt.Errorf("repair: mark repairs of %q done (they will be repaired again): %w", l.name, err)
		}
		done = closed
	}
	if open != nil {
		// Done, and no longer the one records join, only if no record
		// joined it since it was read: whoever holds it now, the repair
		// succeeded after those records.
		res, err := l.exec(fctx, r.markDone, meta.Micros(now), open.ID, open.Records)
		if err != nil {
			return fmt.Errorf("repair: mark repair %d of %q done (it will be repaired again): %w", open.ID, l.name, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			done = append(done, *open)
		} else {
			res, err := l.exec(fctx, r.claim, meta.Micros(now), open.ID, claimAt)
			if err != nil {
				return fmt.Errorf("repair: release repair %d of %q (due again after the claim TTL): %w", open.ID, l.name, err)
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				stats.RecordedAgain++
			}
		}
	}
	for _, row := range done {
		r.latency.Record(ctx, max(0, now.Sub(time.UnixMicro(row.CreatedAt)).Seconds()), r.attrs)
		r.done.Add(ctx, repaired)
	}
	stats.Repaired += len(done)
	return nil
}

// failed records the failure cause of the repair of g's claimed rows:
// another attempt after the backoff, or stuck when the attempts are used
// up or stuck is true.
func (r *Repairer) failed(ctx context.Context, g *repairGroup, claimAt int64, cause error, stuck bool, stats *Stats) error {
	l, s := r.log, r.log.k
	fctx, cancel := repairFinishContext(ctx)
	defer cancel()
	attempts := slices.MaxFunc(g.claimed, func(a, b repairRow) int { return cmp.Compare(a.Attempts, b.Attempts) }).Attempts + 1
	stuck = stuck || r.maxAttempts > 0 && attempts >= int64(r.maxAttempts)
	now := s.Now()
	next := int64(repairStuckAt)
	if !stuck {
		next = meta.Micros(now.Add(backoff.Policy{Base: r.base, Max: r.max}.Wait(attempts)))
	}
	ids, marks := repairIDs(g.claimed)
	// Only while this repairer still holds the rows: one that took them
	// over after the claim ran out now decides.
	res, err := l.exec(fctx, s.Q(`UPDATE `+s.T.Repairs+
		` SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id IN (`+marks+
		`) AND next_attempt_at = ? AND done_at IS NULL`),
		append(append([]any{repairCleanText(cause.Error()), next}, ids...), claimAt)...)
	if err != nil {
		return fmt.Errorf("repair: record failed repairs of %q (they will be tried again): %w", l.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		n = int64(len(g.claimed))
	}
	for range n {
		r.done.Add(ctx, repairFailed)
	}
	stats.Failed += int(n)
	rep := g.claimed[len(g.claimed)-1]
	if stuck {
		stats.Stuck += int(n)
		r.log.k.Logger.ErrorContext(ctx, "cutover: repair gave up; entries kept as stuck until RetryStuck",
			"migration", l.name, "op", rep.Op, "key", rep.Key, "target", repairSideName(rep.Target),
			"attempts", attempts, "entries", n, "err", cause)
	} else if ok, suppressed := r.logs.Allow(); ok {
		r.log.k.Logger.WarnContext(ctx, "cutover: repair failed; will retry",
			"migration", l.name, "op", rep.Op, "key", rep.Key, "target", repairSideName(rep.Target),
			"attempts", attempts, "next", time.UnixMicro(next).UTC(), "err", cause, "suppressed", suppressed)
	}
	return nil
}

// release gives back the claimed rows of g, due as they were before.
func (r *Repairer) release(ctx context.Context, g *repairGroup, claimAt int64) error {
	fctx, cancel := repairFinishContext(ctx)
	defer cancel()
	var errs []error
	for _, row := range g.claimed {
		_, err := r.log.exec(fctx, r.claim, row.NextAttemptAt, row.ID, claimAt)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("repair: release repairs of %q (they are due again after the claim TTL): %w", r.log.name, err)
	}
	return nil
}

// repairSideName names a stored target for logs.
func repairSideName(t int64) string { return cutover.Side(t).String() }

// repairResult is how a repair attempt ended, the reason of the
// repairs.done counter.
type repairResult uint8

const (
	repaired repairResult = iota
	repairFailed
	numRepairResults
)

func (r repairResult) String() string { return [numRepairResults]string{"repaired", "failed"}[r] }
