package expandcontract

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/telemetry"
	"github.com/cutover-go/cutover/internal/validate"
)

// SchemaVersion is the version of the metadata tables this package creates
// and understands. [Open] brings older tables up to it in place, and
// refuses a database whose tables are newer. Version 2 lets records of a
// key join its pending repair-log entry; version 3 keeps the backfill's
// settings, which operators change while it runs, and the rate and
// progress its runner measures.
const SchemaVersion = 3

// DefaultTablePrefix names the metadata tables: cutover_migrations,
// cutover_events, cutover_repairs, cutover_instances and cutover_schema.
const DefaultTablePrefix = "cutover_"

// Errors of the metadata store. Each is wrapped, with what was wrong, by the
// errors the store returns.
var (
	ErrNotFound     = errors.New("expandcontract: migration not found")
	ErrConflict     = errors.New("expandcontract: migration changed concurrently")
	ErrIllegalMove  = errors.New("expandcontract: illegal phase move")
	ErrGuard        = errors.New("expandcontract: phase move refused by a guard")
	ErrNewerSchema  = errors.New("expandcontract: metadata schema is newer than this library")
	ErrCorrupt      = errors.New("expandcontract: corrupt metadata")
	ErrInvalidInput = errors.New("expandcontract: invalid input")
	// ErrSchemaMissing is wrapped by the error of [Open] under
	// [WithoutSchemaChanges] when a metadata table, column or index is
	// missing, or the tables are at an older version; the error names
	// what is missing.
	ErrSchemaMissing = errors.New("expandcontract: metadata schema missing or incomplete")
	// ErrInvalidIdentifier is wrapped, with ErrInvalidInput, by the error
	// for a table prefix or any other SQL name that is not a valid
	// identifier. The sub-packages' errors wrap it too.
	ErrInvalidIdentifier = sqldialect.ErrInvalidIdentifier
)

// Option configures a [Store].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	prefix       string
	now          func() time.Time
	maxVerifyAge time.Duration
	lockTimeout  time.Duration
	ddlAttempts  int
	providers    telemetry.Providers
	loggerSet    bool
	meterSet     bool
	checkOnly    bool
	tracerSet    bool
}

// WithTablePrefix names the metadata tables prefix+"migrations" and so on.
// The prefix must form valid SQL identifiers (letters, digits, underscores).
// The default is [DefaultTablePrefix].
func WithTablePrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// WithClock sets the clock of timestamps, leases and caches. The default is
// time.Now.
func WithClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

// WithVerificationMaxAge sets how recent a clean verification must be for a
// move to switchreads. The default is 24 hours.
func WithVerificationMaxAge(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxVerifyAge = d })
}

// WithLockTimeout bounds how long a statement run by a phase move waits for
// a lock before it gives up and retries, so that a DDL never queues behind a
// long transaction while blocking every query behind itself. The default is
// 2 seconds; on SQLite it has no effect (the connection's busy timeout
// applies).
func WithLockTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.lockTimeout = d })
}

// WithDDLAttempts sets how many times a phase move tries its statements when
// they time out on a lock. The default is 5.
func WithDDLAttempts(n int) Option { return optionFunc(func(c *config) { c.ddlAttempts = n }) }

// WithMeterProvider sets the meter provider of the store and of the
// backfills, verifications and repairs of its migrations. The default is
// the global one.
//
// Given this option, [Open] also registers the store's gauges, the figures
// of [Status] for every migration in the metadata, each with the
// migration's name as cutover.migration, so that every instance reports
// them, whether it runs a backfill or a repairer or not:
// cutover.expandcontract.status.phase (the phase's index, 0 for expand to
// 4 for contract), .backfill.rows, .backfill.total, .backfill.rate (rows
// per second), .backfill.eta (seconds), .verification.age (seconds),
// .verification.clean (0 or 1) and .verification.differences (these three
// once a verification is recorded), .repairs.pending, .repairs.stuck, and
// .instances, with the stage each resolves as cutover.stage, and .ceiling
// (the index of the stage ceiling in force, 0 for off to 4 for rampdown,
// or -1 if none is; see [Migration.Demote]). One callback
// reads them all, with four statements, at most once a collection: each
// collection queries the database, which is why they come only with this
// option; one store of a process needs it, since two on one database
// would read and report the same figures twice. [Store.Close]
// unregisters them.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.providers.Meter, c.meterSet = mp, true })
}

