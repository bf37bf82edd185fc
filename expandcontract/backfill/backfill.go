package backfill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// Errors of the backfill runner, wrapped by the errors [Runner.Run]
// returns, and of bad input.
var (
	// ErrInvalidInput: an argument or option of [New], or of a control
	// such as [Pause], is not valid. Nothing was changed.
	ErrInvalidInput = errors.New("backfill: invalid input")
	// ErrLeaseHeld: another live runner holds the backfill's lease. The
	// error is a *[LeaseHeldError].
	ErrLeaseHeld = errors.New("backfill: lease held by another runner")
	// ErrLeaseLost: the runner's lease was taken over by another runner, so
	// the runner stopped without committing its batch in flight.
	ErrLeaseLost = errors.New("backfill: lease lost")
	// ErrCanceled: the backfill was canceled through the metadata
	// ([Cancel]). The checkpoint is kept; a run resumes from it
	// once the cancellation is lifted with [ResetCancel].
	ErrCanceled = errors.New("backfill: canceled")
	// ErrWrongPhase: the migration is not in the [expandcontract.Backfill] phase,
	// or left it while the runner ran.
	ErrWrongPhase = errors.New("backfill: migration not in the backfill phase")
)

// LeaseHeldError is the error of a run that found the backfill's lease held
// by another runner whose lease has not run out. It wraps [ErrLeaseHeld].
type LeaseHeldError struct {
	Migration string
	Owner     string    // the runner holding the lease
	Until     time.Time // when the lease runs out unless its holder renews it
}

// Error describes who holds the lease and until when.
func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("%v: the backfill of %q is leased to %q until %s",
		ErrLeaseHeld, e.Migration, e.Owner, e.Until.Format(time.RFC3339Nano))
}

// Unwrap returns [ErrLeaseHeld].
func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// Keyset is the key column whose values a backfill walks through in
// order, one batch of keys at a time. The column should be indexed (a
// primary key or a unique index is best): each batch reads the next keys
// in index order. Keys need not be unique, but all rows of one key value
// fall in the same batch, so long runs of one value make big batches. Rows
// whose key is NULL are never visited.
type Keyset struct {
	// DB is the database the keys are read from. Nil means the store's
	// database; set it to the old database when a [BatchFunc] copies rows
	// from there to the store's database.
	DB *sqlx.DB
	// Table is the table, "table" or "schema.table". It is validated and
	// quoted, never spliced into SQL as it is.
	Table string
	// Column is the key column, validated and quoted like Table.
	Column string
	// Kind is the type of the key column: [expandcontract.IntKeys] (the zero value) for
	// an integer column of at most 64 bits, [expandcontract.TextKeys] for a text column
	// (CHAR, VARCHAR, TEXT), whose keys follow the column's collation. The
	// checkpoint holds an integer key in decimal and a text key as it is,
	// so text keys must be valid UTF-8.
	Kind expandcontract.KeyKind
}

// A Batch copies the rows of one key range. [BatchFunc] and [SQLBatch]
// are Batches.
type Batch interface {
	// CopyRange copies the rows of r using tx, a transaction on the
	// store's database, and returns how many rows it copied. A
	// [Runner] passes ranges of keys that it found in the key column:
	// r.From is the previous batch's r.To (the checkpoint), or nil for the
	// first batch of the backfill, which starts at the first key; r.To is
	// the batch's largest key, never nil. Successive ranges cover the key
	// space without a gap. The runner commits tx together with the
	// backfill's checkpoint, so whatever the batch writes with tx happens
	// exactly once; anything else it does (such as writes to another
	// database) may be repeated after a crash or a lost lease, and must be
	// idempotent.
	CopyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (rows int64, err error)
}

// BatchFunc is a [Batch] written in Go, for example one that reads the
// rows of a range from the old database and upserts them into the store's
// database with tx.
type BatchFunc func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (rows int64, err error)

// CopyRange calls f.
func (f BatchFunc) CopyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	return f(ctx, tx, r)
}

// Progress is how far a backfill got, as reported after each batch.
type Progress struct {
	Rows       int64         // rows the batches copied, over every run of the backfill
	Total      int64         // estimated rows to copy in all (see [WithTotal]); 0 if unknown
	Batches    int64         // batches committed by this run
	Rate       float64       // rows per second copied by this run, not counting time paused
	ETA        time.Duration // estimated time left at Rate; 0 when unknown or done
	Checkpoint string        // the last key committed, as the checkpoint holds it
	Done       bool          // true in the report after the last batch
	// RateLimit and BatchSize are the settings the runner applies from
	// then on: those an operator set ([SetRate], [SetBatchSize]) where
	// set, and the runner's own options otherwise. A RateLimit of 0 means
	// none.
	RateLimit float64
	BatchSize int
}

