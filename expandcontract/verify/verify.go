package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// ErrInvalidInput is wrapped by the errors of [New] for bad input.
var ErrInvalidInput = errors.New("verify: invalid input")

// The differences a verification finds. A [cutover.Repair] recorded by
// [Verifier.Run] carries one of them as its Err.
var (
	ErrMissingInNew = errors.New("verify: key missing in the new store")     // in the old store only
	ErrExtraInNew   = errors.New("verify: key in the new store only")        // in the new store only
	ErrValueDiffers = errors.New("verify: value differs between the stores") // in both, with different values
)

// ErrDuplicateKey is wrapped by the error of a verification that finds a
// key held by more than one row of a side. Rows are compared by key, so a
// key that is not unique leaves nothing to compare it with: the
// verification fails, naming the key and the side, and is stored as not
// clean, so that the migration cannot move to switchreads on it.
var ErrDuplicateKey = errors.New("verify: key not unique")

// Op is the operation name of the repairs [Verifier.Run] records.
const Op = "verify"

// DefaultChunkSize is the number of rows of a key range that
// [Verifier.Run] checksums as one, unless [WithChunkSize] says otherwise.
const DefaultChunkSize = 10_000

// Option configures a [Verifier].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	chunk       int
	maxKeys     int
	concurrency int
	repairs     cutover.RepairLog
	repairsSet  bool
	recheck     time.Duration
	owner       string
	ownerSet    bool
	progress    time.Duration
	resume      bool
}

// WithChunkSize sets how many rows of a side make one key range, the unit
// that is checksummed and, when its checksums differ, read row by row. It
// must be positive; the default is [DefaultChunkSize]. Each range
// costs a few queries whatever its size, so small ranges spend most of the
// time on round trips; a large range that differs costs more to read, but
// reading 10,000 rows from each side takes milliseconds.
func WithChunkSize(n int) Option {
	return optionFunc(func(c *config) { c.chunk = n })
}

// WithMaxReportedKeys caps how many differing keys the result and the
// stored verification list, the first in key order. Every differing key is
// recorded in the repair log all the same. The default is 100; 0 lists none.
func WithMaxReportedKeys(n int) Option {
	return optionFunc(func(c *config) { c.maxKeys = n })
}

// WithRepairLog records the differing keys in l rather than in the
// migration's own repair log in the store (see [repair.NewLog]). l must
// not be nil.
func WithRepairLog(l cutover.RepairLog) Option {
	return optionFunc(func(c *config) { c.repairs, c.repairsSet = l, true })
}

// WithConcurrency sets how many key ranges are checksummed at once. Each
// uses one connection of each side's database at a time, and the walk over
// range boundaries one more. The default is 2.
func WithConcurrency(n int) Option {
	return optionFunc(func(c *config) { c.concurrency = n })
}

// WithRecheck reads every key range that differs a second time, after
// delay, and counts only the keys that differ both times. While dual
// writes run, a write can reach one store just before a range is read and
// the other just after; a recheck keeps such writes in flight from failing
// the verification. By default there is no recheck.
func WithRecheck(delay time.Duration) Option {
	return optionFunc(func(c *config) { c.recheck = delay })
}

// Result is the outcome of [Verifier.Run].
type Result struct {
	Digest      Digest        // the digest the checksums used
	Rows        int64         // rows of the old side compared
	NewRows     int64         // rows of the new side compared
	Chunks      int64         // key ranges checksummed
	Drilled     int64         // key ranges whose checksums differed, read row by row
	Differences int64         // differing keys: Missing + Extra + Changed
	Missing     int64         // keys in the old store only
	Extra       int64         // keys in the new store only
	Changed     int64         // keys whose values differ
	Keys        []string      // the first differing keys in key order, at most WithMaxReportedKeys
	Duplicate   bool          // a side holds a key in more than one row: Run failed with ErrDuplicateKey
	Started     time.Time     // when the verification started, by the store's clock
	Duration    time.Duration // how long it took
}

// Clean reports whether the verification found no difference and no
// duplicated key.
func (r Result) Clean() bool { return r.Differences == 0 && !r.Duplicate }

