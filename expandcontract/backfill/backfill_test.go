package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// logSignal is a slog handler that sends the message of each record on a
// channel, so that a test can wait for the runner to reach a state.
type logSignal struct{ msgs chan string }

func newLogSignal() *logSignal { return &logSignal{msgs: make(chan string, 1024)} }

func (h *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logSignal) WithGroup(string) slog.Handler            { return h }
func (h *logSignal) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.msgs <- r.Message:
	default:
	}
	return nil
}

// wait returns once a record whose message contains want was logged.
func (h *logSignal) wait(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-h.msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no log message containing %q", want)
		}
	}
}

// secondPool opens another connection pool on the database of db, as
// another instance of the service would have.
func secondPool(t *testing.T, db *testdb.DB) *sqlx.DB {
	t.Helper()
	other, err := sqlx.Open(db.DriverName(), db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	return other
}

// intIDs are the keys of the customers table: multiples of 5 from -200
// up, with gaps, inserted out of order (n must be prime to 37).
func intIDs(n int) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i*37%n*5 - 200)
	}
	return ids
}

// textIDs are text keys with mixed case, digits and punctuation.
func textIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		switch i % 4 {
		case 0:
			ids[i] = fmt.Sprintf("user-%04d", i*37%1000)
		case 1:
			ids[i] = fmt.Sprintf("User_%d", i)
		case 2:
			ids[i] = fmt.Sprintf("%d.%d", i, i*i)
		default:
			ids[i] = fmt.Sprintf("z%c%d", 'A'+i%26, i)
		}
	}
	return ids
}

// createCustomers creates the customers table with keys of kind on db and
// fills it with ids: customer_phone set, phone_number empty, copies 0.
func createCustomers(t *testing.T, db *testdb.DB, kind expandcontract.KeyKind, ids []any) {
	t.Helper()
	createTable(t, db, "customers", kind, ids)
}

// createTable creates a table like customers.
func createTable(t *testing.T, db *testdb.DB, table string, kind expandcontract.KeyKind, ids []any) {
	t.Helper()
	d := db.Dialect
	keyType := d.TypeBigInt()
	if kind == expandcontract.TextKeys {
		keyType = d.TypeKeyText()
	}
	_, err := db.ExecContext(t.Context(), `CREATE TABLE `+table+` (id `+keyType+` PRIMARY KEY,
		customer_phone `+d.TypeKeyText()+` NOT NULL, phone_number `+d.TypeKeyText()+`,
		note `+d.TypeKeyText()+`, copies `+d.TypeBigInt()+` NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	insertCustomers(t, db.DB, d, table, ids)
}

func insertCustomers(t *testing.T, db *sqlx.DB, d sqldialect.Dialect, table string, ids []any) {
	t.Helper()
	for chunk := range slices.Chunk(ids, 100) {
		q := `INSERT INTO ` + table + ` (id, customer_phone) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ")
		var args []any
		for _, id := range chunk {
			args = append(args, id, fmt.Sprintf("+1-555-%v", id))
		}
		_, err := db.ExecContext(t.Context(), d.Rebind(q), args...)
		require.NoError(t, err)
	}
}

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// copySQL copies the phone column and counts the copies of each row.
const copySQL = `UPDATE customers SET phone_number = customer_phone, copies = copies + 1 WHERE id > :from AND id <= :to`

// copyRange is the copy of copySQL as a BatchFunc, which handles the
// first batch (a nil From) itself.
func copyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	return copyRangeOf("customers")(ctx, tx, r)
}

// copyRangeOf is copyRange on another table.
func copyRangeOf(table string) backfill.BatchFunc {
	return func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		return copyRangeIn(ctx, tx, table, r)
	}
}

