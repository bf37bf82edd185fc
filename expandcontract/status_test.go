package expandcontract_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// createStock creates the table stock with the keys 1 to n, none copied.
func createStock(t *testing.T, db *testdb.DB, n int) {
	t.Helper()
	d := db.Dialect
	_, err := db.ExecContext(t.Context(), `CREATE TABLE stock (id `+d.TypeBigInt()+` PRIMARY KEY, copied `+d.TypeBigInt()+` NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	for id := 1; id <= n; id++ {
		_, err := db.ExecContext(t.Context(), d.Rebind(`INSERT INTO stock (id) VALUES (?)`), id)
		require.NoError(t, err)
	}
}

// copyStock is a batch over stock that moves the clock c on by step, as if
// each batch took that long.
func copyStock(c *ectest.Clock, step time.Duration) backfill.BatchFunc {
	return func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		c.Advance(step)
		q, args := `UPDATE stock SET copied = copied + 1 WHERE id <= ?`, []any{r.To}
		if r.From != nil {
			q, args = q+` AND id > ?`, append(args, r.From)
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
}

// repairOf is the repair entry of the key of users.save.
func repairOf(key string) cutover.Repair {
	return cutover.Repair{Op: "users.save", Key: key, Target: cutover.New, Stage: cutover.DualWrite, Reason: cutover.SecondaryFailed}
}

// failKeys is a repair function that fails the keys given and repairs the
// others.
func failKeys(keys ...string) repair.Func {
	return func(_ context.Context, r cutover.Repair) error {
		for _, k := range keys {
			if r.Key == k {
				return errors.New("new store refuses " + k)
			}
		}
		return nil
	}
}

// TestStatus walks a migration through three hours of a fake clock, with
// repairs recorded, repaired and stuck, a backfill, a verification,
// instances reporting their stages and more history than a status holds,
// next to a second migration that does little, and checks every field of
// their statuses, during the backfill and at the end.
func TestStatus(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		createStock(t, db, 60)
		end := ectest.Start.Add(3 * time.Hour) // the time of the statuses
		at := func(before time.Duration) time.Time { return end.Add(-before) }

		ectest.Ensure(t, s, "accounts")
		m := ectest.ToBackfill(t, s, "users")
		log, err := repair.NewLog(m)
		require.NoError(t, err)
		patient, err := repair.New(log, failKeys("1", "3"), repair.WithBackoff(time.Hour, 2*time.Hour))
		require.NoError(t, err)
		t.Cleanup(func() { _ = patient.Close() })
		strict, err := repair.New(log, failKeys("1", "3"), repair.WithMaxAttempts(1))
		require.NoError(t, err)
		t.Cleanup(func() { _ = strict.Close() })
		step := func(when time.Time, do func()) {
			t.Helper()
			c.Set(when)
			do()
		}
		record := func(key string) func() { return func() { require.NoError(t, log.Record(ctx, repairOf(key))) } }
		runOnce := func(r *repair.Repairer) func() {
			return func() {
				_, err := r.RunOnce(ctx)
				require.NoError(t, err)
			}
		}
		step(at(2*time.Hour), record("4"))
		step(at(90*time.Minute), runOnce(patient)) // 4 repaired
		step(at(50*time.Minute), record("1"))
		step(at(30*time.Minute), record("2"))
		step(at(10*time.Minute), runOnce(patient)) // 2 repaired, 1 failed and due in an hour
		step(at(10*time.Minute), func() { require.NoError(t, m.ReportStage(ctx, "web-3", cutover.DualWrite)) })
		step(at(5*time.Minute), record("3"))
		step(at(4*time.Minute), runOnce(strict)) // 3 stuck
		step(at(3*time.Minute), func() {
			require.NoError(t, backfill.SetRate(ctx, m, 1e6, "alice", "no limit"))
			require.NoError(t, backfill.SetBatchSize(ctx, m, 10, "alice", "small batches"))
		})

		// The backfill: six batches of ten keys, four seconds each on the
		// store's clock, so samples at 4, 16 and, at the end, 24 seconds.
		began := at(3 * time.Minute)
		var during, stale expandcontract.Status
		var statusErr error
		bf, err := backfill.New(m, backfill.Keyset{Table: "stock", Column: "id"}, copyStock(c, 4*time.Second),
			backfill.WithBatchSize(1000), backfill.WithProgress(func(p backfill.Progress) {
				if p.Batches != 4 || p.Done {
					return
				}
				during, statusErr = m.Status(ctx)
				c.Advance(2 * time.Minute)
				stale, _ = m.Status(ctx)
				c.Advance(-2 * time.Minute)
			}))
		require.NoError(t, err)
		require.NoError(t, bf.Run(ctx))
		require.NoError(t, statusErr)
		assert.Equal(t, int64(40), during.State.Backfill.Rows)
		assert.Equal(t, int64(60), during.State.Backfill.Total)
		assert.Equal(t, began.Add(16*time.Second), during.At)
		assert.Equal(t, []expandcontract.Sample{{At: began.Add(4 * time.Second), Rows: 10}, {At: began.Add(16 * time.Second), Rows: 40}},
			during.Backfill.Samples)
		assert.Positive(t, during.Backfill.Rate, "the rate measured over the recent batches")
		assert.InDelta(t, float64(time.Duration(20/during.Backfill.Rate*float64(time.Second))), float64(during.Backfill.ETA), 1e3,
			"20 rows left at the rate")
		assert.Zero(t, stale.Backfill.Rate, "no sample for two minutes: no rate")
		assert.Zero(t, stale.Backfill.ETA)
		assert.Equal(t, during.Backfill.Samples, stale.Backfill.Samples)

		for range 12 {
			require.NoError(t, backfill.Pause(ctx, m, "bob", "look"))
			require.NoError(t, backfill.Resume(ctx, m, "bob", "fine"))
		}
		step(at(2*time.Minute), func() {
			require.NoError(t, m.RecordVerification(ctx, expandcontract.Verification{Clean: true, Rows: 60}))
		})
		step(at(time.Minute), func() { require.NoError(t, m.ReportStage(ctx, "web-1", cutover.Shadow)) })
		step(at(10*time.Second), func() { require.NoError(t, m.ReportStage(ctx, "web-2", cutover.Shadow)) })
		c.Set(end)

		st, err := m.Status(ctx)
		require.NoError(t, err)
		state, err := m.State(ctx)
		require.NoError(t, err)
		assert.Equal(t, state, st.State)
		assert.Equal(t, 1e6, st.State.Backfill.RateLimit)
		assert.Equal(t, 10, st.State.Backfill.BatchSize)
		assert.Equal(t, end, st.At)
		assert.Equal(t, []cutover.Stage{cutover.DualWrite, cutover.Shadow}, st.Stages)
		assert.Equal(t, expandcontract.BackfillProgress{Samples: []expandcontract.Sample{
			{At: began.Add(4 * time.Second), Rows: 10}, {At: began.Add(16 * time.Second), Rows: 40}, {At: began.Add(24 * time.Second), Rows: 60},
		}}, st.Backfill, "done: no rate, no ETA")
		assert.Equal(t, 2*time.Minute, st.VerificationAge)

		assert.Equal(t, int64(2), st.Repairs.Pending, "1 and 3")
		assert.Equal(t, int64(1), st.Repairs.Stuck, "3")
		assert.Equal(t, at(50*time.Minute), st.Repairs.Oldest)
		require.Len(t, st.Repairs.History, 30)
		for i, h := range st.Repairs.History {
			ago := time.Duration(29-i) * 2 * time.Minute
			var want int64
			switch {
			case ago > 50*time.Minute:
			case ago > 30*time.Minute || ago <= 10*time.Minute && ago > 5*time.Minute:
				want = 1 // 1 only
			default:
				want = 2 // 1 and 2 (repaired at 10 minutes before), then 1 and 3
			}
			assert.Equal(t, expandcontract.BacklogSample{At: at(ago), Pending: want}, h, "backlog %v before", ago)
		}

		require.Len(t, st.Instances, 2, "web-3 reported longer ago than InstanceWindow")
		assert.Equal(t, []expandcontract.Instance{
			{ID: "web-1", Stage: cutover.Shadow, SeenAt: at(time.Minute)},
			{ID: "web-2", Stage: cutover.Shadow, SeenAt: at(10 * time.Second)},
		}, st.Instances)
		assert.Equal(t, map[cutover.Stage]int{cutover.Shadow: 2}, st.ByStage)

		all, err := m.Events(ctx)
		require.NoError(t, err)
		require.Len(t, st.Events, 20)
		for i, ev := range st.Events {
			assert.Equal(t, all[len(all)-1-i], ev, "event %d: the newest first", i)
		}
		assert.Equal(t, "verify", st.Events[0].Kind)

		// Every migration, by name, each with its own figures.
		sts, err := s.Statuses(ctx)
		require.NoError(t, err)
		require.Len(t, sts, 2)
		assert.Equal(t, st, sts[1])
		other := sts[0]
		assert.Equal(t, "accounts", other.State.Name)
		assert.Equal(t, []cutover.Stage{cutover.Off}, other.Stages)
		assert.Zero(t, other.Backfill)
		assert.Zero(t, other.VerificationAge)
		assert.Equal(t, int64(0), other.Repairs.Pending)
		assert.True(t, other.Repairs.Oldest.IsZero())
		require.Len(t, other.Repairs.History, 30)
		assert.Zero(t, other.Repairs.History[29].Pending)
		assert.Empty(t, other.Instances)
		assert.Empty(t, other.ByStage)
		require.Len(t, other.Events, 1)
		assert.Equal(t, "create", other.Events[0].Kind)
		accounts, err := ectest.Migration(t, s, "accounts").Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, other, accounts)

		states, err := s.Migrations(ctx)
		require.NoError(t, err)
		assert.Equal(t, []expandcontract.State{other.State, state}, states)

		_, err = ectest.Migration(t, s, "nope").Status(ctx)
		ectest.ErrorIs(t, err, `"nope"`, expandcontract.ErrNotFound)
	})
}

// TestStatusOfAPausedOrCorruptBackfill checks that a paused backfill shows
// no rate, that samples the library cannot read are left out, and that a
// corrupt row fails the status with ErrCorrupt.
func TestStatusOfAPausedOrCorruptBackfill(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m := ectest.ToBackfill(t, s, "users")
		now := ectest.Start.UnixMicro()
		_, err := db.ExecContext(ctx, db.Rebind(`UPDATE cutover_migrations SET backfill_rows = 10, backfill_total = 30,
			backfill_rate = 5, backfill_samples = ? WHERE name = 'users'`), fmt.Sprintf("[[%d,10]]", now))
		require.NoError(t, err)
		st, err := m.Status(ctx)
		require.NoError(t, err)
		assert.Equal(t, 5.0, st.Backfill.Rate)
		assert.Equal(t, 4*time.Second, st.Backfill.ETA)

		require.NoError(t, backfill.Pause(ctx, m, "bob", ""))
		st, err = m.Status(ctx)
		require.NoError(t, err)
		assert.Zero(t, st.Backfill.Rate, "paused")
		assert.Zero(t, st.Backfill.ETA)
		assert.Len(t, st.Backfill.Samples, 1)

		_, err = db.ExecContext(ctx, `UPDATE cutover_migrations SET backfill_samples = 'garbage'`)
		require.NoError(t, err)
		st, err = m.Status(ctx)
		require.NoError(t, err)
		assert.Empty(t, st.Backfill.Samples)

		_, err = db.ExecContext(ctx, `UPDATE cutover_migrations SET backfill_batch_size = -1`)
		require.NoError(t, err)
		_, err = m.Status(ctx)
		ectest.ErrorIs(t, err, `migration "users": backfill rate limit 0, batch size -1`, expandcontract.ErrCorrupt)
		_, err = s.Statuses(ctx)
		assert.ErrorIs(t, err, expandcontract.ErrCorrupt)
	})
}