// summary is the detail stored with the verification.
func (r Result) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digest=%s chunks=%d new_rows=%d missing=%d extra=%d changed=%d duration=%s",
		r.Digest, r.Chunks, r.NewRows, r.Missing, r.Extra, r.Changed, r.Duration.Round(time.Millisecond))
	if len(r.Keys) > 0 {
		b.WriteString(" keys:")
		for _, k := range r.Keys {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(k))
		}
		if n := r.Differences - int64(len(r.Keys)); n > 0 {
			fmt.Fprintf(&b, " and %d more", n)
		}
	}
	return b.String()
}

// New returns a verifier that compares the rows of old and new, the two
// sides of the migration m. It checks its arguments and touches no
// database; bad input, such as a nil migration, row source or option, is
// an error wrapping [ErrInvalidInput].
//
// [Verifier.Run] walks the key space in ranges of the chunk size (see
// [WithChunkSize]), cut by the old side's keys and, past its last key, by
// the new side's, so that rows found only in the new store are compared
// too. For each range it compares the two sides' checksums; only where they
// differ does it read the range's rows from both sides and name the keys
// that differ: missing in the new store, extra in it, or with another
// value. A NULL value differs from the empty text. Text keys are cut into
// ranges and compared in byte order on both sides (see [SQLRows]), so that
// two stores of different collations cut the same ranges. A key held by
// more than one row of a side fails the verification with an error
// wrapping [ErrDuplicateKey]; that verification is stored as not clean.
//
// Every differing key is recorded in the migration's repair log (see
// [repair.NewLog], and [WithRepairLog] for another one) as a
// [cutover.Repair] with Op [Op], Target [cutover.New] (the old store
// is the source of truth until reads move), Stage the lowest stage the
// migration's phase allows, Reason [cutover.Unverified], and Err one of
// [ErrMissingInNew], [ErrExtraInNew] and [ErrValueDiffers]. A failure to
// record ends the verification with an error.
//
// While it runs, a verification records its progress in the migration's
// row: when it started, who runs it (see [WithOwner]), the rows compared
// so far and, as the rows it expects to compare, the backfill's total;
// when it starts, every [WithProgressInterval] and when it ends, however
// it ends, which clears its mark. [expandcontract.Migration.Status] shows
// it as Verifying.
//
// The result is stored with the migration (see
// [expandcontract.Migration.RecordVerification]) as of the moment the
// verification started, by the store's clock: a clean one that started
// after the backfill finished, and after the migration last moved into
// backfill, lets the migration move to switchreads.
//
// The checksums use the fastest digest both sides compute (see [Digest]).
// A verification reads while the application writes, without locking: a
// range's sides are read one after the other, so a write in flight between
// the two reads shows as a difference unless [WithRecheck] reads it again.
func New(m *expandcontract.Migration, old, new RowSource, opts ...Option) (*Verifier, error) {
	h := meta.HandleOf(m)
	if h == nil {
		return nil, fmt.Errorf("%w: nil migration", ErrInvalidInput)
	}
	name := h.Name
	c := config{chunk: DefaultChunkSize, maxKeys: 100, concurrency: 2, progress: DefaultProgressInterval}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: verify %q: option %d is nil", ErrInvalidInput, name, i)
		}
		o.apply(&c)
	}
	switch {
	case c.chunk < 1:
		return nil, fmt.Errorf("%w: verify %q: chunk size must be positive, got %d", ErrInvalidInput, name, c.chunk)
	case c.maxKeys < 0:
		return nil, fmt.Errorf("%w: verify %q: max reported keys must not be negative, got %d", ErrInvalidInput, name, c.maxKeys)
	case c.concurrency < 1:
		return nil, fmt.Errorf("%w: verify %q: concurrency must be positive, got %d", ErrInvalidInput, name, c.concurrency)
	case c.recheck < 0:
		return nil, fmt.Errorf("%w: verify %q: negative recheck delay %v", ErrInvalidInput, name, c.recheck)
	case c.repairsSet && isNilLog(c.repairs):
		return nil, fmt.Errorf("%w: verify %q: nil repair log", ErrInvalidInput, name)
	case c.progress <= 0 || c.progress > MaxProgressInterval:
		return nil, fmt.Errorf("%w: verify %q: progress interval must be positive and at most %v, got %v",
			ErrInvalidInput, name, MaxProgressInterval, c.progress)
	}
	if c.ownerSet {
		if err := meta.ValidName("owner", c.owner); err != nil {
			return nil, fmt.Errorf("%w: verify %q: %w", ErrInvalidInput, name, err)
		}
	} else {
		c.owner = defaultOwner()
	}
	for _, side := range []struct {
		name string
		src  RowSource
	}{{"old", old}, {"new", new}} {
		if isNil(side.src) {
			return nil, fmt.Errorf("%w: verify %q: nil %s row source", ErrInvalidInput, name, side.name)
		}
		if v, ok := side.src.(interface{ validate() error }); ok {
			if err := v.validate(); err != nil {
				return nil, fmt.Errorf("verify: %q: %s side: %w", name, side.name, err)
			}
		}
	}
	d, err := commonDigest(old.Digests(), new.Digests())
	if err != nil {
		return nil, fmt.Errorf("%w: verify %q: %w", ErrInvalidInput, name, err)
	}
	if c.repairs == nil {
		l, err := repair.NewLog(m)
		if err != nil {
			return nil, fmt.Errorf("verify: %q: %w", name, err)
		}
		c.repairs = l
	}
	v := &Verifier{m: m, k: h.Store, name: name, c: c, old: old, new: new, pair: newSQLPair(old, new), d: d}
	if err := v.instruments(); err != nil {
		return nil, fmt.Errorf("verify: %q: %w", name, err)
	}
	return v, nil
}

