package expandcontract_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// manualReader returns a manual reader and a meter provider that reports
// to it, shut down when the test ends.
func manualReader(t *testing.T) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return reader, mp
}

// statusGauges collects reader once and returns the points of the status
// gauges, by name without the prefix cutover.expandcontract.status., the
// migration and, for the instances, the stage: "backfill.rows users",
// "instances users shadow".
func statusGauges(t *testing.T, reader *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name, ok := strings.CutPrefix(m.Name, "cutover.expandcontract.status.")
			if !ok {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[pointKey(name, p.Attributes.ToSlice())] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[pointKey(name, p.Attributes.ToSlice())] = p.Value
				}
			default:
				t.Errorf("%s is a %T, not a gauge", m.Name, m.Data)
			}
		}
	}
	return out
}

// pointKey is name, then the migration and the stage of attrs.
func pointKey(name string, attrs []attribute.KeyValue) string {
	key := name
	for _, k := range []string{"cutover.migration", "cutover.stage"} {
		for _, a := range attrs {
			if string(a.Key) == k {
				key += " " + a.Value.Emit()
			}
		}
	}
	return key
}

// TestStatusGaugesFromAStoreThatRunsNothing reads the gauges of a store
// opened with a meter provider on a second connection pool, which runs no
// backfill and no repairer, while another store runs a backfill, records
// repairs and repairs some: the gauges show the metadata of every
// migration, at each collection, until the store is closed.
func TestStatusGaugesFromAStoreThatRunsNothing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		c := ectest.NewClock()
		worker := ectest.Open(t, db.DB, c)
		pool, err := sqlx.Open(db.DriverName(), db.DSN)
		require.NoError(t, err)
		t.Cleanup(func() { pool.Close() })
		reader, mp := manualReader(t)
		watcher := ectest.Open(t, pool, c, expandcontract.WithMeterProvider(mp))
		assert.Empty(t, statusGauges(t, reader), "no migration yet")

		createStock(t, db, 60)
		ectest.Ensure(t, worker, "accounts")
		m := ectest.ToBackfill(t, worker, "users")
		log, err := repair.NewLog(m)
		require.NoError(t, err)
		for _, key := range []string{"1", "2", "3"} {
			require.NoError(t, log.Record(ctx, repairOf(key)))
		}
		repairer, err := repair.New(log, failKeys("1", "3"), repair.WithMaxAttempts(1))
		require.NoError(t, err)
		t.Cleanup(func() { _ = repairer.Close() })
		_, err = repairer.RunOnce(ctx)
		require.NoError(t, err)
		require.NoError(t, log.Record(ctx, repairOf("4")))
		require.NoError(t, m.ReportStage(ctx, "web-1", cutover.Shadow))
		require.NoError(t, m.ReportStage(ctx, "web-2", cutover.DualWrite))

		var during map[string]float64
		bf, err := backfill.New(m, backfill.Keyset{Table: "stock", Column: "id"}, copyStock(c, time.Second),
			backfill.WithBatchSize(10), backfill.WithProgress(func(p backfill.Progress) {
				if p.Batches == 3 && !p.Done {
					during = statusGauges(t, reader)
				}
			}))
		require.NoError(t, err)
		require.NoError(t, bf.Run(ctx))
		require.NotNil(t, during)
		assert.Positive(t, during["backfill.rate users"], "measured by the runner of the other store")
		assert.Positive(t, during["backfill.eta users"])
		delete(during, "backfill.rate users")
		delete(during, "backfill.eta users")
		want := map[string]float64{
			"phase users": 2, "backfill.rows users": 30, "backfill.total users": 60,
			"repairs.pending users": 3, "repairs.stuck users": 2,
			"phase accounts": 0, "backfill.rows accounts": 0, "backfill.total accounts": 0, "backfill.rate accounts": 0,
			"backfill.eta accounts": 0, "repairs.pending accounts": 0, "repairs.stuck accounts": 0,
			"backfill.throttled users": 0, "backfill.throttled accounts": 0,
			"ceiling users": -1, "ceiling accounts": -1,
		}
		for _, stage := range cutover.Stages {
			want["instances accounts "+stage.String()] = 0
			want["instances users "+stage.String()] = 0
		}
		want["instances users shadow"], want["instances users dualwrite"] = 1, 1
		assert.Equal(t, want, during, "no verification yet: no verification gauges")

		require.NoError(t, m.RecordVerification(ctx, expandcontract.Verification{Clean: true, Rows: 60}))
		c.Advance(90 * time.Second)
		after := statusGauges(t, reader)
		want["backfill.rows users"] = 60
		want["backfill.rate users"], want["backfill.eta users"] = 0, 0
		want["verification.age users"], want["verification.clean users"], want["verification.differences users"] = 90, 1, 0
		assert.Equal(t, want, after)

		require.NoError(t, watcher.Close())
		assert.Empty(t, statusGauges(t, reader), "closed: no gauges")
		require.NoError(t, watcher.Close(), "a second Close")
		_, err = ectest.Migration(t, watcher, "users").State(ctx)
		assert.NoError(t, err, "the store works on after Close")
	})
}

// TestStatusGaugesThrottled holds a backfill with a throttle hook: the
// throttled gauge is 1 while the hook holds it, read through another
// store, and 0 once the run gave back its lease.
func TestStatusGaugesThrottled(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		worker := ectest.Open(t, db.DB, nil)
		pool, err := sqlx.Open(db.DriverName(), db.DSN)
		require.NoError(t, err)
		t.Cleanup(func() { pool.Close() })
		reader, mp := manualReader(t)
		ectest.Open(t, pool, nil, expandcontract.WithMeterProvider(mp))
		createStock(t, db, 10)
		m := ectest.ToBackfill(t, worker, "users")
		bf, err := backfill.New(m, backfill.Keyset{Table: "stock", Column: "id"}, copyStock(ectest.NewClock(), 0),
			backfill.WithPollInterval(10*time.Millisecond),
			backfill.WithThrottle(func(context.Context) (time.Duration, error) { return time.Hour, nil }))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- bf.Run(ctx) }()
		deadline := time.Now().Add(30 * time.Second)
		for statusGauges(t, reader)["backfill.throttled users"] != 1 {
			require.True(t, time.Now().Before(deadline), "waited 30s for the throttled gauge to be 1")
			time.Sleep(20 * time.Millisecond)
		}
		st, err := m.Status(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "throttle hook: wait 1h0m0s", st.State.Backfill.Throttled)
		cancel()
		require.ErrorIs(t, ectest.RunEnds(t, done, "its context was canceled"), context.Canceled)
		assert.Zero(t, statusGauges(t, reader)["backfill.throttled users"])
	})
}

// TestStatusGaugesLeaveOutCorruptRows checks that one corrupt migration
// row leaves the gauges of the others as they are.
func TestStatusGaugesLeaveOutCorruptRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		reader, mp := manualReader(t)
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithMeterProvider(mp))
		ectest.Ensure(t, s, "accounts")
		ectest.ToBackfill(t, s, "users")
		require.NoError(t, ectest.Migration(t, s, "users").ReportStage(t.Context(), "web-1", cutover.Shadow))
		_, err := db.ExecContext(t.Context(), `UPDATE cutover_migrations SET phase = 'sideways' WHERE name = 'accounts'`)
		require.NoError(t, err)
		got := statusGauges(t, reader)
		assert.Equal(t, 2.0, got["phase users"])
		assert.Equal(t, 1.0, got["instances users shadow"])
		_, ok := got["phase accounts"]
		assert.False(t, ok, "the corrupt row is left out")
	})
}
