package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// Errors of the package, wrapped by the errors its functions return.
var (
	// ErrInvalidInput: an argument or option is not valid. Nothing was
	// changed.
	ErrInvalidInput = errors.New("cdc: invalid input")
	// ErrWrongPhase: the migration is in expand or contract, where no log
	// feeds the new store. [Applier.Run] dropped the slot, if there was
	// one, before returning it.
	ErrWrongPhase = errors.New("cdc: migration not in dualwrite, backfill or switchreads")
	// ErrNotLogical: the old server does not run with wal_level=logical,
	// which logical decoding needs.
	ErrNotLogical = errors.New("cdc: the old server's wal_level is not logical")
	// ErrNoSlot: the migration's slot does not exist.
	ErrNoSlot = errors.New("cdc: no replication slot")
	// ErrSlotLost: the new store has applied changes of a slot that no
	// longer exists or that the server invalidated (it kept more WAL than
	// max_slot_wal_keep_size allows): the log has a hole, and changes
	// would be lost. Drop the slot ([Applier.Drop]) and start again from
	// a backfill, or repair from a verification.
	ErrSlotLost = errors.New("cdc: replication slot lost")
	// ErrSlotActive: another applier streams from the slot, and did not
	// release it within the wait of [WithSlotWait].
	ErrSlotActive = errors.New("cdc: replication slot in use by another applier")
	// ErrFenced: the stored position moved while this applier applied a
	// transaction, so another applier took over; nothing of the
	// transaction was committed.
	ErrFenced = errors.New("cdc: stored position moved under the applier")
)

// Source is the old PostgreSQL database whose log feeds the new store.
type Source struct {
	// DB is a connection pool to the old database (driver pgx), for the
	// publication, the slot and its lag. Required.
	DB *sqlx.DB
	// DSN is the connection string of the same database, a URL or
	// keyword/value string as pgx reads it, for the replication
	// connection (the applier adds replication=database). Its user needs
	// the REPLICATION attribute, and to own the tables to publish them.
	// Required.
	DSN string
	// Tables lists the tables whose changes are captured, as "table"
	// (schema public) or "schema.table", validated and quoted. Each needs a
	// replica identity, its primary key by default, for its updates and
	// deletes to name their rows: publishing a table without one would
	// make its updates fail on the old database, so the applier refuses
	// it. At least one.
	Tables []string
}

// ApplyFunc applies a transaction of the old database (or part of one;
// see [Txn]) to the new store, using tx, a transaction of the new store's
// database. The applier commits tx together with the position that the
// transaction's changes are applied up to, so that whatever the function
// writes with tx happens exactly once, whatever crashes; anything else it
// does may be repeated after a crash and must be idempotent. An error
// rolls tx back and stops [Applier.Run] with it; a restart applies the
// transaction again from the log. t and its changes are valid only
// during the call.
type ApplyFunc func(ctx context.Context, tx *sqlx.Tx, t *Txn) error

// Option configures an [Applier].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxChanges int
	maxGroup   int
	flush      time.Duration
	status     time.Duration
	poll       time.Duration
	slotWait   time.Duration
	backfill   *Backfill
}

// Defaults of the options.
const (
	DefaultMaxChanges     = 10000
	DefaultMaxGroup       = 1000
	DefaultFlushInterval  = 50 * time.Millisecond
	DefaultStatusInterval = 10 * time.Second
	DefaultPollInterval   = time.Second
	DefaultSlotWait       = 30 * time.Second
)

// WithMaxChanges bounds the changes the applier holds in memory: a
// transaction of more changes is passed to the apply function in parts
// of at most n, in one transaction of the new store, and a group of
// transactions (see [WithMaxGroup]) is committed once it holds n changes.
// The default is [DefaultMaxChanges]; n must be positive.
func WithMaxChanges(n int) Option { return optionFunc(func(c *config) { c.maxChanges = n }) }

// WithMaxGroup sets how many transactions of the old database, at most,
// one transaction of the new store applies. Grouping makes applying small
// transactions cheap; the position stored is that of the group's last
// transaction, so a crash applies none or all of a group. The default is
// [DefaultMaxGroup]; n must be positive, and 1 applies each transaction
// in one of its own.
func WithMaxGroup(n int) Option { return optionFunc(func(c *config) { c.maxGroup = n }) }

