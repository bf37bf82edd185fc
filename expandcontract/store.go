package expandcontract

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// key join its pending repair-log entry.
const SchemaVersion = 2

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
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.providers.Meter, c.meterSet = mp, true })
}

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
// is safe for concurrent use, and by any number of processes at once.
type Store struct {
	m            *meta.Store
	maxVerifyAge time.Duration
	lockTimeout  time.Duration
	ddlAttempts  int
	meter        metric.Meter
	tracer       trace.Tracer
	moves        *telemetry.Counter[moveResult]
	phaseReads   *telemetry.Counter[readResult]
}

// Open creates the metadata tables in db if they do not exist and returns a
// store over them. db may be SQLite (driver "sqlite", or "sqlite3", the
// name of github.com/mattn/go-sqlite3), PostgreSQL (driver "pgx") or
// MySQL/MariaDB (driver "mysql"). Open is idempotent and safe to run from
// many instances at once. It fails, changing nothing, on a database whose
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
	if err := k.Migrate(ctx, SchemaVersion); err != nil {
		return nil, err
	}
	return s, nil
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