// WithoutSchemaChanges makes [Open] change no schema, for a service whose
// own migration tool owns its database's DDL: Open creates no table, index
// or column, upgrades nothing and records no version; it only checks that
// the metadata tables, their columns and their indexes exist and that the
// tables are at [SchemaVersion], and refuses otherwise with an error
// wrapping [ErrSchemaMissing] that names everything missing. Create the
// tables with the statements of [SchemaDDL], and bring older ones up with
// those of [SchemaUpgradeDDL]. The default is to create and upgrade.
func WithoutSchemaChanges() Option { return optionFunc(func(c *config) { c.checkOnly = true }) }

// WithTracerProvider sets the tracer provider of the store and of the
// backfills, verifications and repairs of its migrations. The default is
// the global one, otel.GetTracerProvider, read when [Open] runs. A nil tp,
// or a nil pointer in the interface, makes Open fail. See the package
// documentation for the spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.providers.Tracer, c.tracerSet = tp, true })
}

// WithLogger sets the logger of the store and of the backfills,
// verifications and repairs of its migrations. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.providers.Logger, c.loggerSet = l, true })
}

// Store keeps the state of migrations in metadata tables of the
// application's own database, so that every instance of the service sees
// the same phases. Create it with [Open]; the zero value is not usable. It
// is safe for concurrent use, and by any number of processes at once. A
// store opened with [WithMeterProvider] reports gauges until
// [Store.Close].
type Store struct {
	m            *meta.Store
	maxVerifyAge time.Duration
	lockTimeout  time.Duration
	ddlAttempts  int
	meter        metric.Meter
	tracer       trace.Tracer
	moves        *telemetry.Counter[moveResult]
	phaseReads   *telemetry.Counter[readResult]
	gauges       metric.Registration // nil without WithMeterProvider
	closeOnce    sync.Once
}

// Open creates the metadata tables in db if they do not exist, or brings
// tables of an older [SchemaVersion] up to it in place, and returns a
// store over them; with [WithoutSchemaChanges] it only checks them. db may
// be SQLite (driver "sqlite", or "sqlite3", the name of
// github.com/mattn/go-sqlite3), PostgreSQL (driver "pgx") or MySQL/MariaDB
// (driver "mysql"). Open is idempotent and safe to run from many
// instances at once. It fails, changing nothing, on a database whose
// metadata schema is newer than [SchemaVersion], and on bad input, such as
// a nil db, a nil option, or a SQLite database file opened without a busy
// timeout (see the package documentation), with an error wrapping
// [ErrInvalidInput].
func Open(ctx context.Context, db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidInput)
	}
	c := config{prefix: DefaultTablePrefix, now: time.Now, maxVerifyAge: 24 * time.Hour,
		lockTimeout: 2 * time.Second, ddlAttempts: 5}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d is nil", ErrInvalidInput, i)
		}
		o.apply(&c)
	}
	switch {
	case c.now == nil:
		return nil, fmt.Errorf("%w: nil clock", ErrInvalidInput)
	case c.maxVerifyAge <= 0:
		return nil, fmt.Errorf("%w: verification max age must be positive, got %v", ErrInvalidInput, c.maxVerifyAge)
	case c.lockTimeout <= 0:
		return nil, fmt.Errorf("%w: lock timeout must be positive, got %v", ErrInvalidInput, c.lockTimeout)
	case c.ddlAttempts < 1:
		return nil, fmt.Errorf("%w: DDL attempts must be at least 1, got %d", ErrInvalidInput, c.ddlAttempts)
	case c.loggerSet && c.providers.Logger == nil:
		return nil, fmt.Errorf("%w: nil logger", ErrInvalidInput)
	case c.meterSet && c.providers.Meter == nil:
		return nil, fmt.Errorf("%w: nil meter provider", ErrInvalidInput)
	case c.tracerSet && validate.Nil(c.providers.Tracer):
		return nil, fmt.Errorf("%w: nil tracer provider", ErrInvalidInput)
	}
	d, err := sqldialect.For(db)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if d.Name() == sqldialect.SQLite {
		if err := checkSQLite(ctx, db); err != nil {
			return nil, err
		}
	}
	k, err := meta.New(db, c.prefix, c.now, c.providers)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	s := &Store{m: k, maxVerifyAge: c.maxVerifyAge, lockTimeout: c.lockTimeout, ddlAttempts: c.ddlAttempts,
		meter: k.Meter(scope), tracer: k.Tracer(scope)}
	if s.moves, err = telemetry.NewCounter(s.meter, "cutover.expandcontract.moves",
		"Phase moves asked for, by result.", "{move}", nil, telemetry.KeyReason, numMoveResults); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if s.phaseReads, err = telemetry.NewCounter(s.meter, "cutover.expandcontract.phase_reads",
		"Reads of a migration's phase by a stage bound, by result.", "{read}", nil, telemetry.KeyReason, numReadResults); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if c.checkOnly {
		err = k.Check(ctx, SchemaVersion)
	} else {
		err = k.Migrate(ctx, SchemaVersion)
	}
	if err != nil {
		return nil, err
	}
	if c.meterSet {
		if err := s.registerGauges(); err != nil {
			return nil, fmt.Errorf("expandcontract: %w", err)
		}
	}
	return s, nil
}