// WithFlushInterval sets how long a group may stay open waiting for more
// transactions before the applier commits it: the delay the grouping adds
// to a change. The default is [DefaultFlushInterval]; d must be positive.
func WithFlushInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.flush = d }) }

// WithStatusInterval sets how often, at the longest, the applier tells
// the server its stored position and reads the slot's lag. It tells it
// after each group it commits too. It must be under the server's
// wal_sender_timeout (60 s by default). The default is
// [DefaultStatusInterval]; d must be positive.
func WithStatusInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.status = d }) }

// WithPollInterval sets how often the applier reads the migration's phase
// to see whether it reached contract or went back to expand. The default
// is [DefaultPollInterval]; d must be positive.
func WithPollInterval(d time.Duration) Option { return optionFunc(func(c *config) { c.poll = d }) }

// WithSlotWait sets how long [Applier.Run] waits, at its start, for a slot
// that another walsender uses, such as that of an applier that was just
// killed and whose connection the server has not seen close yet. The
// default is [DefaultSlotWait]; d must not be negative.
func WithSlotWait(d time.Duration) Option { return optionFunc(func(c *config) { c.slotWait = d }) }

// scope is the instrumentation scope of the package's metrics.
const scope = "github.com/cutover-go/cutover/expandcontract/cdc"

// Applier streams the changes of the old PostgreSQL database's tables
// from a logical replication slot and applies them to the new store, in
// commit order, each group of transactions committed together with the
// position it reached. Create it with [New] and start it with
// [Applier.Run]. One applier at a time streams from a migration's slot;
// the others wait (see [WithSlotWait]). An Applier is safe for concurrent
// use, but runs one Run at a time.
type Applier struct {
	m      *expandcontract.Migration
	name   string
	src    Source
	tables []string // the captured tables as "schema.table", unquoted
	quoted []string // and quoted, in the same order
	target *sqlx.DB
	apply  ApplyFunc
	slot   *Slot
	pos    *positions
	chunks *chunker // the watermark backfill, or nil
	cfg    config
	logger *slog.Logger
	logs   *telemetry.Limiter

	meter   metric.Meter
	changes metric.Int64Counter
	txns    metric.Int64Counter
	lagG    metric.Int64ObservableGauge
	attrs   metric.MeasurementOption
	opAttrs [Copy + 1]metric.MeasurementOption

	running  atomic.Bool
	lag      atomic.Int64
	lagKnown atomic.Bool
}