func copyRangeIn(ctx context.Context, tx *sqlx.Tx, table string, r expandcontract.KeyRange) (int64, error) {
	q, args := `UPDATE `+table+` SET phone_number = customer_phone, copies = copies + 1 WHERE id <= ?`, []any{r.To}
	if r.From != nil {
		q += ` AND id > ?`
		args = append(args, r.From)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// checkCopiedOnce fails the test unless every row of table was copied
// exactly once.
func checkCopiedOnce(t *testing.T, db *sqlx.DB, table string, rows int) {
	t.Helper()
	var got []struct {
		ID     string  `db:"id"`
		Phone  string  `db:"customer_phone"`
		Copy   *string `db:"phone_number"`
		Copies int64   `db:"copies"`
	}
	text := "TEXT"
	if db.DriverName() == "mysql" {
		text = "CHAR"
	}
	require.NoError(t, db.SelectContext(t.Context(), &got,
		`SELECT CAST(id AS `+text+`) AS id, customer_phone, phone_number, copies FROM `+table))
	require.Len(t, got, rows)
	bad := 0
	for _, r := range got {
		if r.Copies != 1 || r.Copy == nil || *r.Copy != r.Phone {
			if bad++; bad <= 10 {
				t.Errorf("row %s copied %d times (phone_number %v)", r.ID, r.Copies, r.Copy)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more rows not copied exactly once", bad-10)
	}
}

func state(t *testing.T, s *expandcontract.Store, name string) expandcontract.BackfillState {
	t.Helper()
	m, err := ectest.Migration(t, s, name).State(t.Context())
	require.NoError(t, err)
	return m.Backfill
}

func events(t *testing.T, s *expandcontract.Store, name string) []string {
	t.Helper()
	evs, err := ectest.Migration(t, s, name).Events(t.Context())
	require.NoError(t, err)
	var out []string
	for _, e := range evs {
		if e.Kind == "backfill" {
			out = append(out, e.Detail)
		}
	}
	return out
}

// gauge collects the progress gauge of migration name from r.
func gauge(t *testing.T, r *sdkmetric.ManualReader, name string) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "cutover.expandcontract.backfill.progress" {
				for _, p := range g.DataPoints {
					if v, ok := p.Attributes.Value("cutover.migration"); ok && v.AsString() == name {
						return p.Value, true
					}
				}
			}
		}
	}
	return 0, false
}

func TestBackfillSQLIntKeys(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(95)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)), expandcontract.WithMeterProvider(mp))
		ectest.ToBackfill(t, s, "phones")

		var reports []backfill.Progress
		var gauges []float64
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithBatchSize(10), backfill.WithOwner("runner-1"),
			backfill.WithProgress(func(p backfill.Progress) {
				reports = append(reports, p)
				if !p.Done {
					v, ok := gauge(t, reader, "phones")
					assert.True(t, ok, "the gauge reports while the backfill runs")
					gauges = append(gauges, v)
				}
			}))
		require.NoError(t, err)
		assert.Equal(t, "runner-1", bf.Owner())
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))

		sorted := slices.Sorted(slices.Values(ids))
		require.Len(t, reports, 11, "ten batches and the final report")
		for i, p := range reports[:10] {
			rows := int64(min(10*(i+1), len(ids)))
			assert.Equal(t, rows, p.Rows, "batch %d", i)
			assert.Equal(t, int64(i+1), p.Batches)
			assert.Equal(t, int64(len(ids)), p.Total)
			assert.Equal(t, fmt.Sprint(sorted[rows-1]), p.Checkpoint)
			assert.False(t, p.Done)
			assert.Positive(t, p.Rate)
			if rows < int64(len(ids)) {
				assert.Positive(t, p.ETA, "batch %d", i)
			}
			assert.InDelta(t, float64(rows)/float64(len(ids)), gauges[i], 1e-9)
		}
		last := reports[10]
		assert.True(t, last.Done)
		assert.Equal(t, int64(len(ids)), last.Rows)
		assert.Equal(t, int64(10), last.Batches)
		assert.Zero(t, last.ETA)
		_, ok := gauge(t, reader, "phones")
		assert.False(t, ok, "the gauge stops reporting when the run ends")

		st := state(t, s, "phones")
		assert.True(t, st.Done())
		assert.Equal(t, int64(len(ids)), st.Rows)
		assert.Equal(t, int64(len(ids)), st.Total)
		assert.Equal(t, fmt.Sprint(sorted[len(sorted)-1]), st.Checkpoint)
		assert.False(t, st.StartedAt.IsZero())
		assert.Empty(t, st.LeaseOwner, "the lease is given back")
		assert.True(t, st.LeaseUntil.IsZero())
		details := events(t, s, "phones")
		require.Len(t, details, 2)
		assert.Contains(t, details[0], `start at checkpoint ""`)
		assert.Contains(t, details[1], "done at checkpoint")

		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		sums := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, p := range d.DataPoints {
						sums[m.Name] += p.Value
					}
				case metricdata.Histogram[float64]:
					for _, p := range d.DataPoints {
						sums[m.Name] += int64(p.Count)
					}
				}
			}
		}
		assert.Equal(t, int64(len(ids)), sums["cutover.expandcontract.backfill.rows"])
		assert.Equal(t, int64(10), sums["cutover.expandcontract.backfill.batch.duration"])

		// A finished backfill runs no more.
		again, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"}, backfill.SQLBatch(copySQL))
		require.NoError(t, err)
		require.NoError(t, again.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		assert.Len(t, events(t, s, "phones"), 2)
	})
}

func TestBackfillSQLTextKeys(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := textIDs(61)
		createCustomers(t, db, expandcontract.TextKeys, anys(ids))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		var seen []expandcontract.KeyRange
		batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			seen = append(seen, r)
			return copyRange(ctx, tx, r)
		})
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.TextKeys},
			batch, backfill.WithBatchSize(7))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))

		// The ranges follow code point order, which all three databases use
		// for these columns, and chain without gaps.
		sorted := slices.Sorted(slices.Values(ids))
		require.Len(t, seen, 9)
		for i, r := range seen {
			assert.Equal(t, sorted[min(7*i+6, len(sorted)-1)], r.To, "batch %d", i)
			if i == 0 {
				assert.Nil(t, r.From)
			} else {
				assert.Equal(t, seen[i-1].To, r.From)
			}
		}
		st := state(t, s, "phones")
		assert.True(t, st.Done())
		assert.Equal(t, sorted[len(sorted)-1], st.Checkpoint)
	})
}

func TestBackfillGoBatchFromAnotherDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		old := testdb.SQLite(t)
		ids := intIDs(83)
		createCustomers(t, old, expandcontract.IntKeys, anys(ids))
		_, err := db.ExecContext(t.Context(), `CREATE TABLE accounts (id `+db.Dialect.TypeBigInt()+` PRIMARY KEY,
			customer_phone `+db.Dialect.TypeKeyText()+` NOT NULL, phone_number `+db.Dialect.TypeKeyText()+`,
			copies `+db.Dialect.TypeBigInt()+` NOT NULL)`)
		require.NoError(t, err)
		// A row that dual writes already put there is overwritten.
		_, err = db.ExecContext(t.Context(), db.Rebind(`INSERT INTO accounts (id, customer_phone, phone_number, copies) VALUES (?, 'stale', 'stale', 0)`), ids[3])
		require.NoError(t, err)

		upsert := `INSERT INTO accounts (id, customer_phone, phone_number, copies) VALUES (?, ?, ?, 1) `
		if db.Name == sqldialect.MySQL {
			upsert += `ON DUPLICATE KEY UPDATE customer_phone = VALUES(customer_phone), phone_number = VALUES(phone_number), copies = copies + 1`
		} else {
			upsert += `ON CONFLICT (id) DO UPDATE SET customer_phone = excluded.customer_phone, phone_number = excluded.phone_number, copies = accounts.copies + 1`
		}
		upsert = db.Rebind(upsert)
		batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			var rows []struct {
				ID    int64  `db:"id"`
				Phone string `db:"customer_phone"`
			}
			q, args := `SELECT id, customer_phone FROM customers WHERE id <= ?`, []any{r.To}
			if r.From != nil {
				q += ` AND id > ?`
				args = append(args, r.From)
			}
			err := old.SelectContext(ctx, &rows, q, args...)
			if err != nil {
				return 0, err
			}
			for _, row := range rows {
				if _, err := tx.ExecContext(ctx, upsert, row.ID, row.Phone, row.Phone); err != nil {
					return 0, err
				}
			}
			return int64(len(rows)), nil
		})
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "accounts")
		bf, err := backfill.New(ectest.Migration(t, s, "accounts"), backfill.Keyset{DB: old.DB, Table: "customers", Column: "id"}, batch,
			backfill.WithBatchSize(9))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))

		var got []struct {
			ID     int64  `db:"id"`
			Phone  string `db:"customer_phone"`
			Copy   string `db:"phone_number"`
			Copies int64  `db:"copies"`
		}
		require.NoError(t, db.SelectContext(t.Context(), &got, `SELECT id, customer_phone, phone_number, copies FROM accounts ORDER BY id`))
		require.Len(t, got, len(ids))
		for _, r := range got {
			assert.Equal(t, fmt.Sprintf("+1-555-%d", r.ID), r.Phone)
			assert.Equal(t, r.Phone, r.Copy)
			assert.Equal(t, int64(1), r.Copies, "id %d", r.ID)
		}
		st := state(t, s, "accounts")
		assert.Equal(t, int64(len(ids)), st.Rows)
		assert.True(t, st.Done())
	})
}

// TestBackfillResumesWithoutSkippingOrRedoing stops runs in every way a
// batch can end badly, and checks that the runs that resume copy every
// row exactly once.
func TestBackfillResumesWithoutSkippingOrRedoing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(120)
		sorted := slices.Sorted(slices.Values(ids))
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}
		copyBatch := backfill.SQLBatch(copySQL)
		// counting wraps the copy: hook runs after the batch's statement,
		// inside its transaction, with the number of the batch in this run.
		counting := func(hook func(ctx context.Context, n int) error) backfill.BatchFunc {
			n := 0
			return func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
				rows, err := copyRange(ctx, tx, r)
				if err != nil {
					return 0, err
				}
				n++
				return rows, hook(ctx, n)
			}
		}
		checkpointAfter := func(batches int) {
			t.Helper()
			st := state(t, s, "phones")
			assert.Equal(t, fmt.Sprint(sorted[10*batches-1]), st.Checkpoint)
			assert.Equal(t, int64(10*batches), st.Rows)
			assert.Empty(t, st.LeaseOwner, "a stopped run gives back its lease")
			assert.False(t, st.Done())
		}

		// 1. The context is canceled inside batch 3, before its commit.
		ctx, cancel := context.WithCancel(t.Context())
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, counting(func(_ context.Context, n int) error {
			if n == 3 {
				cancel()
			}
			return nil
		}), backfill.WithBatchSize(10))
		require.NoError(t, err)
		err = bf.Run(ctx)
		require.ErrorIs(t, err, context.Canceled)
		checkpointAfter(2)

		// 2. The batch function fails in the second batch of the next run,
		// after its statement ran.
		boom := errors.New("boom")
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, counting(func(_ context.Context, n int) error {
			if n == 2 {
				return boom
			}
			return nil
		}), backfill.WithBatchSize(10))
		require.NoError(t, err)
		err = bf.Run(t.Context())
		require.ErrorIs(t, err, boom)
		assert.ErrorContains(t, err, fmt.Sprintf("batch (%d, %d]", sorted[29], sorted[39]))
		checkpointAfter(3)

		// 3. The context is canceled between batches, after batch 2
		// committed: the cancellation is seen before the next batch.
		ctx, cancel = context.WithCancel(t.Context())
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, copyBatch, backfill.WithBatchSize(10),
			backfill.WithProgress(func(p backfill.Progress) {
				if p.Batches == 2 {
					cancel()
				}
			}))
		require.NoError(t, err)
		require.ErrorIs(t, bf.Run(ctx), context.Canceled)
		checkpointAfter(5)

		// 4. The context's deadline passes inside a batch: its statements
		// fail and it rolls back.
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, counting(func(ctx context.Context, n int) error {
			if n == 1 {
				<-ctx.Done()
			}
			return nil
		}), backfill.WithBatchSize(10))
		require.NoError(t, err)
		ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
		err = bf.Run(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		checkpointAfter(5)

		// 5. A new runner resumes from the checkpoint and finishes.
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, copyBatch, backfill.WithBatchSize(10))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		st := state(t, s, "phones")
		assert.True(t, st.Done())
		assert.Equal(t, int64(len(ids)), st.Rows)
		assert.Equal(t, int64(len(ids)), st.Total, "a resumed run counts the rows copied and those left")
	})
}

