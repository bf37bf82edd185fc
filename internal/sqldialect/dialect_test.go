package sqldialect_test

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// dialects returns the three dialects by name.
func dialects(t testing.TB) map[string]sqldialect.Dialect {
	t.Helper()
	out := map[string]sqldialect.Dialect{}
	for _, n := range []string{"sqlite", "postgres", "mysql"} {
		d, err := sqldialect.ForDriver(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = d
	}
	return out
}

func TestForDriver(t *testing.T) {
	for driver, want := range map[string]string{
		"sqlite":   "sqlite",
		"sqlite3":  "sqlite",
		"pgx":      "postgres",
		"pgx/v5":   "postgres",
		"postgres": "postgres",
		"mysql":    "mysql",
	} {
		d, err := sqldialect.ForDriver(driver)
		if err != nil || d.Name() != want || d.String() != want {
			t.Errorf("ForDriver(%q) = %v, %v; want %s", driver, d, err, want)
		}
		db, err := sqldialect.For(sqlx.NewDb(&sql.DB{}, driver))
		if err != nil || d != db {
			t.Errorf("For(driver %q) = %v, %v; want %v", driver, db, err, d)
		}
	}
	for _, driver := range []string{"", "sqlite4", "SQLite3", "oracle", "MySQL", "pq"} {
		_, err := sqldialect.ForDriver(driver)
		if err == nil || !strings.HasPrefix(err.Error(), "sqldialect: unsupported database/sql driver "+fmt.Sprintf("%q", driver)) {
			t.Errorf("ForDriver(%q): error %v", driver, err)
		}
		if _, err := sqldialect.For(sqlx.NewDb(&sql.DB{}, driver)); err == nil {
			t.Errorf("For(driver %q): no error", driver)
		}
	}
	if _, err := sqldialect.For(nil); err == nil || !strings.HasPrefix(err.Error(), "sqldialect: ") {
		t.Errorf("For(nil): error %v", err)
	}
}

func TestZeroDialect(t *testing.T) {
	var d sqldialect.Dialect
	if d.Name() != "" || d.IsLockTimeout(errors.New("x")) || d.IsUniqueViolation(&mysql.MySQLError{Number: 1062}) || d.IsSerializationFailure(&pgconn.PgError{Code: "40001"}) {
		t.Error("zero Dialect: non-empty name or an error classified")
	}
	for name, f := range map[string]func(){
		"Quote":     func() { d.Quote("x") },
		"Rebind":    func() { d.Rebind("?") },
		"TypeText":  func() { d.TypeText() },
		"TypeBool":  func() { d.TypeBool() },
		"ForUpdate": func() { d.ForUpdate() },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "sqldialect: use of the zero Dialect") {
					t.Errorf("%s on the zero Dialect: recovered %v", name, r)
				}
			}()
			f()
		}()
	}
}

func TestRebind(t *testing.T) {
	ds := dialects(t)
	const q = "SELECT a FROM t WHERE a = ? AND b IN (?, ?)"
	for name, want := range map[string]string{
		"sqlite":   q,
		"mysql":    q,
		"postgres": "SELECT a FROM t WHERE a = $1 AND b IN ($2, $3)",
	} {
		if got := ds[name].Rebind(q); got != want {
			t.Errorf("%s: Rebind = %q, want %q", name, got, want)
		}
	}
	if ds["postgres"].BindType() != sqlx.DOLLAR || ds["mysql"].BindType() != sqlx.QUESTION || ds["sqlite"].BindType() != sqlx.QUESTION {
		t.Error("BindType")
	}
}

