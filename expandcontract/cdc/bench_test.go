package cdc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract/cdc"
)

// BenchmarkApplyRate measures how fast an applier with SQLApply applies a
// backlog of the log to a PostgreSQL new store, in changes per second:
// b.N rounds of 1000 inserts, in transactions of 10 rows, 500 updates and
// 500 deletes (2000 changes a round) written to the old database while no
// applier runs, then applied from the start of the applier until the new
// store has the last. The floor is the same upserts and deletes run
// straight on the new store from Go, one statement a change, 1000
// changes a transaction as the applier groups them: what the new store's
// writes cost without the log. It reports changes/s, floor-changes/s and
// x-floor (the applier's rate over the floor's).
func BenchmarkApplyRate(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	rounds := b.N
	// The backlog, written before the clock starts.
	apply, err := cdc.SQLApply(f.new.DB, cdc.Table{Source: "items"})
	require.NoError(b, err)
	a, err := cdc.New(f.mig, f.source(), f.new.DB, apply, cdc.WithFlushInterval(5*time.Millisecond),
		cdc.WithPollInterval(100*time.Millisecond), cdc.WithStatusInterval(100*time.Millisecond))
	require.NoError(b, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	for wait := time.Now().Add(30 * time.Second); slots(b, f.old.DB) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(wait) {
			b.Fatal("waited 30s for the applier to create the slot")
		}
	}
	cancel()
	<-done
	b.Cleanup(func() { _ = a.Drop(context.Background()) })
	for r := range rounds {
		base := r * 1000
		for i := 0; i < 1000; i += 10 {
			f.old.MustExec(`INSERT INTO items SELECT g, 'v' || g, g FROM generate_series($1::bigint, $2::bigint) AS g`, base+i, base+i+9)
		}
		f.old.MustExec(`UPDATE items SET v = 'u', n = n + 1 WHERE id >= $1 AND id < $2`, base, base+500)
		f.old.MustExec(`DELETE FROM items WHERE id >= $1 AND id < $2`, base+500, base+1000)
	}
	changes := float64(rounds * 2000)
	want := rounds * 500

	b.ResetTimer()
	t0 := time.Now()
	runCtx, cancel = context.WithCancel(ctx)
	go func() { done <- a.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var n, u int
		require.NoError(b, f.new.GetContext(ctx, &n, `SELECT count(*) FROM items`))
		require.NoError(b, f.new.GetContext(ctx, &u, `SELECT count(*) FROM items WHERE v = 'u'`))
		if n == want && u == want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the applier did not apply the backlog in 10 minutes: %d rows, %d updated, want %d", n, u, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	applied := time.Since(t0)
	b.StopTimer()
	cancel()
	<-done

	// The floor, on a table of its own.
	f.new.MustExec(`CREATE TABLE floor (id bigint PRIMARY KEY, v text, n integer)`)
	upsert := `INSERT INTO floor (id, v, n) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = excluded.v, n = excluded.n`
	t0 = time.Now()
	for r := range rounds {
		base := int64(r * 1000)
		tx := f.new.MustBegin()
		for i := int64(0); i < 1000; i++ {
			tx.MustExec(upsert, base+i, fmt.Sprint("v", base+i), int32(base+i))
		}
		require.NoError(b, tx.Commit())
		tx = f.new.MustBegin()
		for i := int64(0); i < 500; i++ {
			tx.MustExec(upsert, base+i, "u", int32(base+i+1))
		}
		for i := int64(500); i < 1000; i++ {
			tx.MustExec(`DELETE FROM floor WHERE id = $1`, base+i)
		}
		require.NoError(b, tx.Commit())
	}
	floor := time.Since(t0)
	rate, floorRate := changes/applied.Seconds(), changes/floor.Seconds()
	b.ReportMetric(rate, "changes/s")
	b.ReportMetric(floorRate, "floor-changes/s")
	b.ReportMetric(rate/floorRate, "x-floor")
}