// Option configures a [Runner].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	batchSize   int
	rate        float64
	batchPause  time.Duration
	throttle    func(ctx context.Context) (time.Duration, error)
	throttleSet bool
	hold        func(ctx context.Context) (why string, err error)
	holdSet     bool
	lag         *lagThrottle
	owner       string
	ownerSet    bool
	ttl         time.Duration
	ranges      int
	progress    func(Progress)
	progressSet bool
	total       int64
	totalSet    bool
	poll        time.Duration
}

// scope is the instrumentation scope of the package's metrics and spans.
const scope = "github.com/cutover-go/cutover/expandcontract/backfill"

// backfillPhase is the name of the phase a backfill runs in.
var backfillPhase = expandcontract.Backfill.String()

// DefaultBatchSize is the number of keys per batch unless [WithBatchSize]
// says otherwise.
const DefaultBatchSize = 1000

// DefaultLeaseTTL is how long a backfill lease lasts unless renewed,
// unless [WithLease] says otherwise.
const DefaultLeaseTTL = 30 * time.Second

// WithBatchSize sets how many keys each batch covers. The default is
// [DefaultBatchSize]; n must be positive. A batch size set through the
// metadata with [SetBatchSize] overrides it while set.
func WithBatchSize(n int) Option {
	return optionFunc(func(c *config) { c.batchSize = n })
}

// WithRate limits the backfill to about rowsPerSecond rows per second, on
// average over the run, by waiting after each batch as long as its rows
// take at that rate. Zero, the default, means no limit; a negative or NaN
// rate is an error. A rate limit set through the metadata with [SetRate]
// overrides it while set. A wait longer than the poll interval
// ([WithPollInterval]) reads the metadata every poll interval, so that a
// pause, a cancellation or new settings are seen while it lasts.
func WithRate(rowsPerSecond float64) Option {
	return optionFunc(func(c *config) { c.rate = rowsPerSecond })
}

// WithBatchPause makes the runner wait at least d after each batch before
// the next. With [WithRate] too, the longer of the two waits applies. The
// default is no pause; a negative d is an error.
func WithBatchPause(d time.Duration) Option {
	return optionFunc(func(c *config) { c.batchPause = d })
}

// WithThrottle sets a hook called before each batch, for example to hold
// the backfill while some load of one's own is high ([WithLagThrottle]
// holds it while replicas lag). If it returns a positive wait, the runner
// waits that long, keeping its lease, and calls it again; it starts the
// batch once the hook returns zero. While it waits, the migration's state
// says so ([expandcontract.BackfillState].Throttled), and a wait longer
// than the poll interval reads the metadata every poll interval, so that a
// pause, a cancellation or a lost lease is acted on at once. An error from
// the hook stops the run with that error; to go on despite an error,
// return a wait instead.
func WithThrottle(f func(ctx context.Context) (wait time.Duration, err error)) Option {
	return optionFunc(func(c *config) { c.throttle, c.throttleSet = f, true })
}

// WithHold sets a condition checked before each batch, after the lag
// throttle and the throttle hook: while f returns a reason, the runner
// holds the next batch, keeping its lease, records the reason as the
// migration's [expandcontract.BackfillState].Throttled, and asks f again
// every poll interval ([WithPollInterval]). The batch starts once f
// returns "". A trigger monitor's Hold method
// (github.com/cutover-go/cutover/trigger) is such a function: it holds
// the backfill while the new store's latency trigger fires. An error from
// f stops the run with that error.
func WithHold(f func(ctx context.Context) (why string, err error)) Option {
	return optionFunc(func(c *config) { c.hold, c.holdSet = f, true })
}

// WithOwner sets the id under which the runner takes the backfill's lease,
// recorded in the history of the migration. It must be 1 to 255 printable
// bytes and unique to the runner: a run that finds its own id holding the
// lease takes it, as a process restarted under a stable id should. The
// default is the host name, the process id and a random number.
func WithOwner(id string) Option {
	return optionFunc(func(c *config) { c.owner, c.ownerSet = id, true })
}

// WithLease sets how long the runner's lease lasts unless renewed. The
// runner renews it with each batch it commits and every ttl/3 in the
// background; a runner that stops renewing (a dead process) is replaced
// by another once ttl has run out, measured on the store's clock (see
// [expandcontract.WithClock]). The default is [DefaultLeaseTTL]; ttl must be at least a
// millisecond.
func WithLease(ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.ttl = ttl })
}