// TestBackfillPauseResumeCancelFromAnotherInstance steers a runner through
// a second store, on its own connection pool, as another instance would.
func TestBackfillPauseResumeCancelFromAnotherInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(100)
		sorted := slices.Sorted(slices.Values(ids))
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		logs := newLogSignal()
		s := ectest.Open(t, db.DB, nil, expandcontract.WithLogger(slog.New(logs)))
		other := ectest.Open(t, secondPool(t, db), nil)
		ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		// The throttle hook runs before each batch, outside its
		// transaction; the runner has committed calls-1 batches by then.
		var calls, batches atomic.Int64
		copyBatch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			batches.Add(1)
			return copyRange(ctx, tx, r)
		})
		steer := func(ctx context.Context) (time.Duration, error) {
			switch calls.Add(1) {
			case 3:
				return 0, backfill.Pause(ctx, ectest.Migration(t, other, "phones"), "operator", "")
			case 7:
				return 0, backfill.Cancel(ctx, ectest.Migration(t, other, "phones"), "operator", "")
			}
			return 0, nil
		}
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, copyBatch, backfill.WithBatchSize(10),
			backfill.WithThrottle(steer), backfill.WithPollInterval(2*time.Millisecond))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()

		logs.wait(t, "backfill paused")
		// The batch that ran after the pause was rolled back.
		st := state(t, s, "phones")
		assert.True(t, st.Paused)
		assert.Equal(t, int64(20), st.Rows)
		assert.Equal(t, fmt.Sprint(sorted[19]), st.Checkpoint)
		assert.Equal(t, bf.Owner(), st.LeaseOwner, "a paused runner keeps its lease")
		assert.Equal(t, int64(3), batches.Load())
		require.NoError(t, backfill.Resume(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		logs.wait(t, "backfill resumed")

		err = <-done
		require.ErrorIs(t, err, backfill.ErrCanceled)
		st = state(t, s, "phones")
		assert.True(t, st.Canceled)
		assert.Equal(t, int64(50), st.Rows, "batches 1-2 and 3-5 committed; the one after the cancel rolled back")
		assert.Equal(t, fmt.Sprint(sorted[49]), st.Checkpoint)
		assert.Empty(t, st.LeaseOwner)
		assert.False(t, st.Done())

		// A canceled backfill does not start, and changes nothing.
		before := events(t, s, "phones")
		bf2, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10))
		require.NoError(t, err)
		require.ErrorIs(t, bf2.Run(t.Context()), backfill.ErrCanceled)
		assert.Equal(t, before, events(t, s, "phones"))
		assert.Empty(t, state(t, s, "phones").LeaseOwner)

		// Paused before it starts, a runner waits for the resume.
		require.NoError(t, backfill.ResetCancel(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		require.NoError(t, backfill.Pause(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		bf3, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
			backfill.WithPollInterval(2*time.Millisecond))
		require.NoError(t, err)
		go func() { done <- bf3.Run(t.Context()) }()
		logs.wait(t, "backfill paused")
		assert.Equal(t, int64(50), state(t, s, "phones").Rows)
		require.NoError(t, backfill.Resume(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		require.NoError(t, <-done)
		checkCopiedOnce(t, db.DB, "customers", len(ids))

		details := strings.Join(events(t, s, "phones"), "\n")
		for _, want := range []string{"pause", "resume", "cancel", "stopped on cancel", "reset cancel", "done at checkpoint"} {
			assert.Contains(t, details, want)
		}
	})
}

func TestBackfillPauseWaitsUntilCanceled(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(30)))
		logs := newLogSignal()
		s := ectest.Open(t, db.DB, nil, expandcontract.WithLogger(slog.New(logs)))
		other := ectest.Open(t, secondPool(t, db), nil)
		ectest.ToBackfill(t, s, "phones")
		require.NoError(t, backfill.Pause(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithPollInterval(time.Millisecond))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()
		logs.wait(t, "backfill paused")
		require.NoError(t, backfill.Cancel(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		require.ErrorIs(t, <-done, backfill.ErrCanceled)
		st := state(t, s, "phones")
		assert.Zero(t, st.Rows)
		assert.Empty(t, st.LeaseOwner)

		// And a paused runner stops when its context is done.
		require.NoError(t, backfill.ResetCancel(t.Context(), ectest.Migration(t, other, "phones"), "operator", ""))
		ctx, cancel := context.WithCancel(t.Context())
		go func() { done <- bf.Run(ctx) }()
		logs.wait(t, "backfill paused")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		assert.Empty(t, state(t, s, "phones").LeaseOwner)
	})
}

func TestBackfillOneRunnerAtATime(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(40)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := ectest.Open(t, db.DB, c)
		other := ectest.Open(t, secondPool(t, db), c)
		ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		// Two runners start at once; the one that gets the lease holds in
		// its throttle hook until the other has returned.
		holding := make(chan string, 2)
		release := make(chan struct{})
		runner := func(st *expandcontract.Store, owner string) *backfill.Runner {
			var once sync.Once
			bf, err := backfill.New(ectest.Migration(t, st, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
				backfill.WithOwner(owner), backfill.WithLease(time.Minute),
				backfill.WithThrottle(func(ctx context.Context) (time.Duration, error) {
					once.Do(func() {
						holding <- owner
						<-release
					})
					return 0, nil
				}))
			require.NoError(t, err)
			return bf
		}
		a, b := runner(s, "runner-a"), runner(other, "runner-b")
		errs := make(chan error, 2)
		start := make(chan struct{})
		for _, bf := range []*backfill.Runner{a, b} {
			go func() {
				<-start
				errs <- bf.Run(t.Context())
			}()
		}
		close(start)
		winner := <-holding
		loserErr := <-errs
		var held *backfill.LeaseHeldError
		require.ErrorAs(t, loserErr, &held)
		assert.ErrorIs(t, loserErr, backfill.ErrLeaseHeld)
		assert.Equal(t, winner, held.Owner)
		assert.Equal(t, "phones", held.Migration)
		assert.True(t, held.Until.Equal(c.Now().Add(time.Minute)), "until %v", held.Until)
		assert.ErrorContains(t, loserErr, winner)

		// The same Backfiller cannot run twice at once either.
		w := a
		if winner == "runner-b" {
			w = b
		}
		assert.ErrorIs(t, w.Run(t.Context()), backfill.ErrInvalidInput)

		close(release)
		require.NoError(t, <-errs)
		checkCopiedOnce(t, db.DB, "customers", len(ids))
	})
}

