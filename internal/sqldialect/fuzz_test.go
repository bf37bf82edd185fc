package sqldialect_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// unquote undoes Quote with quote character q, and reports false if s is
// not exactly one quoted identifier: it must start and end with q, and
// every q inside must be doubled.
func unquote(s, q string) (string, bool) {
	if len(s) < 2 || !strings.HasPrefix(s, q) || !strings.HasSuffix(s, q) {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if strings.Count(inner, q)%2 != 0 || strings.Contains(strings.ReplaceAll(inner, q+q, ""), q) {
		return "", false
	}
	return strings.ReplaceAll(inner, q+q, q), true
}

// openFuzzDB opens an in-memory SQLite database for the inputs of one fuzz
// target, with one table, "keep-me", that no input may touch, and closes
// it when the target ends.
func openFuzzDB(f *testing.F) *sqlx.DB {
	db, err := sqlx.Open("sqlite", "file::memory:")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1) // one connection, one in-memory database
	if _, err := db.Exec(`CREATE TABLE "keep-me" (x INTEGER); INSERT INTO "keep-me" VALUES (42)`); err != nil {
		f.Fatal(err)
	}
	return db
}

var fuzzMu sync.Mutex

// FuzzValidIdentifier checks that ValidIdentifier accepts exactly the
// documented grammar; that Quote of any string is one quoted identifier
// that unquotes to the string on every dialect; that QuoteIdent agrees
// with ValidIdentifier; and that on a real SQLite database CREATE TABLE
// with Quote(s) as the name either fails or creates one table named
// exactly s, touching nothing else, and succeeds for accepted names.
func FuzzValidIdentifier(f *testing.F) {
	f.Add("users")
	f.Add(`x"; DROP TABLE "keep-me"; --`)
	ds := dialects(f)
	db := openFuzzDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		err := sqldialect.ValidIdentifier(s)
		accepted := err == nil
		if accepted != identRE.MatchString(s) {
			t.Fatalf("ValidIdentifier(%q) = %v, but the grammar match is %v", s, err, identRE.MatchString(s))
		}
		if !accepted && (!errors.Is(err, sqldialect.ErrInvalidIdentifier) || !strings.HasPrefix(err.Error(), "sqldialect: ")) {
			t.Fatalf("ValidIdentifier(%q) = %v", s, err)
		}
		for name, d := range ds {
			q := `"`
			if name == "mysql" {
				q = "`"
			}
			quoted := d.Quote(s)
			if got, ok := unquote(quoted, q); !ok || got != s {
				t.Fatalf("%s: Quote(%q) = %s, not one quoted identifier for it", name, s, quoted)
			}
			qi, err := d.QuoteIdent(s)
			if (err == nil) != accepted {
				t.Fatalf("%s: QuoteIdent(%q) error %v, ValidIdentifier %v", name, s, err, accepted)
			}
			if accepted {
				var parts []string
				for _, p := range strings.Split(s, ".") {
					parts = append(parts, d.Quote(p))
				}
				if want := strings.Join(parts, "."); qi != want {
					t.Fatalf("%s: QuoteIdent(%q) = %s, want %s", name, s, qi, want)
				}
			}
		}

		fuzzMu.Lock()
		defer fuzzMu.Unlock()
		ctx := context.Background()
		_, createErr := db.ExecContext(ctx, "CREATE TABLE "+ds["sqlite"].Quote(s)+" (x INTEGER)")
		var tables []string
		if err := db.SelectContext(ctx, &tables, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"); err != nil {
			t.Fatal(err)
		}
		if createErr == nil {
			if !slices.Equal(tables, []string{"keep-me", s}) && !slices.Equal(tables, []string{s, "keep-me"}) {
				t.Fatalf("CREATE TABLE Quote(%q) made tables %q", s, tables)
			}
			if _, err := db.ExecContext(ctx, "DROP TABLE "+ds["sqlite"].Quote(s)); err != nil {
				t.Fatalf("DROP TABLE Quote(%q): %v", s, err)
			}
		} else if !slices.Equal(tables, []string{"keep-me"}) {
			t.Fatalf("failed CREATE TABLE Quote(%q) (%v) left tables %q", s, createErr, tables)
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM "keep-me" WHERE x = 42`); err != nil || n != 1 {
			t.Fatalf("after %q: keep-me has %d rows, %v", s, n, err)
		}
		// Accepted single names work as table names, except those SQLite
		// keeps for itself.
		reserved := strings.HasPrefix(strings.ToLower(s), "sqlite_")
		if accepted && !strings.Contains(s, ".") && !reserved && createErr != nil {
			t.Fatalf("CREATE TABLE with accepted name %q: %v", s, createErr)
		}
	})
}