// WithProgress sets a function called after each batch the runner commits,
// and once more when the backfill is done, in the goroutine of
// [Runner.Run]: it should return quickly.
func WithProgress(f func(Progress)) Option {
	return optionFunc(func(c *config) { c.progress, c.progressSet = f, true })
}

// WithTotal sets the number of rows the whole backfill is expected to
// copy, used for the progress ratio and the ETA. Without it, each run
// counts the keys beyond the checkpoint with one COUNT(*) before its
// first batch, which reads every remaining entry of the key column's
// index: seconds for tens of millions of rows. An estimate such as
// PostgreSQL's pg_class.reltuples skips that; n must not be negative.
func WithTotal(n int64) Option {
	return optionFunc(func(c *config) { c.total, c.totalSet = n, true })
}

// WithPollInterval sets how often a paused runner reads the metadata to
// see whether it was resumed or canceled, and a runner that waits between
// batches longer than d whether it was paused or canceled or its settings
// changed. The default is one second; d must be positive.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.poll = d })
}

// Runner copies the rows of one migration in batches of keys, each
// batch committed together with the checkpoint of the backfill. Create it
// with [New] and start it with [Runner.Run]; any number
// of instances of a service may run one for the same migration at once,
// and the lease lets one of them work while the others wait their turn.
type Runner struct {
	k      *meta.Store
	meter  metric.Meter
	tracer trace.Tracer
	name   string
	cfg    config
	keys   keyQueries
	batch  Batch

	// statements on the metadata table, rebound for the store's dialect
	qControl, qControlLock, qTake, qCheckpoint, qRenew, qRelease, qDone, qThrottled string
	ranges                                                                          rangeQueries
	// qFused and qFusedRange are an SQLBatch's statement and the
	// checkpoint in one statement (see fuse), of a backfill that is not
	// split and of a range, or "" where the batch cannot be fused.
	qFused, qFusedRange string

	rows     metric.Int64Counter
	duration metric.Float64Histogram
	ratio    metric.Float64ObservableGauge
	attrs    metric.MeasurementOption
	attrsOK  metric.MeasurementOption
	attrsErr metric.MeasurementOption
	spanRun  trace.SpanStartOption // the attributes a run's span starts with
	spanOne  trace.SpanStartOption // and a batch's

	lagLogs    *telemetry.Limiter // warnings of a lag that cannot be read
	running    atomic.Bool
	gaugeRows  atomic.Int64
	gaugeTotal atomic.Int64
}

// keyQueries are the statements that read the key column.
type keyQueries struct {
	db         *sqlx.DB
	dialect    sqldialect.Dialect
	kind       expandcontract.KeyKind
	table, col string // quoted
	countAll   string // keys in all
	countAfter string // keys beyond a checkpoint
	atOrBelow  string // keys at or below a value
}

// window is the statements that read the range of the next batch of size
// keys: its MIN, MAX and COUNT of keys, from the start and after a
// checkpoint, up to hi, the last key of a range of a partitioned
// backfill, where hi is not nil.
type window struct {
	size        int
	first, next string
	hi          any
}

// window returns the statements of batches of size keys, within the range
// p of a partitioned backfill unless p is nil.
func (kq keyQueries) window(size int, p *part) window {
	limit := strconv.Itoa(size)
	var upTo string
	var hi any
	if p != nil && p.to != nil {
		upTo, hi = ` AND `+kq.col+` <= ?`, p.to
	}
	w := func(where string) string {
		return kq.dialect.Rebind(`SELECT MIN(` + kq.col + `), MAX(` + kq.col + `), COUNT(*) FROM (SELECT ` + kq.col +
			` FROM ` + kq.table + ` WHERE ` + where + upTo + ` ORDER BY ` + kq.col + ` LIMIT ` + limit + `) AS cutover_keys`)
	}
	return window{size: size, first: w(kq.col + ` IS NOT NULL`), next: w(kq.col + ` > ?`), hi: hi}
}