func TestBackfillTakesOverAnExpiredLease(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(25)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := ectest.Open(t, db.DB, c)
		ectest.ToBackfill(t, s, "phones")
		// A runner died holding the lease.
		until := c.Now().Add(30 * time.Second)
		_, err := db.ExecContext(t.Context(), db.Rebind(`UPDATE cutover_migrations SET lease_owner = ?, lease_until = ? WHERE name = ?`),
			"dead-runner", until.UnixMicro(), "phones")
		require.NoError(t, err)

		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithOwner("runner-2"))
		require.NoError(t, err)
		err = bf.Run(t.Context())
		var held *backfill.LeaseHeldError
		require.ErrorAs(t, err, &held)
		assert.Equal(t, "dead-runner", held.Owner)
		assert.True(t, held.Until.Equal(until))
		assert.Zero(t, state(t, s, "phones").Rows)

		c.Advance(30 * time.Second) // the lease runs out
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		details := events(t, s, "phones")
		require.NotEmpty(t, details)
		assert.Contains(t, details[0], `took over the lease of "dead-runner", which ran out at 2026-11-02T09:00:30Z`)
		evs, err := ectest.Migration(t, s, "phones").Events(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "runner-2", evs[len(evs)-1].Actor)
	})
}

// TestBackfillFencing lets a runner's lease run out while it is stuck,
// lets another runner take over and finish, and then unsticks the first:
// its batch must not commit.
func TestBackfillFencing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(50)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := ectest.Open(t, db.DB, c)
		other := ectest.Open(t, secondPool(t, db), c)
		ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		hold := holdBefore(3)
		var lateBatches atomic.Int64
		batch := backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			if hold.calls.Load() >= 3 {
				lateBatches.Add(1) // runs, but must not commit
			}
			return copyRange(ctx, tx, r)
		})
		a, err := backfill.New(ectest.Migration(t, s, "phones"), keys, batch, backfill.WithBatchSize(10), backfill.WithOwner("runner-a"),
			backfill.WithLease(time.Minute), hold.option())
		require.NoError(t, err)
		stuck, unstick := hold.stuck, hold.unstick
		done := make(chan error, 1)
		go func() { done <- a.Run(t.Context()) }()
		<-stuck
		assert.Equal(t, int64(20), state(t, s, "phones").Rows)

		c.Advance(time.Minute + time.Second)
		b, err := backfill.New(ectest.Migration(t, other, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
			backfill.WithOwner("runner-b"))
		require.NoError(t, err)
		require.NoError(t, b.Run(t.Context()))

		close(unstick)
		err = <-done
		require.ErrorIs(t, err, backfill.ErrLeaseLost)
		assert.Equal(t, int64(1), lateBatches.Load(), "the fenced runner ran one batch and stopped")
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		st := state(t, s, "phones")
		assert.True(t, st.Done())
		assert.Equal(t, int64(len(ids)), st.Rows)
		details := events(t, s, "phones")
		assert.Contains(t, strings.Join(details, "\n"), `took over the lease of "runner-a"`)
	})
}

// TestBackfillHeartbeat keeps a runner waiting in its throttle hook, past
// many lease TTLs: the heartbeat keeps the lease, and stops the runner
// once the lease is stolen.
func TestBackfillHeartbeat(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(20)))
		s := ectest.Open(t, db.DB, nil)
		ectest.ToBackfill(t, s, "phones")
		const ttl = 30 * time.Millisecond
		waiting := make(chan struct{})
		renewed := make(chan struct{})
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithLease(ttl),
			backfill.WithThrottle(func(ctx context.Context) (time.Duration, error) {
				close(waiting)
				<-renewed
				<-ctx.Done() // until the heartbeat stops the run
				return 0, nil
			}))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()
		<-waiting
		first := state(t, s, "phones").LeaseUntil
		require.Eventually(t, func() bool { return state(t, s, "phones").LeaseUntil.After(first.Add(ttl)) },
			10*time.Second, time.Millisecond, "the heartbeat renews the lease")
		close(renewed)

		_, err = db.ExecContext(t.Context(), db.Rebind(`UPDATE cutover_migrations SET lease_owner = ? WHERE name = ?`), "thief", "phones")
		require.NoError(t, err)
		err = <-done
		require.ErrorIs(t, err, backfill.ErrLeaseLost)
		assert.ErrorContains(t, err, `"thief"`)
		st := state(t, s, "phones")
		assert.Equal(t, "thief", st.LeaseOwner, "a runner never gives back a lease it lost")
		assert.Zero(t, st.Rows)
	})
}