// New returns an applier that feeds target, the new store's database,
// from the log of the migration m's tables in src, through apply, or
// through the statements of [SQLApply]. The stored position lives in
// target, in the table cdc_positions under the metadata's prefix
// ("cutover_cdc_positions" by default), which the applier creates. New
// checks its arguments and touches no database. Bad input, such as a nil
// migration, database, function or option, is an error wrapping
// [ErrInvalidInput].
func New(m *expandcontract.Migration, src Source, target *sqlx.DB, apply ApplyFunc, opts ...Option) (*Applier, error) {
	h := meta.HandleOf(m)
	if h == nil {
		return nil, fmt.Errorf("%w: nil migration", ErrInvalidInput)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidInput, h.Name, fmt.Sprintf(format, args...))
	}
	c := config{maxChanges: DefaultMaxChanges, maxGroup: DefaultMaxGroup, flush: DefaultFlushInterval,
		status: DefaultStatusInterval, poll: DefaultPollInterval, slotWait: DefaultSlotWait}
	for i, o := range opts {
		if o == nil {
			return nil, bad("option %d is nil", i)
		}
		o.apply(&c)
	}
	switch {
	case c.maxChanges <= 0:
		return nil, bad("max changes must be positive, got %d", c.maxChanges)
	case c.maxGroup <= 0:
		return nil, bad("max group must be positive, got %d", c.maxGroup)
	case c.flush <= 0:
		return nil, bad("flush interval must be positive, got %v", c.flush)
	case c.status <= 0:
		return nil, bad("status interval must be positive, got %v", c.status)
	case c.poll <= 0:
		return nil, bad("poll interval must be positive, got %v", c.poll)
	case c.slotWait < 0:
		return nil, bad("slot wait must not be negative, got %v", c.slotWait)
	case src.DB == nil:
		return nil, bad("nil old database (Source.DB)")
	case strings.TrimSpace(src.DSN) == "":
		return nil, bad("empty DSN of the old database (Source.DSN)")
	case len(src.Tables) == 0:
		return nil, bad("no table to capture (Source.Tables)")
	case target == nil:
		return nil, bad("nil target database")
	case apply == nil:
		return nil, bad("nil apply function")
	}
	if _, err := pgconn.ParseConfig(src.DSN); err != nil {
		return nil, bad("DSN of the old database: %v", err)
	}
	slot, err := SlotFor(src.DB, h.Name)
	if err != nil {
		return nil, err
	}
	a := &Applier{m: m, name: h.Name, src: src, target: target, apply: apply, slot: slot, cfg: c,
		logger: h.Store.Logger, logs: telemetry.NewLimiter(time.Minute, 1, nil)}
	for i, t := range src.Tables {
		q, err := slot.dialect().QuoteIdent(t)
		if err != nil {
			return nil, bad("table %d: %v", i, err)
		}
		full := t
		if !strings.Contains(t, ".") {
			full = "public." + t
		}
		if slices.Contains(a.tables, full) {
			return nil, bad("table %q listed twice", t)
		}
		a.tables, a.quoted = append(a.tables, full), append(a.quoted, q)
	}
	if c.backfill != nil {
		if a.chunks, err = a.newChunker(c.backfill, prefixOf(h)); err != nil {
			return nil, bad("%v", err)
		}
		a.tables, a.quoted = append(a.tables, a.chunks.marks), append(a.quoted, a.chunks.qMarks)
	}
	d, err := sqldialect.For(target)
	if err != nil {
		return nil, bad("target database: %v", err)
	}
	if a.pos, err = newPositions(target, d, prefixOf(h)); err != nil {
		return nil, bad("%v", err)
	}
	if err := a.instruments(h.Store.Meter(scope)); err != nil {
		return nil, fmt.Errorf("cdc: %q: %w", h.Name, err)
	}
	return a, nil
}

func (s *Slot) dialect() sqldialect.Dialect {
	d, _ := sqldialect.For(s.db) // checked by SlotFor
	return d
}

func (a *Applier) instruments(meter metric.Meter) error {
	a.meter = meter
	var err error
	if a.changes, err = meter.Int64Counter("cutover.expandcontract.cdc.changes",
		metric.WithDescription("Row changes from the log applied to the new store and committed, by operation."),
		metric.WithUnit("{change}")); err != nil {
		return err
	}
	if a.txns, err = meter.Int64Counter("cutover.expandcontract.cdc.transactions",
		metric.WithDescription("Transactions of the old database applied to the new store and committed."),
		metric.WithUnit("{transaction}")); err != nil {
		return err
	}
	if a.lagG, err = meter.Int64ObservableGauge("cutover.expandcontract.cdc.lag",
		metric.WithDescription("Bytes of WAL the old server keeps for the migration's replication slot, as its applier last read it while running in this process."),
		metric.WithUnit("By")); err != nil {
		return err
	}
	mig := telemetry.KeyMigration.String(a.name)
	a.attrs = metric.WithAttributeSet(attribute.NewSet(mig))
	for op := Insert; op <= Copy; op++ {
		a.opAttrs[op] = metric.WithAttributeSet(attribute.NewSet(mig, attribute.String("cutover.cdc.op", op.String())))
	}
	return nil
}

// Slot returns the migration's slot.
func (a *Applier) Slot() *Slot { return a.slot }

// Drop drops the migration's slot and publication ([Slot.Drop]) and
// deletes the position stored in the new store. Run calls it when the
// migration reaches contract or goes back to expand; call it to give up
// on the log otherwise. An applier streaming from the slot in another
// process stops with an error.
func (a *Applier) Drop(ctx context.Context) error {
	if err := a.slot.Drop(ctx); err != nil {
		return err
	}
	if err := a.pos.ensureTable(ctx); err != nil {
		return err
	}
	return a.pos.remove(ctx, a.slot.name)
}

