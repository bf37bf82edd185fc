package sqldialect_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

func TestByteOrderExpressions(t *testing.T) {
	ds := dialects(t)
	for name, want := range map[string]string{
		"sqlite":   `("k") COLLATE BINARY`,
		"postgres": `CAST(("k") AS TEXT) COLLATE "C"`,
		"mysql":    "CAST(CONVERT((`k`) USING utf8mb4) AS BINARY)",
	} {
		d := ds[name]
		if got := d.ByteOrder(d.Quote("k")); got != want {
			t.Errorf("%s: ByteOrder = %s, want %s", name, got, want)
		}
	}
}

// TestByteOrder sorts and compares text in columns of collations that
// order it otherwise: case-insensitive, linguistic, padded, and on MySQL
// in another character set.
func TestByteOrder(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		d := db.Dialect
		var cols []string // column types, each with a collation that is not byte order
		switch db.Name {
		case "sqlite":
			cols = []string{"TEXT COLLATE NOCASE", "TEXT COLLATE RTRIM", "TEXT"}
		case "postgres":
			cols = []string{`TEXT COLLATE "en-x-icu"`, `VARCHAR(100) COLLATE "und-x-icu"`, d.TypeKeyText()}
		case "mysql":
			cols = []string{"VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", d.TypeKeyText(),
				"VARCHAR(100) CHARACTER SET latin1 COLLATE latin1_swedish_ci"}
		}
		// Unique in every collation above (latin1 has no emoji and no ø).
		keys := []string{"b", "A", "_x", "-y", "\u00e9t\u00e9", "Zz", "tab", "tab\tx", "pad ", "a.b", "~"}
		want := slices.Clone(keys)
		slices.Sort(want)
		for i, typ := range cols {
			t.Run(typ, func(t *testing.T) {
				table := d.Quote("byte_order_" + string(rune('a'+i)))
				exec(t, db, "CREATE TABLE "+table+" (k "+typ+" PRIMARY KEY)")
				for _, k := range keys {
					if _, err := db.ExecContext(ctx, d.Rebind("INSERT INTO "+table+" (k) VALUES (?)"), k); err != nil {
						t.Fatalf("insert %q: %v", k, err)
					}
				}
				ord := d.ByteOrder("k")
				var got []string
				if err := db.SelectContext(ctx, &got, "SELECT k FROM "+table+" ORDER BY "+ord); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("ORDER BY %s: %q, want %q", ord, got, want)
				}
				for _, bound := range []string{"Zz", "_x", "tab", "pad", "\u00e9"} {
					var above []string
					if err := db.SelectContext(ctx, &above, d.Rebind("SELECT k FROM "+table+" WHERE "+ord+" > ? ORDER BY "+ord), bound); err != nil {
						t.Fatal(err)
					}
					i, _ := slices.BinarySearch(want, bound+"\x00")
					if wantAbove := want[i:]; !slices.Equal(above, wantAbove) && !(len(above) == 0 && len(wantAbove) == 0) {
						t.Errorf("%s > %q: %q, want %q", ord, bound, above, wantAbove)
					}
					var n int
					if err := db.GetContext(ctx, &n, d.Rebind("SELECT COUNT(*) FROM "+table+" WHERE "+ord+" = ?"), strings.ToUpper(bound)); err != nil {
						t.Fatal(err)
					}
					if wantN := len(slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k != strings.ToUpper(bound) })); n != wantN {
						t.Errorf("%s = %q matched %d rows, want %d", ord, strings.ToUpper(bound), n, wantN)
					}
				}
			})
		}
	})
}

// TestByteOrderUsesAnIndex checks the documented index use: on SQLite and
// PostgreSQL a column that already sorts in byte order keeps its index.
func TestByteOrderUsesAnIndex(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := testdb.Open(t, name)
			d := db.Dialect
			conn, err := db.Connx(ctx) // one session for the settings and the plan
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			exec(t, conn, "CREATE TABLE t (k "+d.TypeKeyText()+" PRIMARY KEY, v "+d.TypeText()+")")
			explain, uses := "EXPLAIN QUERY PLAN ", "USING COVERING INDEX"
			if name == "postgres" {
				exec(t, conn, "INSERT INTO t SELECT 'k' || i, 'v' FROM generate_series(1, 20000) AS g(i)", "ANALYZE t",
					"SET enable_seqscan = off")
				explain, uses = "EXPLAIN ", "Index"
			}
			ord := d.ByteOrder(d.Quote("k"))
			q := "SELECT COUNT(*) FROM t WHERE " + ord + " > 'k1' AND " + ord + " <= 'k2'"
			rows, err := conn.QueryxContext(ctx, explain+q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan strings.Builder
			for rows.Next() {
				cols, err := rows.SliceScan()
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cols {
					if b, ok := c.([]byte); ok {
						c = string(b)
					}
					fmt.Fprint(&plan, c, " ")
				}
				plan.WriteString("\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if p := plan.String(); !strings.Contains(p, uses) || strings.Contains(p, "Seq Scan") {
				t.Errorf("%s does not use the index:\n%s", q, p)
			}
		})
	}
}