func TestBackfillRefusedOutsideTheBackfillPhase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(40)))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		other := ectest.Open(t, secondPool(t, db), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		keys := backfill.Keyset{Table: "customers", Column: "id"}
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10))
		require.NoError(t, err)
		require.ErrorIs(t, bf.Run(t.Context()), expandcontract.ErrNotFound)

		_, err = ectest.Migration(t, s, "phones").Ensure(t.Context(), "test")
		require.NoError(t, err)
		_, err = ectest.Migration(t, s, "phones").Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "test"})
		require.NoError(t, err)
		before, err := ectest.Migration(t, s, "phones").State(t.Context())
		require.NoError(t, err)
		err = bf.Run(t.Context())
		require.ErrorIs(t, err, backfill.ErrWrongPhase)
		assert.ErrorContains(t, err, "phase dualwrite")
		after, err := ectest.Migration(t, s, "phones").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, before, after, "a refused run changes nothing")
		assert.Empty(t, events(t, s, "phones"))

		// A move back while the runner works stops it before its next commit.
		_, err = ectest.Migration(t, s, "phones").Move(t.Context(), expandcontract.Move{To: expandcontract.Backfill, Actor: "test"})
		require.NoError(t, err)
		var calls atomic.Int64
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
			backfill.WithThrottle(func(ctx context.Context) (time.Duration, error) {
				if calls.Add(1) == 3 {
					_, err := ectest.Migration(t, other, "phones").Move(ctx, expandcontract.Move{To: expandcontract.DualWrite, Actor: "operator", Reason: "roll back"})
					return 0, err
				}
				return 0, nil
			}))
		require.NoError(t, err)
		err = bf.Run(t.Context())
		require.ErrorIs(t, err, backfill.ErrWrongPhase)
		st := state(t, s, "phones")
		assert.Equal(t, int64(20), st.Rows)
		assert.Empty(t, st.LeaseOwner)
		var copied int
		require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM customers WHERE copies > 0`))
		assert.Equal(t, 20, copied, "the batch after the move was rolled back")
	})
}

func TestBackfillBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(10)))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		before, err := ectest.Migration(t, s, "phones").State(t.Context())
		require.NoError(t, err)
		events, err := ectest.Migration(t, s, "phones").Events(t.Context())
		require.NoError(t, err)

		keys := backfill.Keyset{Table: "customers", Column: "id"}
		good := backfill.SQLBatch(copySQL)
		var nilFunc backfill.BatchFunc
		cases := []struct {
			name  string
			mig   string
			keys  backfill.Keyset
			batch backfill.Batch
			opts  []backfill.Option
			want  string
		}{
			{"hostile table", "phones", backfill.Keyset{Table: "users; DROP TABLE customers", Column: "id"}, good, nil, `"users; DROP TABLE customers"`},
			{"quote in column", "phones", backfill.Keyset{Table: "customers", Column: `id" --`}, good, nil, "key column"},
			{"dotted column", "phones", backfill.Keyset{Table: "customers", Column: "customers.id"}, good, nil, "cannot have a dot"},
			{"empty table", "phones", backfill.Keyset{Column: "id"}, good, nil, "key table"},
			{"key kind", "phones", backfill.Keyset{Table: "customers", Column: "id", Kind: 7}, good, nil, "unknown key kind"},
			{"nil migration", "", keys, good, nil, "nil migration"},
			{"nil batch", "phones", keys, nil, nil, "nil batch"},
			{"nil batch func", "phones", keys, nilFunc, nil, "nil batch function"},
			{"zero batch size", "phones", keys, good, []backfill.Option{backfill.WithBatchSize(0)}, "batch size must be positive, got 0"},
			{"negative batch size", "phones", keys, good, []backfill.Option{backfill.WithBatchSize(-5)}, "got -5"},
			{"negative rate", "phones", keys, good, []backfill.Option{backfill.WithRate(-1)}, "rate must be"},
			{"NaN rate", "phones", keys, good, []backfill.Option{backfill.WithRate(math.NaN())}, "rate must be"},
			{"negative pause", "phones", keys, good, []backfill.Option{backfill.WithBatchPause(-time.Second)}, "batch pause"},
			{"nil throttle", "phones", keys, good, []backfill.Option{backfill.WithThrottle(nil)}, "nil throttle"},
			{"nil hold", "phones", keys, good, []backfill.Option{backfill.WithHold(nil)}, "nil hold"},
			{"nil progress", "phones", keys, good, []backfill.Option{backfill.WithProgress(nil)}, "nil progress"},
			{"short lease", "phones", keys, good, []backfill.Option{backfill.WithLease(0)}, "lease TTL"},
			{"empty owner", "phones", keys, good, []backfill.Option{backfill.WithOwner("")}, "owner"},
			{"negative total", "phones", keys, good, []backfill.Option{backfill.WithTotal(-1)}, "total"},
			{"zero poll", "phones", keys, good, []backfill.Option{backfill.WithPollInterval(0)}, "poll interval"},
			{"nil option", "phones", keys, good, []backfill.Option{nil}, "option 0 is nil"},
			{"empty SQL", "phones", keys, backfill.SQLBatch("  "), nil, "empty SQL"},
			{"SQL without :to", "phones", keys, backfill.SQLBatch("UPDATE customers SET copies = 1 WHERE id >= :from"), nil, "both :from and :to"},
			{"SQL typo", "phones", keys, backfill.SQLBatch("UPDATE customers SET copies = 1 WHERE id BETWEEN :form AND :to"), nil, "unknown parameter :form"},
			{"SQL placeholder", "phones", keys, backfill.SQLBatch("UPDATE customers SET copies = ? WHERE id BETWEEN :from AND :to"), nil, "placeholder ?"},
			{"SQL quote", "phones", keys, backfill.SQLBatch("UPDATE customers SET note = 'x WHERE id BETWEEN :from AND :to"), nil, "unterminated"},
			{"SQL comment", "phones", keys, backfill.SQLBatch("UPDATE customers SET copies = 1 WHERE id BETWEEN :from AND :to /*"), nil, "unterminated comment"},
		}
		if db.Name == sqldialect.Postgres {
			cases = append(cases, struct {
				name  string
				mig   string
				keys  backfill.Keyset
				batch backfill.Batch
				opts  []backfill.Option
				want  string
			}{"SQL dollar placeholder", "phones", keys, backfill.SQLBatch("UPDATE customers SET copies = $1 WHERE id BETWEEN :from AND :to"), nil, "placeholder $1"})
		}
		for _, tc := range cases {
			var m *expandcontract.Migration // nil for the case without one
			if tc.mig != "" {
				m = ectest.Migration(t, s, tc.mig)
			}
			bf, err := backfill.New(m, tc.keys, tc.batch, tc.opts...)
			assert.Nil(t, bf, tc.name)
			require.ErrorIs(t, err, backfill.ErrInvalidInput, tc.name)
			assert.ErrorContains(t, err, tc.want, tc.name)
		}
		_, err = backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "a b", Column: "id"}, good)
		assert.ErrorIs(t, err, sqldialect.ErrInvalidIdentifier)

		var n int
		require.NoError(t, db.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM customers WHERE copies = 0`))
		assert.Equal(t, 10, n, "the table is intact")
		after, err := ectest.Migration(t, s, "phones").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, before, after)
		eventsAfter, err := ectest.Migration(t, s, "phones").Events(t.Context())
		require.NoError(t, err)
		assert.Equal(t, events, eventsAfter)

		// A batch reporting a negative row count stops the run.
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.BatchFunc(func(context.Context, *sqlx.Tx, expandcontract.KeyRange) (int64, error) {
			return -1, nil
		}))
		require.NoError(t, err)
		assert.ErrorContains(t, bf.Run(t.Context()), "reported -1 rows")
		assert.Zero(t, state(t, s, "phones").Rows)

		// Keys of the wrong kind for the column fail on the first read.
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "customer_phone"}, good)
		require.NoError(t, err)
		assert.ErrorContains(t, bf.Run(t.Context()), "read the next int keys")
	})
}

// TestSQLBatchLeavesLiteralsAlone runs a statement whose literals and
// comments hold parameter look-alikes.
func TestSQLBatchLeavesLiteralsAlone(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(30)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		stmt := `UPDATE customers /* :nope ? */ SET phone_number = customer_phone, copies = copies + 1,
			note = 'at :to? it''s' -- :from ?
			WHERE id > :from AND id <= :to AND id <> :from - 1`
		if db.Name == sqldialect.Postgres {
			stmt += ` AND id::text <> $$:to?$$ AND id::bigint = CAST(id AS bigint)`
		}
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(stmt), backfill.WithBatchSize(4))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		checkCopiedOnce(t, db.DB, "customers", len(ids))
		var notes []string
		require.NoError(t, db.SelectContext(t.Context(), &notes, `SELECT DISTINCT note FROM customers`))
		assert.Equal(t, []string{"at :to? it's"}, notes)
	})
}

// TestSQLBatchFirstKeyBound covers the value an SQLBatch binds to :from
// in the first batch, and the keys below which there is none.
func TestSQLBatchFirstKeyBound(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		cases := 0
		// Each case has its own table: PostgreSQL connections keep the
		// parameter types of the statements they prepared.
		run := func(kind expandcontract.KeyKind, ids []any, sqlBatch bool) error {
			t.Helper()
			cases++
			name, table := fmt.Sprintf("case-%d", cases), fmt.Sprintf("customers_%d", cases)
			ectest.ToBackfill(t, s, name)
			createTable(t, db, table, kind, ids)
			var batch backfill.Batch = copyRangeOf(table)
			if sqlBatch {
				batch = backfill.SQLBatch(strings.ReplaceAll(copySQL, "customers", table))
			}
			bf, err := backfill.New(ectest.Migration(t, s, name), backfill.Keyset{Table: table, Column: "id", Kind: kind}, batch,
				backfill.WithBatchSize(2))
			require.NoError(t, err)
			if err := bf.Run(t.Context()); err != nil {
				var copied int
				require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM `+table+` WHERE copies > 0`))
				assert.Zero(t, copied, "nothing is copied")
				assert.Zero(t, state(t, s, name).Rows)
				return err
			}
			checkCopiedOnce(t, db.DB, table, len(ids))
			return nil
		}
		ints, texts := expandcontract.IntKeys, expandcontract.TextKeys

		// Integer keys: the first key minus one.
		require.NoError(t, run(ints, anys([]int64{math.MaxInt64, -7, 0, math.MinInt64 + 1}), true))
		err := run(ints, anys([]int64{3, math.MinInt64, 9}), true)
		require.ErrorIs(t, err, backfill.ErrInvalidInput)
		assert.ErrorContains(t, err, "first key -9223372036854775808")
		assert.ErrorContains(t, err, "use a BatchFunc")
		require.NoError(t, run(ints, anys([]int64{3, math.MinInt64, 9}), false))

		// Text keys: the empty string.
		require.NoError(t, run(texts, anys([]string{"b", "!", "a", "A"}), true))
		err = run(texts, anys([]string{"b", "", "a"}), true)
		require.ErrorIs(t, err, backfill.ErrInvalidInput)
		assert.ErrorContains(t, err, `first key ""`)
		require.NoError(t, run(texts, anys([]string{"b", "", "a"}), false))
		// Keys of spaces, or of characters below the space, are above the
		// empty string, except on MySQL, whose collations pad with spaces.
		for _, low := range []string{" ", "\x01"} {
			err = run(texts, anys([]string{"b", low, "a"}), true)
			if db.Name == sqldialect.MySQL {
				require.ErrorIs(t, err, backfill.ErrInvalidInput)
				assert.ErrorContains(t, err, "collation takes 1 of its keys as equal to the empty string")
				require.NoError(t, run(texts, anys([]string{"b", low, "a"}), false))
			} else {
				require.NoError(t, err)
			}
		}

		sqlBatch := backfill.SQLBatch(copySQL)
		createCustomers(t, db, texts, anys([]string{"a", "b", "c"}))
		// Called by hand, an SQLBatch needs both bounds and a valid statement.
		tx, err := db.BeginTxx(t.Context(), nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		_, err = sqlBatch.CopyRange(t.Context(), tx, expandcontract.KeyRange{To: "b"})
		assert.ErrorIs(t, err, backfill.ErrInvalidInput)
		n, err := sqlBatch.CopyRange(t.Context(), tx, expandcontract.KeyRange{From: "a", To: "c"})
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		_, err = backfill.SQLBatch("UPDATE customers SET copies = 0").CopyRange(t.Context(), tx,
			expandcontract.KeyRange{From: "a", To: "b"})
		assert.ErrorIs(t, err, backfill.ErrInvalidInput)
	})
}