// ended reports whether p is a phase where no log feeds the new store.
func ended(p expandcontract.Phase) bool {
	return p == expandcontract.Expand || p == expandcontract.Contract
}

// Run creates the migration's publication and slot unless they exist,
// and applies the changes of the log from the position stored in the new
// store on, until ctx is done, an error stops it, or the migration
// reaches contract or goes back to expand, when it drops the slot and the
// publication and returns nil. It refuses to start in expand or in
// contract, with an error wrapping [ErrWrongPhase], after dropping the
// slot if one is left; start it after the move to dualwrite, and before
// the move to backfill (see the package documentation).
//
// Transactions are applied in the order they committed on the old
// database, each exactly once: a group of them is committed in one
// transaction of the new store together with the position of its last
// transaction's end, and the server is told that position only once it
// is committed. A restart after a crash anywhere reads the stored
// position, streams from there and skips the transactions that end at or
// before it. When ctx is done, Run commits the group it holds if no
// transaction is half passed to the apply function, and returns ctx's
// error.
func (a *Applier) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: %q: Run is already running", ErrInvalidInput, a.name)
	}
	defer a.running.Store(false)
	st, err := a.m.State(ctx)
	if err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	if ended(st.Phase) {
		if err := a.Drop(ctx); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q is in %s", ErrWrongPhase, a.name, st.Phase)
	}
	start, err := a.setup(ctx)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, start)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	reg, err := a.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if a.lagKnown.Load() {
			o.ObserveInt64(a.lagG, a.lag.Load(), a.attrs)
		}
		return nil
	}, a.lagG)
	if err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	defer func() {
		_ = reg.Unregister()
		a.lagKnown.Store(false)
	}()
	s := &stream{a: a, conn: conn, dec: newDecoder(), rels: map[uint32]*relation{}, durable: start, applied: start,
		phase: st.Phase, nextMark: time.Now().UnixNano() &^ 1}
	if a.chunks != nil {
		if s.checkpoint, s.chunksDone, err = a.pos.chunk(ctx, a.slot.name); err != nil {
			return err
		}
	}
	return s.run(ctx)
}

// setup checks the old server and the tables, creates what is missing
// and returns the position to stream from.
func (a *Applier) setup(ctx context.Context) (LSN, error) {
	db, name := a.src.DB, a.slot.name
	var level string
	if err := db.GetContext(ctx, &level, `SHOW wal_level`); err != nil {
		return 0, fmt.Errorf("cdc: %q: read wal_level: %w", a.name, err)
	}
	if level != "logical" {
		return 0, fmt.Errorf("%w: it is %q; set wal_level=logical and restart the server", ErrNotLogical, level)
	}
	if a.chunks != nil {
		if _, err := db.ExecContext(ctx, a.chunks.ensure); err != nil {
			return 0, fmt.Errorf("cdc: %q: create the watermark table: %w", a.name, err)
		}
	}
	for i, q := range a.quoted {
		var ident string
		var pk bool
		err := db.QueryRowContext(ctx, `SELECT c.relreplident::text,
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		FROM pg_class c WHERE c.oid = $1::regclass`, q).Scan(&ident, &pk)
		if err != nil {
			return 0, fmt.Errorf("cdc: %q: table %s: %w", a.name, a.tables[i], err)
		}
		if ident == "n" || ident == "d" && !pk {
			return 0, fmt.Errorf("%w: %q: table %s has no replica identity, so its updates and deletes cannot name their rows "+
				"(publishing it would make them fail): add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL", ErrInvalidInput, a.name, a.tables[i])
		}
	}
	if err := a.pos.ensureTable(ctx); err != nil {
		return 0, err
	}
	if err := a.publication(ctx); err != nil {
		return 0, err
	}
	in, err := a.slot.info(ctx)
	if err != nil {
		return 0, err
	}
	stored, ok, err := a.pos.get(ctx, name)
	if err != nil {
		return 0, err
	}
	now := meta.Micros(time.Now())
	switch {
	case in.exists && in.walStatus == "lost":
		return 0, fmt.Errorf("%w: the server invalidated slot %s (max_slot_wal_keep_size)", ErrSlotLost, name)
	case !in.exists && ok:
		return 0, fmt.Errorf("%w: slot %s does not exist, but the new store has applied its changes up to %s", ErrSlotLost, name, stored)
	case in.exists && ok:
		return stored, nil
	case in.exists:
		// Created by a run that stopped before it stored its position:
		// nothing was applied.
		if err := a.pos.insert(ctx, name, LSN(in.confirmed), now); err != nil {
			return 0, err
		}
	default:
		var at int64
		err := db.QueryRowContext(ctx, `SELECT (lsn - '0/0')::bigint FROM pg_create_logical_replication_slot($1, 'pgoutput')`, name).Scan(&at)
		if err != nil && sqlState(err) != "42710" { // duplicate_object: another applier created it
			return 0, fmt.Errorf("cdc: %q: create slot %s: %w", a.name, name, err)
		}
		if err != nil {
			if in, err = a.slot.info(ctx); err != nil {
				return 0, err
			}
			at = in.confirmed
		}
		if err := a.pos.insert(ctx, name, LSN(at), now); err != nil {
			return 0, err
		}
	}
	stored, _, err = a.pos.get(ctx, name)
	return stored, err
}