// New returns a runner that backfills the migration m by walking through
// keys in batches and calling batch on each. It checks its arguments and
// touches no database; [Runner.Run] does the work. A [SQLBatch] is checked
// and compiled here. Bad input, such as a nil migration, batch or option,
// is an error wrapping [ErrInvalidInput].
func New(m *expandcontract.Migration, keys Keyset, batch Batch, opts ...Option) (*Runner, error) {
	h := meta.HandleOf(m)
	if h == nil {
		return nil, fmt.Errorf("%w: nil migration", ErrInvalidInput)
	}
	s, name := h.Store, h.Name
	c := config{batchSize: DefaultBatchSize, ttl: DefaultLeaseTTL, poll: time.Second, ranges: 1}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: %q: option %d is nil", ErrInvalidInput, name, i)
		}
		o.apply(&c)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidInput, name, fmt.Sprintf(format, args...))
	}
	switch {
	case c.batchSize <= 0:
		return nil, bad("batch size must be positive, got %d", c.batchSize)
	case c.rate < 0 || math.IsNaN(c.rate):
		return nil, bad("rate must be zero (no limit) or positive rows per second, got %v", c.rate)
	case c.batchPause < 0:
		return nil, bad("batch pause must not be negative, got %v", c.batchPause)
	case c.throttleSet && c.throttle == nil:
		return nil, bad("nil throttle function")
	case c.holdSet && c.hold == nil:
		return nil, bad("nil hold function")
	case c.lag != nil && c.lag.err != nil:
		return nil, bad("%v", c.lag.err)
	case c.progressSet && c.progress == nil:
		return nil, bad("nil progress function")
	case c.ttl < time.Millisecond:
		return nil, bad("lease TTL must be at least 1ms, got %v", c.ttl)
	case c.poll <= 0:
		return nil, bad("poll interval must be positive, got %v", c.poll)
	case c.totalSet && c.total < 0:
		return nil, bad("total must not be negative, got %d", c.total)
	case c.ranges < 1 || c.ranges > MaxRanges:
		return nil, bad("ranges must be 1 to %d, got %d", MaxRanges, c.ranges)
	}
	if math.IsInf(c.rate, 1) {
		c.rate = 0
	}
	if c.ownerSet {
		if err := meta.ValidName("owner", c.owner); err != nil {
			return nil, bad("owner %q must be 1 to 255 printable bytes", c.owner)
		}
	} else {
		c.owner = defaultOwner()
	}

	b := &Runner{k: s, name: name, cfg: c, meter: s.Meter(scope), tracer: s.Tracer(scope),
		lagLogs: telemetry.NewLimiter(time.Minute, 1, nil)}
	var err error
	if b.keys, err = compileKeys(s, keys); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidInput, name, err)
	}
	switch bt := batch.(type) {
	case nil:
		return nil, bad("nil batch")
	case BatchFunc:
		if bt == nil {
			return nil, bad("nil batch function")
		}
		b.batch = bt
	case SQLBatch:
		cs, err := compileSQLBatch(string(bt), s.Dialect)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalidInput, name, err)
		}
		b.batch = cs
	default:
		b.batch = batch
	}

	mt := s.T.Migrations
	control := `SELECT ` + meta.Columns + ` FROM `
	b.qControl = s.Q(control + mt + ` WHERE name = ?`)
	b.qControlLock = s.Q(control + mt + ` WHERE name = ?` + s.Dialect.ForUpdate())
	// Taking the lease changes nothing else: a run records its start, its
	// total and its progress with its first commit.
	b.qTake = s.Q(`UPDATE ` + mt + ` SET lease_owner = ?, lease_until = ?
	WHERE name = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)`)
	// A batch commits only while the runner holds the lease, in the
	// phase, neither paused nor canceled, with the settings it applies:
	// otherwise the update matches no row, and the runner reads why.
	b.qCheckpoint = s.Q(`UPDATE ` + mt + ` SET backfill_checkpoint = ?, backfill_rows = backfill_rows + ?,
	backfill_total = ?, backfill_started_at = COALESCE(backfill_started_at, ?), lease_until = ?, updated_at = ?,
	backfill_rate = ?, backfill_samples = COALESCE(?, backfill_samples), backfill_throttled = NULL
	WHERE ` + checkpointWhere)
	if cs, ok := b.batch.(*compiledSQL); ok {
		b.qFused = fuse(s.Dialect, cs.query, fusedCheckpoint(mt))
		b.qFusedRange = fuse(s.Dialect, cs.query, `UPDATE `+s.T.Ranges+` SET `+rangeCheckpointSet+fusedRows+rangeCheckpointWhere(mt))
	}
	b.qRenew = s.Q(`UPDATE ` + mt + ` SET lease_until = ? WHERE name = ? AND lease_owner = ?`)
	b.qRelease = s.Q(`UPDATE ` + mt + ` SET lease_owner = NULL, lease_until = NULL, backfill_throttled = NULL
	WHERE name = ? AND lease_owner = ?`)
	b.qThrottled = s.Q(`UPDATE ` + mt + ` SET backfill_throttled = ? WHERE name = ? AND lease_owner = ?`)
	b.qDone = s.Q(`UPDATE ` + mt + ` SET backfill_done_at = ?, backfill_total = ?,
	backfill_started_at = COALESCE(backfill_started_at, ?), lease_owner = NULL, lease_until = NULL, updated_at = ?,
	backfill_samples = COALESCE(?, backfill_samples), backfill_throttled = NULL
	WHERE name = ? AND lease_owner = ? AND phase = ? AND backfill_paused = 0 AND backfill_canceled = 0`)

	b.ranges = compileRanges(s)
	if err := b.instruments(); err != nil {
		return nil, fmt.Errorf("backfill: %q: %w", name, err)
	}
	return b, nil
}

