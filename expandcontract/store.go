package expandcontract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// SchemaVersion is the version of the metadata tables this package creates
// and understands. [Open] refuses a database whose tables are newer.
const SchemaVersion = 1

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

// WithMeterProvider sets the meter provider. The default is the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.providers.Meter = mp })
}

// WithLogger sets the logger. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.providers.Logger = l }) }

// tables holds the quoted names of the metadata tables.
type tables struct {
	schema, migrations, events, repairs, instances string
}

// Store keeps the state of migrations in metadata tables of the
// application's own database, so that every instance of the service sees
// the same phases. Create it with [Open]; the zero value is not usable. It
// is safe for concurrent use, and by any number of processes at once.
type Store struct {
	db           *sqlx.DB
	dialect      sqldialect.Dialect
	t            tables
	prefix       string
	now          func() time.Time
	maxVerifyAge time.Duration
	lockTimeout  time.Duration
	ddlAttempts  int
	logger       *slog.Logger
	meter        metric.Meter
	moves        *telemetry.Counter[moveResult]
	verifyRows   metric.Int64Counter
	verifyDiffs  metric.Int64Counter
	verifyTime   metric.Float64Histogram
}

// Open creates the metadata tables in db if they do not exist and returns a
// store over them. db may be SQLite (driver "sqlite"), PostgreSQL (driver
// "pgx") or MySQL/MariaDB (driver "mysql"). Open is idempotent and safe to
// run from many instances at once; it fails, changing nothing, on a
// database whose metadata schema is newer than [SchemaVersion].
func Open(ctx context.Context, db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidInput)
	}
	c := config{prefix: DefaultTablePrefix, now: time.Now, maxVerifyAge: 24 * time.Hour,
		lockTimeout: 2 * time.Second, ddlAttempts: 5}
	for _, o := range opts {
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
	}
	d, err := sqldialect.For(db)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	s := &Store{db: db, dialect: d, prefix: c.prefix, now: c.now, maxVerifyAge: c.maxVerifyAge,
		lockTimeout: c.lockTimeout, ddlAttempts: c.ddlAttempts}
	for _, tt := range []struct {
		dst  *string
		name string
	}{{&s.t.schema, "schema"}, {&s.t.migrations, "migrations"}, {&s.t.events, "events"},
		{&s.t.repairs, "repairs"}, {&s.t.instances, "instances"}} {
		if *tt.dst, err = d.QuoteIdent(c.prefix + tt.name); err != nil {
			return nil, fmt.Errorf("%w: table prefix %q: %w", ErrInvalidInput, c.prefix, err)
		}
	}
	s.meter, _, s.logger = c.providers.Resolve("github.com/cutover-go/cutover/expandcontract")
	if s.moves, err = telemetry.NewCounter(s.meter, "cutover.expandcontract.moves",
		"Phase moves asked for, by result.", "{move}", nil, telemetry.KeyReason, numMoveResults); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if s.verifyRows, err = s.meter.Int64Counter("cutover.expandcontract.verify.rows",
		metric.WithDescription("Rows of the old store compared by verifications."), metric.WithUnit("{row}")); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if s.verifyDiffs, err = s.meter.Int64Counter("cutover.expandcontract.verify.differences",
		metric.WithDescription("Keys that verifications found to differ between the stores."), metric.WithUnit("{key}")); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if s.verifyTime, err = s.meter.Float64Histogram("cutover.expandcontract.verify.duration",
		metric.WithDescription("Duration of verifications."), metric.WithUnit("s")); err != nil {
		return nil, fmt.Errorf("expandcontract: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// DB returns the database the store keeps its tables in.
func (s *Store) DB() *sqlx.DB { return s.db }

// Dialect returns the SQL dialect of the store's database.
func (s *Store) Dialect() sqldialect.Dialect { return s.dialect }

// migrate creates the tables, or checks those already there.
func (s *Store) migrate(ctx context.Context) error {
	// A newer library's tables are refused before anything is created.
	var existing int64
	if err := s.db.GetContext(ctx, &existing, `SELECT version FROM `+s.t.schema+` WHERE id = 1`); err == nil && existing > SchemaVersion {
		return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
			ErrNewerSchema, s.prefix, existing, SchemaVersion)
	}
	d := s.dialect
	key, text, big, small := d.TypeKeyText(), d.TypeText(), d.TypeBigInt(), d.TypeBool()
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (id %s PRIMARY KEY, version %s NOT NULL)`, s.t.schema, small, big),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	name %[2]s PRIMARY KEY,
	phase %[2]s NOT NULL,
	version %[3]s NOT NULL,
	created_at %[3]s NOT NULL,
	updated_at %[3]s NOT NULL,
	backfill_checkpoint %[4]s,
	backfill_rows %[3]s NOT NULL DEFAULT 0,
	backfill_total %[3]s NOT NULL DEFAULT 0,
	backfill_started_at %[3]s,
	backfill_done_at %[3]s,
	backfill_paused %[5]s NOT NULL DEFAULT 0,
	backfill_canceled %[5]s NOT NULL DEFAULT 0,
	lease_owner %[4]s,
	lease_until %[3]s,
	verified_at %[3]s,
	verify_clean %[5]s,
	verify_rows %[3]s,
	verify_diffs %[3]s,
	verify_detail %[4]s
)`, s.t.migrations, key, big, text, small),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id %s,
	migration %s NOT NULL,
	at %s NOT NULL,
	actor %s NOT NULL,
	kind %s NOT NULL,
	from_phase %[6]s NOT NULL,
	to_phase %[6]s NOT NULL,
	version %[4]s NOT NULL,
	reason %[5]s NOT NULL,
	detail %[5]s NOT NULL
)`, s.t.events, d.AutoIncrementPK(), key, big, text, key),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id %s,
	migration %s NOT NULL,
	op %[3]s NOT NULL,
	entity_key %[3]s NOT NULL,
	target %[5]s NOT NULL,
	stage %[3]s NOT NULL,
	reason %[3]s NOT NULL,
	error %[6]s NOT NULL,
	created_at %[4]s NOT NULL,
	attempts %[4]s NOT NULL DEFAULT 0,
	next_attempt_at %[4]s NOT NULL,
	last_error %[6]s NOT NULL,
	done_at %[4]s
)`, s.t.repairs, d.AutoIncrementPK(), key, big, small, text),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	migration %[2]s NOT NULL,
	instance %[2]s NOT NULL,
	stage %[2]s NOT NULL,
	seen_at %[3]s NOT NULL,
	PRIMARY KEY (migration, instance)
)`, s.t.instances, key, big),
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("expandcontract: create metadata tables: %w", err)
		}
	}
	for _, ix := range []sqldialect.Index{
		{Name: s.prefix + "events_migration", Table: s.prefix + "events", Columns: []string{"migration", "id"}},
		{Name: s.prefix + "repairs_pending", Table: s.prefix + "repairs", Columns: []string{"migration", "done_at", "next_attempt_at"}},
	} {
		if err := d.CreateIndex(ctx, s.db, ix); err != nil {
			return fmt.Errorf("expandcontract: create metadata indexes: %w", err)
		}
	}
	// Record the schema version once; a concurrent Open may win the insert.
	var v int64
	err := s.db.GetContext(ctx, &v, s.dialect.Rebind(`SELECT version FROM `+s.t.schema+` WHERE id = 1`))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = s.db.ExecContext(ctx, s.dialect.Rebind(`INSERT INTO `+s.t.schema+` (id, version) VALUES (1, ?)`), SchemaVersion)
		if err != nil && !s.dialect.IsUniqueViolation(err) {
			return fmt.Errorf("expandcontract: record schema version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("expandcontract: read schema version: %w", err)
	case v > SchemaVersion:
		return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
			ErrNewerSchema, s.prefix, v, SchemaVersion)
	case v < 1:
		return fmt.Errorf("%w: schema version %d in %s", ErrCorrupt, v, s.t.schema)
	}
	return nil
}

// micros and fromMicros convert times to the stored form: microseconds since
// the Unix epoch, the same on every database.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return time.UnixMicro(us.Int64).UTC()
}

func (s *Store) q(query string) string { return s.dialect.Rebind(query) }

// validName checks a migration name: non-empty, at most 255 bytes, printable.
func validName(name string) error {
	switch {
	case name == "" || len(name) > 255:
		return fmt.Errorf("%w: migration name %q must be 1 to 255 bytes", ErrInvalidInput, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: migration name %q is not valid UTF-8", ErrInvalidInput, name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: migration name %q holds a control character", ErrInvalidInput, name)
	}
	return nil
}
