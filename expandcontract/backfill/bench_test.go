package backfill_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/internal/testutil/keyset"
)

// BenchmarkBackfillPostgres copies a column of 1,000,000 rows on
// PostgreSQL with the runner (an SQLBatch, each batch committed with its
// checkpoint) and with a hand-written keyset loop doing the same batches
// without a checkpoint (select the last key of the next batch, update the
// range, commit), in the same iteration, in an order that alternates from
// one iteration (or -count) to the next. It
// reports the rows per second of each and their ratio.
func BenchmarkBackfillPostgres(b *testing.B) {
	const rows = 1_000_000
	db := testdb.Postgres(b)
	ctx := context.Background()
	s, err := expandcontract.Open(ctx, db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	fill := func(b *testing.B, table string) {
		b.Helper()
		for _, q := range []string{
			`DROP TABLE IF EXISTS ` + table,
			`CREATE TABLE ` + table + ` (id BIGINT PRIMARY KEY, customer_phone TEXT NOT NULL, phone_number TEXT)`,
			`INSERT INTO ` + table + ` (id, customer_phone) SELECT g, '+1-555-' || g FROM generate_series(1, ` + strconv.Itoa(rows) + `) AS g`,
			`VACUUM ANALYZE ` + table,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
	}
	check := func(b *testing.B, table string) {
		b.Helper()
		var n int
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+table+` WHERE phone_number IS DISTINCT FROM customer_phone`); err != nil {
			b.Fatal(err)
		}
		if n != 0 {
			b.Fatalf("%s: %d rows not copied", table, n)
		}
	}

	runs := 0 // names a new migration for each iteration, over every -count
	for _, batch := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var runnerTime, loopTime time.Duration
			for range b.N {
				b.StopTimer()
				fill(b, "bench_runner")
				fill(b, "bench_loop")
				runs++
				name := fmt.Sprintf("bench-%d", runs)
				if _, err := ectest.Migration(b, s, name).Ensure(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
				for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
					if _, err := ectest.Migration(b, s, name).Move(ctx, expandcontract.Move{To: p, Actor: "bench"}); err != nil {
						b.Fatal(err)
					}
				}
				bf, err := backfill.New(ectest.Migration(b, s, name), backfill.Keyset{Table: "bench_runner", Column: "id"},
					backfill.SQLBatch(`UPDATE bench_runner SET phone_number = customer_phone WHERE id > :from AND id <= :to`),
					backfill.WithBatchSize(batch))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()

				runner := func() {
					start := time.Now()
					if err := bf.Run(ctx); err != nil {
						b.Fatal(err)
					}
					runnerTime += time.Since(start)
				}
				loop := func() {
					start := time.Now()
					if err := keyset.Loop(ctx, db, "bench_loop", "phone_number = customer_phone", batch); err != nil {
						b.Fatal(err)
					}
					loopTime += time.Since(start)
				}
				if runs%2 == 0 {
					runner()
					loop()
				} else {
					loop()
					runner()
				}

				b.StopTimer()
				check(b, "bench_runner")
				check(b, "bench_loop")
				b.StartTimer()
			}
			runnerRate := float64(rows*b.N) / runnerTime.Seconds()
			loopRate := float64(rows*b.N) / loopTime.Seconds()
			b.ReportMetric(runnerRate, "runner-rows/s")
			b.ReportMetric(loopRate, "loop-rows/s")
			b.ReportMetric(runnerRate/loopRate, "runner/loop")
		})
	}
}

// BenchmarkBackfillBatchCost runs the runner over 2,000 rows in batches of
// 10 keys, on SQLite and PostgreSQL, so that what a batch costs beyond its
// copy (the scan of its keys, the checkpoint, the commit) is most of the
// time, and reports it per batch.
func BenchmarkBackfillBatchCost(b *testing.B) {
	const rows, batch = 2000, 10
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			db := testdb.Open(b, name)
			ctx := context.Background()
			s, err := expandcontract.Open(ctx, db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `CREATE TABLE bench (id `+db.Dialect.TypeBigInt()+` PRIMARY KEY, v `+
				db.Dialect.TypeBigInt()+`, copy `+db.Dialect.TypeBigInt()+`)`); err != nil {
				b.Fatal(err)
			}
			for id := 1; id <= rows; id++ {
				if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO bench (id, v) VALUES (?, ?)`), id, id); err != nil {
					b.Fatal(err)
				}
			}
			var elapsed time.Duration
			for i := range b.N {
				b.StopTimer()
				if _, err := db.ExecContext(ctx, `UPDATE bench SET copy = NULL`); err != nil {
					b.Fatal(err)
				}
				name := fmt.Sprintf("bench-%d", i)
				if _, err := ectest.Migration(b, s, name).Ensure(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
				for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
					if _, err := ectest.Migration(b, s, name).Move(ctx, expandcontract.Move{To: p, Actor: "bench"}); err != nil {
						b.Fatal(err)
					}
				}
				bf, err := backfill.New(ectest.Migration(b, s, name), backfill.Keyset{Table: "bench", Column: "id"},
					backfill.SQLBatch(`UPDATE bench SET copy = v WHERE id > :from AND id <= :to`),
					backfill.WithBatchSize(batch), backfill.WithTotal(rows))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if err := bf.Run(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*rows/batch), "ns/batch")
		})
	}
}
