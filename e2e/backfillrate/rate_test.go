package backfillrate

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/internal/testutil/keyset"
)

// copySet is what every way copies: a text column into another.
const copySet = "phone_number = customer_phone"

// way is one way of copying the column of a table of rows rows.
type way struct {
	name  string
	batch int // keys per batch; 0 for one statement
	// copy copies the column of table; round names a new migration
	copy func(t *testing.T, table string, round int) error
}

// TestBackfillRate measures each way in every round and prints the table.
func TestBackfillRate(t *testing.T) {
	rows := suite.EnvInt(t, "CUTOVER_BACKFILLRATE_ROWS", 20_000)
	rounds := suite.EnvInt(t, "CUTOVER_BACKFILLRATE_ROUNDS", 1)
	batch := suite.EnvInt(t, "CUTOVER_BACKFILLRATE_BATCH", 1000)
	db := testdb.Postgres(t)
	ctx := t.Context()
	store, err := expandcontract.Open(ctx, db.DB, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)

	runner := func(opts ...backfill.Option) func(*testing.T, string, int) error {
		return func(t *testing.T, table string, round int) error {
			m := toBackfill(t, store, fmt.Sprintf("%s-%d", table, round))
			r, err := backfill.New(m, backfill.Keyset{Table: table, Column: "id"},
				backfill.SQLBatch(`UPDATE `+table+` SET `+copySet+` WHERE id > :from AND id <= :to`),
				append([]backfill.Option{backfill.WithBatchSize(batch)}, opts...)...)
			require.NoError(t, err)
			if err := r.Run(ctx); err != nil {
				return err
			}
			checkDone(t, m, rows)
			return nil
		}
	}
	// n runners in goroutines of their own, over a backfill split into
	// n ranges.
	runners := func(n int) func(*testing.T, string, int) error {
		return func(t *testing.T, table string, round int) error {
			m := toBackfill(t, store, fmt.Sprintf("%s-%d", table, round))
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				r, err := backfill.New(m, backfill.Keyset{Table: table, Column: "id"},
					backfill.SQLBatch(`UPDATE `+table+` SET `+copySet+` WHERE id > :from AND id <= :to`),
					backfill.WithBatchSize(batch), backfill.WithRanges(n), backfill.WithOwner(fmt.Sprintf("runner-%d", i)),
					backfill.WithPollInterval(10*time.Millisecond))
				require.NoError(t, err)
				wg.Go(func() { errs[i] = r.Run(ctx) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			checkDone(t, m, rows)
			return nil
		}
	}
	ways := []way{
		{"UPDATE of the whole table", 0, func(_ *testing.T, table string, _ int) error {
			_, err := db.ExecContext(ctx, `UPDATE `+table+` SET `+copySet)
			return err
		}},
		{"hand-written keyset loop", batch, func(_ *testing.T, table string, _ int) error {
			return keyset.Loop(ctx, db, table, copySet, batch)
		}},
		{"runner, 1", batch, runner()},
		{"runner, 1, WithTotal", batch, runner(backfill.WithTotal(int64(rows)))},
		{"runners, 2 ranges", batch, runners(2)},
		{"runners, 4 ranges", batch, runners(4)},
	}

	t.Logf("load average before: %s", loadAverage())
	took := make([][]time.Duration, len(ways))
	for round := range rounds {
		for i := range ways {
			w := ways[(i+round)%len(ways)] // an order that turns from round to round
			idx := slices.IndexFunc(ways, func(x way) bool { return x.name == w.name })
			table := fmt.Sprintf("rate_%d", idx)
			fill(t, db, table, rows)
			start := time.Now()
			require.NoError(t, w.copy(t, table, round), "%s, round %d", w.name, round)
			took[idx] = append(took[idx], time.Since(start))
			var left int
			require.NoError(t, db.GetContext(ctx, &left,
				`SELECT COUNT(*) FROM `+table+` WHERE phone_number IS DISTINCT FROM customer_phone`))
			require.Zero(t, left, "%s, round %d: rows not copied", w.name, round)
		}
	}
	t.Logf("load average after: %s", loadAverage())
	t.Log("\n" + table(ways, took, rows, rounds))
}

// checkDone checks that the backfill of m is done with rows rows copied.
func checkDone(t *testing.T, m *expandcontract.Migration, rows int) {
	t.Helper()
	st, err := m.State(t.Context())
	require.NoError(t, err)
	assert.True(t, st.Backfill.Done(), "%s: the backfill is done", m.Name())
	assert.Equal(t, int64(rows), st.Backfill.Rows, "%s: every row counted", m.Name())
}

// toBackfill creates the migration name and moves it into backfill.
func toBackfill(t *testing.T, s *expandcontract.Store, name string) *expandcontract.Migration {
	t.Helper()
	m, err := s.Migration(name)
	require.NoError(t, err)
	_, err = m.Ensure(t.Context(), "backfillrate")
	require.NoError(t, err)
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		_, err := m.Move(t.Context(), expandcontract.Move{To: p, Actor: "backfillrate"})
		require.NoError(t, err)
	}
	return m
}

// fill makes table anew with rows rows, keys 1 to rows, the column to copy
// set and its copy empty, and vacuums and analyzes it.
func fill(t *testing.T, db *testdb.DB, table string, rows int) {
	t.Helper()
	for _, q := range []string{
		`DROP TABLE IF EXISTS ` + table,
		`CREATE TABLE ` + table + ` (id BIGINT PRIMARY KEY, customer_phone TEXT NOT NULL, phone_number TEXT)`,
		`INSERT INTO ` + table + ` (id, customer_phone) SELECT g, '+1-555-' || g FROM generate_series(1, ` + strconv.Itoa(rows) + `) AS g`,
		`VACUUM ANALYZE ` + table,
	} {
		_, err := db.ExecContext(t.Context(), q)
		require.NoError(t, err, "%s", q)
	}
}

// table formats the measurements: per way, the least, median and most
// seconds over the rounds, the rows per second at the median, and the
// ratios of the medians' rates to the loop's and to the single statement's.
func table(ways []way, took [][]time.Duration, rows, rounds int) string {
	median := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	rate := func(i int) float64 { return float64(rows) / median(took[i]).Seconds() }
	floor, loop := rate(0), rate(1)
	var b strings.Builder
	fmt.Fprintf(&b, "backfill of %d rows on PostgreSQL, %d rounds\n", rows, rounds)
	fmt.Fprintf(&b, "%-28s %6s %8s %8s %8s %12s %8s %8s\n", "way", "batch", "least s", "median s", "most s", "rows/s", "x loop", "x floor")
	for i, w := range ways {
		batch := "-"
		if w.batch > 0 {
			batch = strconv.Itoa(w.batch)
		}
		fmt.Fprintf(&b, "%-28s %6s %8.3f %8.3f %8.3f %12.0f %8.3f %8.3f\n", w.name, batch,
			slices.Min(took[i]).Seconds(), median(took[i]).Seconds(), slices.Max(took[i]).Seconds(),
			rate(i), rate(i)/loop, rate(i)/floor)
	}
	return b.String()
}

// loadAverage returns the first three fields of /proc/loadavg, or why not.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