// Owner returns the id under which the runner takes the lease.
func (b *Runner) Owner() string { return b.cfg.owner }

func (b *Runner) instruments() error {
	var err error
	meter := b.meter
	if b.rows, err = meter.Int64Counter("cutover.expandcontract.backfill.rows",
		metric.WithDescription("Rows copied by backfill batches that committed."),
		metric.WithUnit("{row}")); err != nil {
		return err
	}
	if b.duration, err = meter.Float64Histogram("cutover.expandcontract.backfill.batch.duration",
		metric.WithDescription("Duration of backfill batches, from their start to their commit, by outcome."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...)); err != nil {
		return err
	}
	if b.ratio, err = meter.Float64ObservableGauge("cutover.expandcontract.backfill.progress",
		metric.WithDescription("Fraction of the estimated rows a backfill has copied, from 0 to 1, reported while it runs in this process."),
		metric.WithUnit("1")); err != nil {
		return err
	}
	mig := telemetry.KeyMigration.String(b.name)
	b.attrs = metric.WithAttributeSet(attribute.NewSet(mig))
	b.attrsOK = metric.WithAttributeSet(attribute.NewSet(mig, telemetry.KeyOutcome.String(telemetry.OK.String())))
	b.attrsErr = metric.WithAttributeSet(attribute.NewSet(mig, telemetry.KeyOutcome.String(telemetry.Error.String())))
	b.spanRun = trace.WithAttributes(mig, keyOwner.String(b.cfg.owner))
	b.spanOne = trace.WithAttributes(mig)
	return nil
}

// compileKeys validates keys and writes the statements that read them.
func compileKeys(s *meta.Store, keys Keyset) (keyQueries, error) {
	kq := keyQueries{db: keys.DB, dialect: s.Dialect, kind: keys.Kind}
	if kq.db == nil {
		kq.db = s.DB
	} else {
		d, err := sqldialect.For(kq.db)
		if err != nil {
			return kq, fmt.Errorf("key database: %w", err)
		}
		kq.dialect = d
	}
	if keys.Kind != expandcontract.IntKeys && keys.Kind != expandcontract.TextKeys {
		return kq, fmt.Errorf("unknown key kind %v (want expandcontract.IntKeys or expandcontract.TextKeys)", keys.Kind)
	}
	table, err := kq.dialect.QuoteIdent(keys.Table)
	if err != nil {
		return kq, fmt.Errorf("key table: %w", err)
	}
	if strings.Contains(keys.Column, ".") {
		return kq, fmt.Errorf("key column %q: a column name cannot have a dot", keys.Column)
	}
	col, err := kq.dialect.QuoteIdent(keys.Column)
	if err != nil {
		return kq, fmt.Errorf("key column: %w", err)
	}
	kq.table, kq.col = table, col
	kq.countAll = `SELECT COUNT(*) FROM ` + table + ` WHERE ` + col + ` IS NOT NULL`
	kq.countAfter = kq.dialect.Rebind(`SELECT COUNT(*) FROM ` + table + ` WHERE ` + col + ` > ?`)
	kq.atOrBelow = kq.dialect.Rebind(`SELECT COUNT(*) FROM ` + table + ` WHERE ` + col + ` <= ?`)
	return kq, nil
}

// encodeKey returns a key as the checkpoint holds it.
func encodeKey(k any) string {
	switch v := k.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	}
	return fmt.Sprint(k)
}

// decodeKey reads a checkpoint written by encodeKey for keys of kind.
func decodeKey(kind expandcontract.KeyKind, s string) (any, error) {
	if kind == expandcontract.TextKeys {
		return s, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q is not an integer key; was the backfill started with text keys?", s)
	}
	return v, nil
}

func defaultOwner() string {
	return fmt.Sprintf("%s/%d/%08x", meta.Host(), os.Getpid(), rand.Uint32())
}