// Verifier compares the two sides of one migration. Create it with [New]
// and run it with [Verifier.Run], as often as needed; the zero value is not
// usable. It is safe for concurrent use, though two runs at once only
// repeat each other's work.
type Verifier struct {
	m        *expandcontract.Migration
	k        *meta.Store
	name     string
	c        config
	old, new RowSource
	pair     *sqlPair // set when old and new are two columns of one table
	d        Digest

	rows     metric.Int64Counter
	diffs    metric.Int64Counter
	duration metric.Float64Histogram
	attrs    metric.MeasurementOption

	tracer    trace.Tracer
	spanAttrs trace.SpanStartOption // the attributes its spans start with
}

// scope is the instrumentation scope of the package's metrics and spans.
const scope = "github.com/cutover-go/cutover/expandcontract/verify"

// Span names and attribute keys of verifications.
const (
	spanRun   = "cutover.expandcontract.verify.run"
	spanRange = "cutover.expandcontract.verify.range"

	keyNewRows     = attribute.Key("cutover.verify.new_rows")    // rows of the new side compared
	keyDifferences = attribute.Key("cutover.verify.differences") // keys found to differ
	keyRanges      = attribute.Key("cutover.verify.ranges")      // key ranges checksummed
	keyDrilled     = attribute.Key("cutover.verify.drilled")     // ranges read row by row: for a range, 0 or 1
	keyClean       = attribute.Key("cutover.verify.clean")       // the result is clean
	keyRange       = attribute.Key("cutover.verify.range")       // a range's number, from 0 in key order
)

func (v *Verifier) instruments() error {
	meter := v.k.Meter(scope)
	var err error
	if v.rows, err = meter.Int64Counter("cutover.expandcontract.verify.rows",
		metric.WithDescription("Rows of the old store compared by verifications."), metric.WithUnit("{row}")); err != nil {
		return err
	}
	if v.diffs, err = meter.Int64Counter("cutover.expandcontract.verify.differences",
		metric.WithDescription("Keys that verifications found to differ between the stores."), metric.WithUnit("{key}")); err != nil {
		return err
	}
	if v.duration, err = meter.Float64Histogram("cutover.expandcontract.verify.duration",
		metric.WithDescription("Duration of verifications."), metric.WithUnit("s")); err != nil {
		return err
	}
	v.attrs = metric.WithAttributeSet(attribute.NewSet(telemetry.KeyMigration.String(v.name)))
	v.tracer = v.k.Tracer(scope)
	v.spanAttrs = trace.WithAttributes(telemetry.KeyMigration.String(v.name))
	return nil
}

