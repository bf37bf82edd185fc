// Package meta is the metadata kernel that package expandcontract and its
// sub-packages (backfill, verify, repair) share: the metadata tables and
// their schema, the clock, transactions, the event history, the scanned
// form of a migration's row, and the way from a *expandcontract.Migration
// to the store behind it.
//
// Phases appear here as their names: the Phase type belongs to package
// expandcontract, which imports this one.
package meta

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// Errors of the metadata. They are package expandcontract's sentinels,
// which its init function sets here, so that the errors of this package
// and of the sub-packages wrap the values users test for.
var (
	ErrNotFound      error
	ErrNewerSchema   error
	ErrSchemaMissing error
	ErrCorrupt       error
	ErrUnknownPhase  error
)

// Tables holds the quoted names of the metadata tables.
type Tables struct {
	Schema, Migrations, Events, Repairs, Instances, Ranges, VerifyRanges string
}

// Store is the metadata of one database: its tables, its dialect, the clock
// of every timestamp, and the telemetry providers. It is safe for
// concurrent use.
type Store struct {
	DB      *sqlx.DB
	Dialect sqldialect.Dialect
	T       Tables
	Prefix  string
	Now     func() time.Time
	Logger  *slog.Logger

	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
}

// New returns the metadata of db under tables named prefix+"migrations" and
// so on. It checks the prefix and the database's dialect, and touches
// nothing; [Store.Migrate] creates the tables.
func New(db *sqlx.DB, prefix string, now func() time.Time, p telemetry.Providers) (*Store, error) {
	d, err := sqldialect.For(db)
	if err != nil {
		return nil, err
	}
	s, err := ForDialect(d, prefix)
	if err != nil {
		return nil, err
	}
	s.DB, s.Now = db, now
	_, _, s.Logger = p.Resolve("")
	s.meterProvider, s.tracerProvider = p.Meter, p.Tracer
	return s, nil
}

// ForDialect returns the metadata of a database of dialect d under tables
// named prefix+"migrations" and so on, without a database: enough for
// [Store.DDL] and [Store.UpgradeDDL], and for nothing that runs a
// statement.
func ForDialect(d sqldialect.Dialect, prefix string) (*Store, error) {
	s := &Store{Dialect: d, Prefix: prefix}
	for _, tt := range []struct {
		dst  *string
		name string
	}{{&s.T.Schema, "schema"}, {&s.T.Migrations, "migrations"}, {&s.T.Events, "events"},
		{&s.T.Repairs, "repairs"}, {&s.T.Instances, "instances"}, {&s.T.Ranges, "backfill_ranges"},
		{&s.T.VerifyRanges, "verify_ranges"}} {
		var err error
		if *tt.dst, err = d.QuoteIdent(prefix + tt.name); err != nil {
			return nil, fmt.Errorf("table prefix %q: %w", prefix, err)
		}
	}
	return s, nil
}

// Meter returns the meter of the instrumentation scope named scope, the
// import path of the package that records with it.
func (s *Store) Meter(scope string) metric.Meter {
	m, _, _ := telemetry.Providers{Meter: s.meterProvider}.Resolve(scope)
	return m
}

// Tracer returns the tracer of the instrumentation scope named scope, the
// import path of the package whose spans it starts.
func (s *Store) Tracer(scope string) trace.Tracer {
	_, t, _ := telemetry.Providers{Tracer: s.tracerProvider}.Resolve(scope)
	return t
}

// Q rebinds query's ? placeholders for the store's dialect.
func (s *Store) Q(query string) string { return s.Dialect.Rebind(query) }

// BeginTx begins a transaction that will write. On SQLite it takes the
// database's write lock first, whatever the DSN says (_txlock), as BEGIN
// IMMEDIATE would: a transaction that read and then wrote would otherwise
// fail at once with SQLITE_BUSY_SNAPSHOT ("database is locked (517)") when
// another connection wrote in between, or with SQLITE_BUSY when another
// held the write lock, without the busy timeout's wait. A write that
// matches no row takes the lock and changes nothing. PostgreSQL and MySQL
// lock rows, with FOR UPDATE where the transaction reads first.
func (s *Store) BeginTx(ctx context.Context) (*sqlx.Tx, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil || s.Dialect.Name() != sqldialect.SQLite {
		return tx, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+s.T.Schema+` SET id = id WHERE 1 = 0`); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// InTx runs fn in a transaction begun with [Store.BeginTx], committing if
// it returns nil and rolling back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.BeginTx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Micros converts t to the stored form: microseconds since the Unix epoch,
// the same on every database.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts a stored time back; NULL is the zero time.
func FromMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return time.UnixMicro(us.Int64).UTC()
}

// ValidName checks a migration name or an instance or runner id: 1 to 255
// bytes of valid UTF-8 without control characters. The error says what is
// wrong; callers wrap it with their package's sentinel.
func ValidName(what, name string) error {
	switch {
	case name == "" || len(name) > 255:
		return fmt.Errorf("%s %q must be 1 to 255 bytes", what, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s %q is not valid UTF-8", what, name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%s %q holds a control character", what, name)
	}
	return nil
}

// BoolInt stores a boolean as the integer the tables keep.
func BoolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Host returns the host name, cut at 200 bytes, or "unknown-host" if it
// cannot be read: the first part of the default id of a backfill runner
// and of a verification.
func Host() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "unknown-host"
	}
	return host[:min(len(host), 200)]
}