func TestBackfillThrottleRateAndPause(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ids := intIDs(60)
		createCustomers(t, db, expandcontract.IntKeys, anys(ids))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		keys := backfill.Keyset{Table: "customers", Column: "id"}

		// The throttle holds each batch once for a millisecond; its error
		// stops the run with the checkpoint where it was.
		lag := errors.New("replica unreachable")
		var calls atomic.Int64
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
			backfill.WithThrottle(func(context.Context) (time.Duration, error) {
				switch n := calls.Add(1); {
				case n == 7:
					return 0, lag
				case n%2 == 1:
					return time.Millisecond, nil
				}
				return 0, nil
			}))
		require.NoError(t, err)
		err = bf.Run(t.Context())
		require.ErrorIs(t, err, lag)
		assert.ErrorContains(t, err, "throttle")
		assert.Equal(t, int64(30), state(t, s, "phones").Rows)

		// 30 rows left at 2000 rows/s, 10 per batch: the waits after the
		// three batches add up to 15ms; the rate reported stays under the
		// limit.
		var last backfill.Progress
		bf, err = backfill.New(ectest.Migration(t, s, "phones"), keys, backfill.SQLBatch(copySQL), backfill.WithBatchSize(10),
			backfill.WithRate(2000), backfill.WithProgress(func(p backfill.Progress) { last = p }),
			backfill.WithTotal(60))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, bf.Run(t.Context()))
		assert.GreaterOrEqual(t, time.Since(start), 15*time.Millisecond)
		assert.True(t, last.Done)
		assert.Equal(t, int64(60), last.Total)
		assert.LessOrEqual(t, last.Rate, 2000.0)
		checkCopiedOnce(t, db.DB, "customers", len(ids))
	})
}