// Run compares the two sides, stores the result with the migration, and
// returns it; see [New] for what it compares and records. If the
// verification fails, or ctx ends, Run returns the error and the partial
// result, and stores nothing.
//
// With a tracer provider ([expandcontract.WithTracerProvider]), a run is a
// span named cutover.expandcontract.verify.run, with a child per key range
// when it is recorded; see the package documentation.
func (v *Verifier) Run(ctx context.Context) (res Result, err error) {
	ctx, span := v.tracer.Start(ctx, spanRun, v.spanAttrs)
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		telemetry.EndSpan(span, outcome, err, telemetry.KeyRows.Int64(res.Rows), keyNewRows.Int64(res.NewRows),
			keyDifferences.Int64(res.Differences), keyRanges.Int64(res.Chunks), keyDrilled.Int64(res.Drilled),
			keyClean.Bool(err == nil && res.Clean()))
	}()
	return v.run(ctx)
}

// run is Run, in the span of ctx.
func (v *Verifier) run(ctx context.Context) (Result, error) {
	st, err := v.m.State(ctx)
	if err != nil {
		return Result{}, err
	}
	stage, _ := st.Phase.Stages()
	k, name := v.k, v.name
	ses := &session{Verifier: v, stage: stage, res: Result{Digest: v.d, Started: k.Now()}}
	start := time.Now()
	var q shared
	if v.c.resume {
		q = v.sharedQueries()
		if ses.res.Started, err = v.plan(ctx, q); err != nil {
			return Result{}, fmt.Errorf("verify: %q: %w", name, err)
		}
	}
	end := v.track(ctx, ses, st.Backfill.Total)
	last := true // this run stores the result
	if v.c.resume {
		last, err = ses.runShared(ctx, q)
	} else {
		err = ses.run(ctx)
	}
	end()
	res := ses.result()
	res.Duration = time.Since(start)
	if err != nil {
		k.Logger.WarnContext(ctx, "cutover: verification failed", "migration", name, "err", err,
			"chunks", res.Chunks, "differences", res.Differences)
		err = fmt.Errorf("verify: %q: %w", name, err)
		if !errors.Is(err, ErrDuplicateKey) {
			return res, err
		}
		// A finding about the data, unlike a failure to read it: stored,
		// so that an older clean verification no longer counts.
		res.Duplicate = true
		rerr := v.m.RecordVerification(context.WithoutCancel(ctx), expandcontract.Verification{At: res.Started,
			Rows: res.Rows, Differences: res.Differences, Detail: err.Error() + "; " + res.summary()})
		if rerr != nil {
			return res, errors.Join(err, rerr)
		}
		return res, err
	}
	if !last {
		k.Logger.InfoContext(ctx, "cutover: verification finished; another run stores it", "migration", name,
			"clean", res.Clean(), "rows", res.Rows, "differences", res.Differences)
		return res, nil
	}
	err = v.m.RecordVerification(ctx, expandcontract.Verification{At: res.Started, Clean: res.Clean(),
		Rows: res.Rows, Differences: res.Differences, Detail: res.summary()})
	if err != nil {
		return res, err
	}
	v.rows.Add(ctx, res.Rows, v.attrs)
	v.diffs.Add(ctx, res.Differences, v.attrs)
	v.duration.Record(ctx, res.Duration.Seconds(), v.attrs)
	k.Logger.InfoContext(ctx, "cutover: verification finished", "migration", name, "clean", res.Clean(),
		"rows", res.Rows, "new_rows", res.NewRows, "differences", res.Differences, "chunks", res.Chunks,
		"drilled", res.Drilled, "digest", v.d.String(), "duration", res.Duration)
	return res, nil
}