// publication creates the publication, or changes its tables to the
// captured ones.
func (a *Applier) publication(ctx context.Context) error {
	db, q := a.src.DB, a.slot.quoted()
	var have []string
	if err := db.SelectContext(ctx, &have, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1`, a.slot.name); err != nil {
		return fmt.Errorf("cdc: %q: read publication %s: %w", a.name, a.slot.name, err)
	}
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, a.slot.name); err != nil {
		return fmt.Errorf("cdc: %q: read publication %s: %w", a.name, a.slot.name, err)
	}
	list := strings.Join(a.quoted, ", ")
	switch {
	case !exists:
		if _, err := db.ExecContext(ctx, `CREATE PUBLICATION `+q+` FOR TABLE `+list); err != nil && sqlState(err) != "42710" {
			return fmt.Errorf("cdc: %q: create publication %s: %w", a.name, a.slot.name, err)
		}
	default:
		want := slices.Clone(a.tables)
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(want, have) {
			if _, err := db.ExecContext(ctx, `ALTER PUBLICATION `+q+` SET TABLE `+list); err != nil {
				return fmt.Errorf("cdc: %q: set the tables of publication %s: %w", a.name, a.slot.name, err)
			}
		}
	}
	return nil
}

// connect opens the replication connection and starts streaming from
// start, waiting up to the slot wait for a slot in use.
func (a *Applier) connect(ctx context.Context, start LSN) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(a.src.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: DSN: %w", ErrInvalidInput, a.name, err)
	}
	cfg.RuntimeParams["replication"] = "database"
	var want string
	if err := a.src.DB.GetContext(ctx, &want, `SELECT current_database()`); err != nil {
		return nil, fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	deadline := time.Now().Add(a.cfg.slotWait)
	args := []string{"proto_version '1'", "publication_names '" + a.slot.name + "'"}
	for {
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("cdc: %q: open the replication connection: %w", a.name, err)
		}
		sys, err := pglogrepl.IdentifySystem(ctx, conn)
		if err == nil && sys.DBName != want {
			err = fmt.Errorf("%w: Source.DSN names database %q, Source.DB %q", ErrInvalidInput, sys.DBName, want)
		}
		if err == nil {
			err = pglogrepl.StartReplication(ctx, conn, a.slot.name, pglogrepl.LSN(start),
				pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args})
			if err == nil {
				return conn, nil
			}
		}
		_ = conn.Close(context.WithoutCancel(ctx))
		if sqlState(err) != "55006" { // object_in_use: another walsender has the slot
			return nil, fmt.Errorf("cdc: %q: start streaming from slot %s at %s: %w", a.name, a.slot.name, start, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %q: slot %s, after waiting %v: %w", ErrSlotActive, a.name, a.slot.name, a.cfg.slotWait, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cdc: %q: %w", a.name, ctx.Err())
		case <-time.After(min(a.cfg.poll, 100*time.Millisecond)):
		}
	}
}