func TestValidIdentifier(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, s := range []string{
		"a", "_", "users", "Users", "_x1", "user_events", long, "select", "order", "user", "group",
		"public.users", "s.t", long + "." + long, "A_9.b_8", "_._",
	} {
		if err := sqldialect.ValidIdentifier(s); err != nil {
			t.Errorf("ValidIdentifier(%q) = %v", s, err)
		}
	}
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{".", "schema part: empty"},
		{"a.", "name part after the dot: empty"},
		{".a", "schema part: empty"},
		{"a.b.c", "more than one dot"},
		{long + "a", "64 bytes long; at most 63"},
		{"1abc", "starts with the digit '1'"},
		{"users; DROP TABLE x", "character ';' at byte 5"},
		{"users;DROP", "character ';' at byte 5"},
		{`a"b`, `character '"' at byte 1`},
		{"a`b", "character '`' at byte 1"},
		{"a'b", `character '\'' at byte 1`},
		{"a-b", "character '-' at byte 1"},
		{"a b", "character ' ' at byte 1"},
		{"a\x00b", `character '\x00' at byte 1`},
		{"a\nb", `character '\n' at byte 1`},
		{"us\u0435rs", "non-ASCII character '\u0435' (U+0435) at byte 2"}, // Cyrillic e
		{"\uff55sers", "non-ASCII character '\uff55' (U+FF55) at byte 0"}, // fullwidth u
		{"caf\u00e9", "non-ASCII character 'é' (U+00E9) at byte 3"},
		{"a\xffb", "invalid UTF-8 byte 0xff at byte 1"},
		{"s.users--", "name part after the dot: character '-' at byte 5"},
		{"x y.z", "schema part: character ' ' at byte 1"},
		{strings.Repeat("b", 200) + ";", "character ';' at byte 200"},
	} {
		err := sqldialect.ValidIdentifier(tc.in)
		if err == nil {
			t.Errorf("ValidIdentifier(%q) = nil, want an error", tc.in)
			continue
		}
		msg := err.Error()
		shown := tc.in
		if len(shown) > 80 {
			shown = shown[:80] + "..."
		}
		if !errors.Is(err, sqldialect.ErrInvalidIdentifier) ||
			!strings.HasPrefix(msg, fmt.Sprintf("sqldialect: invalid SQL identifier %q: ", shown)) ||
			!strings.Contains(msg, tc.why) {
			t.Errorf("ValidIdentifier(%q) = %q, want it to name the input, say %q and wrap ErrInvalidIdentifier", tc.in, msg, tc.why)
		}
	}
}

func TestQuote(t *testing.T) {
	ds := dialects(t)
	for _, tc := range []struct{ in, dq, bq string }{
		{"users", `"users"`, "`users`"},
		{"select", `"select"`, "`select`"},
		{`a"b`, `"a""b"`, "`a\"b`"},
		{"a`b", "\"a`b\"", "`a``b`"},
		{"a.b", `"a.b"`, "`a.b`"},
		{`"`, `""""`, "`\"`"},
		{"", `""`, "``"},
	} {
		if got := ds["sqlite"].Quote(tc.in); got != tc.dq {
			t.Errorf("sqlite Quote(%q) = %s, want %s", tc.in, got, tc.dq)
		}
		if got := ds["postgres"].Quote(tc.in); got != tc.dq {
			t.Errorf("postgres Quote(%q) = %s, want %s", tc.in, got, tc.dq)
		}
		if got := ds["mysql"].Quote(tc.in); got != tc.bq {
			t.Errorf("mysql Quote(%q) = %s, want %s", tc.in, got, tc.bq)
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	ds := dialects(t)
	for _, tc := range []struct{ in, dq, bq string }{
		{"users", `"users"`, "`users`"},
		{"Order", `"Order"`, "`Order`"},
		{"app.users", `"app"."users"`, "`app`.`users`"},
	} {
		for name, want := range map[string]string{"sqlite": tc.dq, "postgres": tc.dq, "mysql": tc.bq} {
			got, err := ds[name].QuoteIdent(tc.in)
			if err != nil || got != want {
				t.Errorf("%s QuoteIdent(%q) = %s, %v; want %s", name, tc.in, got, err, want)
			}
		}
	}
	for _, in := range []string{"", "a.b.c", `x"; DROP TABLE users; --`, "x`; DROP TABLE users; --", "\uff55sers"} {
		got, err := ds["mysql"].QuoteIdent(in)
		if got != "" || !errors.Is(err, sqldialect.ErrInvalidIdentifier) || !strings.HasPrefix(err.Error(), "sqldialect: ") {
			t.Errorf("QuoteIdent(%q) = %q, %v", in, got, err)
		}
	}
}

func TestTypes(t *testing.T) {
	ds := dialects(t)
	type types struct{ key, text, bigint, ts, boolean, bytes, pk, forUpdate string }
	get := func(d sqldialect.Dialect) types {
		return types{d.TypeKeyText(), d.TypeText(), d.TypeBigInt(), d.TypeTimestamp(), d.TypeBool(), d.TypeBytes(), d.AutoIncrementPK(), d.ForUpdate()}
	}
	for name, want := range map[string]types{
		"sqlite":   {"TEXT", "TEXT", "INTEGER", "INTEGER", "SMALLINT", "BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT", ""},
		"postgres": {`TEXT COLLATE "C"`, `TEXT COLLATE "C"`, "BIGINT", "BIGINT", "SMALLINT", "BYTEA", "BIGSERIAL PRIMARY KEY", " FOR UPDATE"},
		"mysql": {"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
			"BIGINT", "BIGINT", "SMALLINT", "LONGBLOB", "BIGINT AUTO_INCREMENT PRIMARY KEY", " FOR UPDATE"},
	} {
		if got := get(ds[name]); got != want {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestEncodeDecodeTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("UTC-5", -5*3600)
	}
	for _, tm := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, ny),
		time.Date(1969, 12, 31, 23, 59, 59, 500, time.UTC), // before the epoch, sub-microsecond
		time.Unix(0, 0),
		time.Now(),
		{},
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
	} {
		got := sqldialect.DecodeTime(sqldialect.EncodeTime(tm))
		if !got.Equal(tm.Truncate(time.Microsecond)) || got.Location() != time.UTC {
			t.Errorf("round trip of %v = %v", tm, got)
		}
		if tm.IsZero() != got.IsZero() {
			t.Errorf("round trip of %v: IsZero %v", tm, got.IsZero())
		}
	}
	if got := sqldialect.EncodeTime(time.Unix(1, 2000)); got != 1_000_002 {
		t.Errorf("EncodeTime(1s+2µs) = %d", got)
	}
	a, b := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 1000, time.UTC)
	if sqldialect.EncodeTime(a) >= sqldialect.EncodeTime(b) {
		t.Error("encoded times do not sort like times")
	}
}