// SchemaDDL returns the statements that create the metadata tables at
// [SchemaVersion] for a database of dialect, "sqlite", "postgres" or
// "mysql" (MySQL and MariaDB; the driver names "pgx" and "pgx/v5" are
// taken too), for a service whose own migration tool runs its DDL (see
// [WithoutSchemaChanges]): each CREATE TABLE and CREATE INDEX, without IF
// NOT EXISTS, and the INSERT that records the version, one statement to an
// entry, to run once, in order. Of opts only [WithTablePrefix] matters; the
// others are ignored. An unknown dialect, a bad prefix or a nil option is
// an error wrapping [ErrInvalidInput].
func SchemaDDL(dialect string, opts ...Option) ([]string, error) {
	k, err := ddlStore(dialect, opts)
	if err != nil {
		return nil, err
	}
	stmts, err := k.DDL(SchemaVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return stmts, nil
}

// SchemaUpgradeDDL returns the statements that bring metadata tables of
// schema version from up to [SchemaVersion], as [Open] would in place, for
// a service whose own migration tool runs its DDL: the ALTER TABLE and
// CREATE INDEX statements of every version after from, and the UPDATE
// that records the new version; none if from is SchemaVersion. dialect
// and opts are those of [SchemaDDL]. A from below 1 or above
// SchemaVersion is an error wrapping [ErrInvalidInput].
func SchemaUpgradeDDL(dialect string, from int64, opts ...Option) ([]string, error) {
	k, err := ddlStore(dialect, opts)
	if err != nil {
		return nil, err
	}
	stmts, err := k.UpgradeDDL(from, SchemaVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return stmts, nil
}

// ddlStore returns the metadata of dialect under the prefix of opts.
func ddlStore(dialect string, opts []Option) (*meta.Store, error) {
	c := config{prefix: DefaultTablePrefix}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d is nil", ErrInvalidInput, i)
		}
		o.apply(&c)
	}
	d, err := sqldialect.ForDriver(dialect)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	k, err := meta.ForDialect(d, c.prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return k, nil
}

// checkSQLite refuses a SQLite database file whose connections have no
// busy timeout: on it, a write that meets another one's lock fails at
// once, so two instances, or a backfill and the application, cannot share
// it. An in-memory database is taken as it is.
func checkSQLite(ctx context.Context, db *sqlx.DB) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("expandcontract: check the SQLite database: %w", err)
	}
	defer conn.Close()
	var file string
	if err := conn.GetContext(ctx, &file, `SELECT file FROM pragma_database_list WHERE name = 'main'`); err != nil {
		return fmt.Errorf("expandcontract: check the SQLite database: %w", err)
	}
	var timeout int64
	if err := conn.GetContext(ctx, &timeout, `PRAGMA busy_timeout`); err != nil {
		return fmt.Errorf("expandcontract: check the SQLite database: %w", err)
	}
	if file != "" && timeout <= 0 {
		mattn := ""
		if db.DriverName() == "sqlite3" {
			mattn = "; with github.com/mattn/go-sqlite3, _busy_timeout=5000, as in \"file:app.db?_busy_timeout=5000&_journal_mode=WAL\""
		}
		return fmt.Errorf("%w: the SQLite database %q has no busy timeout, so a write that meets another one fails at once "+
			"with \"database is locked\"; open it with _pragma=busy_timeout(5000) in the DSN, as in "+
			"\"file:app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)\"%s", ErrInvalidInput, file, mattn)
	}
	return nil
}

// scope is the instrumentation scope of the package's metrics and spans.
const scope = "github.com/cutover-go/cutover/expandcontract"

// DB returns the database the store keeps its tables in.
func (s *Store) DB() *sqlx.DB { return s.m.DB }

// Driver returns the name of the SQL dialect of the store's database:
// "sqlite", "postgres" or "mysql" (MySQL and MariaDB).
func (s *Store) Driver() string { return s.m.Dialect.Name() }

// checkName checks a migration name or an instance id, what says which.
func checkName(what, name string) error {
	if err := meta.ValidName(what, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return nil
}