func TestBackfillBatchPause(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(40)))
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		var last backfill.Progress
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
			backfill.SQLBatch(copySQL), backfill.WithBatchSize(10), backfill.WithBatchPause(5*time.Millisecond),
			backfill.WithTotal(1000), backfill.WithProgress(func(p backfill.Progress) { last = p }))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, bf.Run(t.Context()))
		assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "four pauses")
		assert.Equal(t, int64(1000), last.Total, "WithTotal replaces the count")
		assert.Equal(t, int64(1000), state(t, s, "phones").Total)
		checkCopiedOnce(t, db.DB, "customers", 40)
	})
}

func TestBackfillEmptyTable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.TextKeys, nil)
		s := ectest.Open(t, db.DB, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		ectest.ToBackfill(t, s, "phones")
		var reports []backfill.Progress
		bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.TextKeys},
			backfill.SQLBatch(copySQL), backfill.WithProgress(func(p backfill.Progress) { reports = append(reports, p) }))
		require.NoError(t, err)
		require.NoError(t, bf.Run(t.Context()))
		require.Len(t, reports, 1)
		assert.Equal(t, backfill.Progress{Done: true, BatchSize: backfill.DefaultBatchSize}, reports[0])
		st := state(t, s, "phones")
		assert.True(t, st.Done())
		assert.Empty(t, st.Checkpoint)
	})
}

func TestKeyKindString(t *testing.T) {
	assert.Equal(t, "int", expandcontract.IntKeys.String())
	assert.Equal(t, "text", expandcontract.TextKeys.String())
	assert.Equal(t, "KeyKind(9)", expandcontract.KeyKind(9).String())
}
