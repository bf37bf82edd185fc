package verify_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// BenchmarkVerifyPostgres compares 1,000,000 equal rows of two PostgreSQL
// tables with Verify, and with a hand-written comparison of the same rows
// for reference: two SELECT streams ordered by key, merge-joined in Go.
// Verify also compares two columns of one of the tables. Every case
// reports rows/s; the Verify cases also report their speed as a multiple
// of the hand-written one's in the same run.
//
//	go test -run '^$' -bench VerifyPostgres -benchtime 5x ./expandcontract/
func BenchmarkVerifyPostgres(b *testing.B) {
	const n = 1_000_000
	db := testdb.Postgres(b)
	ctx := context.Background()
	for _, table := range []string{"old_t", "new_t"} {
		createTable(b, db, table, expandcontract.IntKeys)
	}
	fillTable(b, db, "old_t", expandcontract.IntKeys, n)
	for _, q := range []string{`INSERT INTO new_t SELECT * FROM old_t`, `VACUUM ANALYZE old_t`, `VACUUM ANALYZE new_t`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	s, err := expandcontract.Open(ctx, db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ectest.Migration(b, s, "m").Ensure(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	old := &verify.SQLRows{DB: db.DB, Table: "old_t", Key: "id", Kind: expandcontract.IntKeys, Value: "v"}
	new := &verify.SQLRows{DB: db.DB, Table: "new_t", Key: "id", Kind: expandcontract.IntKeys, Value: "v"}

	var handRate float64
	rate := func(b *testing.B) float64 { return float64(n) * float64(b.N) / b.Elapsed().Seconds() }
	b.Run("handwritten", func(b *testing.B) {
		for b.Loop() {
			diffs, err := mergeJoin(ctx, db.DB, "old_t", "new_t")
			if err != nil || diffs != 0 {
				b.Fatalf("%d differences, error %v", diffs, err)
			}
		}
		handRate = rate(b)
		b.ReportMetric(handRate, "rows/s")
	})
	column := &verify.SQLRows{DB: db.DB, Table: "old_t", Key: "id", Kind: expandcontract.IntKeys, Value: "v2"}
	for _, bc := range []struct {
		name     string
		old, new verify.RowSource
		chunk    int
	}{
		{"verify/tables", old, new, verify.DefaultChunkSize},
		{"verify/tables/chunk=1000", old, new, 1000},
		{"verify/columns", old, column, verify.DefaultChunkSize},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				res, err := ectest.Verify(ctx, ectest.Migration(b, s, "m"), bc.old, bc.new, verify.WithChunkSize(bc.chunk))
				if err != nil || !res.Clean() || res.Rows != n {
					b.Fatalf("result %+v, error %v", res, err)
				}
			}
			r := rate(b)
			b.ReportMetric(r, "rows/s")
			if handRate > 0 {
				b.ReportMetric(r/handRate, "x_handwritten")
			}
		})
	}
}

// mergeJoin compares the id and v columns of two tables by reading both in
// id order at once and returns the number of differing keys.
func mergeJoin(ctx context.Context, db *sqlx.DB, oldTable, newTable string) (int, error) {
	open := func(table string) (*sql.Rows, error) {
		return db.QueryContext(ctx, `SELECT id, v FROM `+table+` ORDER BY id`)
	}
	or, err := open(oldTable)
	if err != nil {
		return 0, err
	}
	defer or.Close()
	nr, err := open(newTable)
	if err != nil {
		return 0, err
	}
	defer nr.Close()
	var (
		ok, nk   int64
		ov, nv   sql.RawBytes
		oon, non = or.Next(), nr.Next()
		diffs    int
	)
	scan := func(r *sql.Rows, more bool, k *int64, v *sql.RawBytes) error {
		if more {
			return r.Scan(k, v)
		}
		return nil
	}
	if err := scan(or, oon, &ok, &ov); err != nil {
		return 0, err
	}
	if err := scan(nr, non, &nk, &nv); err != nil {
		return 0, err
	}
	for oon || non {
		switch {
		case oon && (!non || ok < nk):
			diffs++
			oon = or.Next()
			err = scan(or, oon, &ok, &ov)
		case non && (!oon || nk < ok):
			diffs++
			non = nr.Next()
			err = scan(nr, non, &nk, &nv)
		default:
			if !bytes.Equal(ov, nv) {
				diffs++
			}
			oon, non = or.Next(), nr.Next()
			if err = scan(or, oon, &ok, &ov); err == nil {
				err = scan(nr, non, &nk, &nv)
			}
		}
		if err != nil {
			return 0, err
		}
	}
	if err := or.Err(); err != nil {
		return 0, err
	}
	return diffs, nr.Err()
}