// isNilLog reports whether l is nil or a nil pointer in an interface.
func isNilLog(l cutover.RepairLog) bool {
	if l == nil {
		return true
	}
	rv := reflect.ValueOf(l)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// isNil reports whether src is nil or a nil pointer in an interface.
func isNil(src RowSource) bool {
	if src == nil {
		return true
	}
	if s, ok := src.(*SQLRows); ok && s == nil {
		return true
	}
	return false
}

// commonDigest returns the first digest of old's that new computes too.
func commonDigest(old, new []Digest) (Digest, error) {
	for _, d := range old {
		if slices.Contains(new, d) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("the sides share no digest (old %v, new %v)", old, new)
}

// diff is one differing key.
type diff struct {
	key  any
	kind error // ErrMissingInNew, ErrExtraInNew or ErrValueDiffers
}

// session is one run of a verifier.
type session struct {
	*Verifier
	stage cutover.Stage

	mu     sync.Mutex
	res    Result
	sample map[int64][]string // differing keys by range number, the lowest ranges only
	held   int                // keys in sample
}

// job is one key range to compare, numbered in key order.
type job struct {
	seq int64
	r   expandcontract.KeyRange
}

// run walks the key ranges and compares them with c.concurrency workers.
func (v *session) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, 2*v.c.concurrency)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		if err := v.walk(ctx, jobs); err != nil {
			cancel(err)
		}
	})
	for range v.c.concurrency {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := v.compare(ctx, j); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// walk sends the key ranges to jobs: ranges of c.chunk rows of the old
// side, then of the new side past the old side's last key, then the rest.
func (v *session) walk(ctx context.Context, jobs chan<- job) error {
	src, side := v.old, "old"
	var after any
	for seq := int64(0); ; seq++ {
		var (
			to  any
			ok  bool
			err error
		)
		for {
			to, ok, err = src.Boundary(ctx, after, v.c.chunk)
			if err != nil {
				return fmt.Errorf("%s side: %w", side, err)
			}
			if ok || side == "new" {
				break
			}
			src, side = v.new, "new" // the old side has no full range left
		}
		if ok && (to == nil || to == after) {
			return fmt.Errorf("%s side: boundary %v after %v does not advance", side, to, after)
		}
		select {
		case jobs <- job{seq: seq, r: expandcontract.KeyRange{From: after, To: to}}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if !ok {
			return nil
		}
		after = to
	}
}

// compare checksums both sides of one range and, if they differ, finds the
// differing keys, in a span of its own under the run's if that one is
// recorded.
func (v *session) compare(ctx context.Context, j job) (err error) {
	ctx, span := telemetry.Child(ctx, v.tracer, spanRange, v.spanAttrs)
	var (
		oc, nc  Checksum
		diffs   []diff
		drilled int
	)
	if span.IsRecording() {
		defer func() {
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			telemetry.EndSpan(span, outcome, err, keyRange.Int64(j.seq), telemetry.KeyRows.Int64(oc.Rows),
				keyNewRows.Int64(nc.Rows), keyDrilled.Int(drilled), keyDifferences.Int(len(diffs)))
		}()
	}
	oc, nc, err = v.checksums(ctx, j.r)
	if err != nil {
		return err
	}
	if oc != nc {
		drilled = 1
		if diffs, err = v.drill(ctx, j.r); err != nil {
			return err
		}
		if len(diffs) > 0 && v.c.recheck > 0 {
			if diffs, err = v.recheck(ctx, j.r, diffs); err != nil {
				return err
			}
		}
	}
	for _, df := range diffs {
		err := v.c.repairs.Record(ctx, cutover.Repair{Op: Op, Key: keyString(df.key), Target: cutover.New,
			Stage: v.stage, Reason: cutover.Unverified, Err: df.kind, Time: v.k.Now()})
		if err != nil {
			return fmt.Errorf("record key %q for repair: %w", keyString(df.key), err)
		}
	}
	v.add(j.seq, oc, nc, diffs, oc != nc)
	return nil
}

// checksums returns the checksums of both sides over r.
func (v *session) checksums(ctx context.Context, r expandcontract.KeyRange) (oc, nc Checksum, err error) {
	if v.pair != nil {
		if oc, nc, err = v.pair.checksums(ctx, r, v.d); err != nil {
			return oc, nc, fmt.Errorf("old and new side: %w", err)
		}
		return oc, nc, nil
	}
	if oc, err = v.old.Checksum(ctx, r, v.d); err != nil {
		return oc, nc, fmt.Errorf("old side: %w", err)
	}
	if nc, err = v.new.Checksum(ctx, r, v.d); err != nil {
		return oc, nc, fmt.Errorf("new side: %w", err)
	}
	return oc, nc, nil
}

// drill reads the rows of r from both sides and returns the differing
// keys, sorted.
func (v *session) drill(ctx context.Context, r expandcontract.KeyRange) ([]diff, error) {
	if v.pair != nil {
		return v.pair.drill(ctx, r)
	}
	type value struct {
		v    string
		null bool
	}
	olds := make(map[any]value, v.c.chunk)
	err := v.old.Rows(ctx, r, func(row Row) error {
		if _, dup := olds[row.Key]; dup {
			return fmt.Errorf("%w: key %q in more than one row", ErrDuplicateKey, keyString(row.Key))
		}
		olds[row.Key] = value{string(row.Value), row.Null}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("old side: %w", err)
	}
	var diffs []diff
	news := make(map[any]struct{}, len(olds))
	err = v.new.Rows(ctx, r, func(row Row) error {
		if _, dup := news[row.Key]; dup {
			return fmt.Errorf("%w: key %q in more than one row", ErrDuplicateKey, keyString(row.Key))
		}
		news[row.Key] = struct{}{}
		o, ok := olds[row.Key]
		switch {
		case !ok:
			diffs = append(diffs, diff{row.Key, ErrExtraInNew})
			return nil
		case o.null != row.Null || o.v != string(row.Value):
			diffs = append(diffs, diff{row.Key, ErrValueDiffers})
		}
		delete(olds, row.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("new side: %w", err)
	}
	for k := range olds {
		diffs = append(diffs, diff{k, ErrMissingInNew})
	}
	slices.SortFunc(diffs, func(a, b diff) int { return compareKeys(a.key, b.key) })
	return diffs, nil
}

// recheck waits, reads r again, and keeps the keys of diffs that still
// differ, as they differ now.
func (v *session) recheck(ctx context.Context, r expandcontract.KeyRange, diffs []diff) ([]diff, error) {
	t := time.NewTimer(v.c.recheck)
	select {
	case <-ctx.Done():
		t.Stop()
		return nil, context.Cause(ctx)
	case <-t.C:
	}
	again, err := v.drill(ctx, r)
	if err != nil {
		return nil, err
	}
	before := make(map[any]bool, len(diffs))
	for _, df := range diffs {
		before[df.key] = true
	}
	return slices.DeleteFunc(again, func(df diff) bool { return !before[df.key] }), nil
}

// compareKeys orders int64 keys by value and other keys by their text.
func compareKeys(a, b any) int {
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	}
	return strings.Compare(keyString(a), keyString(b))
}

// add counts one compared range.
func (v *session) add(seq int64, oc, nc Checksum, diffs []diff, drilled bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := &v.res
	r.Chunks++
	r.Rows += oc.Rows
	r.NewRows += nc.Rows
	if drilled {
		r.Drilled++
	}
	for _, df := range diffs {
		r.Differences++
		switch df.kind {
		case ErrMissingInNew:
			r.Missing++
		case ErrExtraInNew:
			r.Extra++
		default:
			r.Changed++
		}
	}
	if len(diffs) == 0 || v.c.maxKeys == 0 {
		return
	}
	if v.sample == nil {
		v.sample = make(map[int64][]string)
	}
	keys := make([]string, 0, min(len(diffs), v.c.maxKeys))
	for _, df := range diffs[:min(len(diffs), v.c.maxKeys)] {
		keys = append(keys, keyString(df.key))
	}
	v.sample[seq] = keys
	v.held += len(keys)
	// Drop the highest ranges while the lower ones hold enough keys.
	for v.held > v.c.maxKeys {
		top := int64(-1)
		for s := range v.sample {
			top = max(top, s)
		}
		if v.held-len(v.sample[top]) < v.c.maxKeys {
			break
		}
		v.held -= len(v.sample[top])
		delete(v.sample, top)
	}
}

// result returns the result so far, with the sample of keys in key order.
func (v *session) result() Result {
	v.mu.Lock()
	defer v.mu.Unlock()
	res := v.res
	seqs := make([]int64, 0, len(v.sample))
	for s := range v.sample {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		res.Keys = append(res.Keys, v.sample[s]...)
	}
	if len(res.Keys) > v.c.maxKeys {
		res.Keys = res.Keys[:v.c.maxKeys]
	}
	return res
}