// sqliteError stands in for modernc.org/sqlite's *Error, which has a
// Code() int method and no exported fields.
type sqliteError int

func (e sqliteError) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteError) Code() int     { return int(e) }

func TestErrorClassification(t *testing.T) {
	ds := dialects(t)
	type want struct{ lock, unique, serial bool }
	for _, tc := range []struct {
		dialect string
		err     error
		want    want
	}{
		{"postgres", &pgconn.PgError{Code: "55P03"}, want{lock: true}},
		{"postgres", &pgconn.PgError{Code: "23505"}, want{unique: true}},
		{"postgres", &pgconn.PgError{Code: "40001"}, want{serial: true}},
		{"postgres", &pgconn.PgError{Code: "40P01"}, want{serial: true}},
		{"postgres", &pgconn.PgError{Code: "57014"}, want{}}, // statement_timeout
		{"postgres", &pgconn.PgError{Code: "23503"}, want{}}, // foreign key
		{"postgres", &mysql.MySQLError{Number: 1062}, want{}},
		{"mysql", &mysql.MySQLError{Number: 1205}, want{lock: true}},
		{"mysql", &mysql.MySQLError{Number: 3572}, want{lock: true}},
		{"mysql", &mysql.MySQLError{Number: 1062}, want{unique: true}},
		{"mysql", &mysql.MySQLError{Number: 1586}, want{unique: true}},
		{"mysql", &mysql.MySQLError{Number: 1213}, want{serial: true}},
		{"mysql", &mysql.MySQLError{Number: 1020}, want{serial: true}},
		{"mysql", &mysql.MySQLError{Number: 1048}, want{}}, // NOT NULL
		{"mysql", &pgconn.PgError{Code: "23505"}, want{}},
		{"sqlite", sqliteError(5), want{lock: true, serial: true}},   // SQLITE_BUSY
		{"sqlite", sqliteError(517), want{lock: true, serial: true}}, // SQLITE_BUSY_SNAPSHOT
		{"sqlite", sqliteError(6), want{lock: true}},                 // SQLITE_LOCKED
		{"sqlite", sqliteError(2067), want{unique: true}},            // SQLITE_CONSTRAINT_UNIQUE
		{"sqlite", sqliteError(1555), want{unique: true}},            // SQLITE_CONSTRAINT_PRIMARYKEY
		{"sqlite", sqliteError(1299), want{}},                        // SQLITE_CONSTRAINT_NOTNULL
		{"sqlite", sqliteError(19), want{}},                          // SQLITE_CONSTRAINT
		{"sqlite", &mysql.MySQLError{Number: 1205}, want{}},
		{"postgres", nil, want{}},
		{"mysql", errors.New("Error 1205: Lock wait timeout exceeded"), want{}}, // text alone is not enough
		{"postgres", sql.ErrNoRows, want{}},
	} {
		d := ds[tc.dialect]
		for _, err := range []error{tc.err, fmt.Errorf("wrapped: %w", tc.err)} {
			if tc.err == nil {
				err = nil
			}
			got := want{d.IsLockTimeout(err), d.IsUniqueViolation(err), d.IsSerializationFailure(err)}
			if got != tc.want {
				t.Errorf("%s %v: (lock, unique, serialization) = %+v, want %+v", tc.dialect, err, got, tc.want)
			}
		}
	}
}

// identRE is the documented grammar of an accepted identifier.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)
