package repair_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The size of the log: one pending entry per key, whatever the number of
// writes, and repaired entries deleted after the retention.

// TestRepairLogKeepsOnePendingEntryPerKey records 3000 writes to 3 keys,
// as a long outage of the new store would, and then more from several
// instances at once: the log holds 3 pending entries, which count every
// record.
func TestRepairLogKeepsOnePendingEntryPerKey(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		for i := range 3000 {
			f.record(t, repairOfKey(fmt.Sprint(i%3)))
		}
		assert.Equal(t, int64(3), f.pending(t))

		const instances, each = 4, 50
		var wg sync.WaitGroup
		for range instances {
			log, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
			require.NoError(t, err)
			for k := range 3 {
				wg.Go(func() {
					for range each {
						assert.NoError(t, log.Record(t.Context(), repairOfKey(fmt.Sprint(k))))
					}
				})
			}
		}
		wg.Wait()

		entries := f.entries(t, true)
		require.Len(t, entries, 3)
		for i, e := range entries {
			assert.Equal(t, fmt.Sprint(i), e.Repair.Key)
			assert.Equal(t, int64(1000+instances*each), e.Records, "key %s", e.Repair.Key)
			assert.False(t, e.Done())
		}
		var calls repairCalls
		stats, err := f.repairer(t, calls.fn(nil)).RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 3, Repaired: 3}, stats)
		assert.Equal(t, 3, calls.len())

		// A record after the repair starts a new entry.
		f.record(t, repairOfKey("0"))
		assert.Equal(t, int64(1), f.pending(t))
		assert.Len(t, f.entries(t, true), 4)
	})
}

// TestRepairRecordDuringTheRepairIsNotLost records a key again while its
// repair runs, after the repair function read the source: the write
// behind that record may be newer than what the repair copied. The entry
// is not marked done but due again at once, and the next round repairs
// the key again.
func TestRepairRecordDuringTheRepairIsNotLost(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("42"))
		other, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
		require.NoError(t, err)
		var calls repairCalls
		r := f.repairer(t, func(ctx context.Context, rep cutover.Repair) error {
			if calls.len() == 0 {
				// Another instance writes the key after this repair read it.
				require.NoError(t, other.Record(ctx, repairOfKey("42")))
			}
			return calls.fn(nil)(ctx, rep)
		})
		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, RecordedAgain: 1}, stats)
		entries := f.entries(t, true)
		require.Len(t, entries, 1)
		e := entries[0]
		assert.False(t, e.Done(), "the record during the repair is not lost")
		assert.Equal(t, int64(2), e.Records)
		assert.Zero(t, e.Attempts, "the repair did not fail")
		assert.False(t, e.NextAttemptAt.After(f.clock.Now()), "due again at once, not after the claim TTL")

		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Repaired: 1}, stats)
		assert.Equal(t, 2, calls.len(), "the key was repaired again")
		assert.Zero(t, f.pending(t))
	})
}

// TestRepairRecordJoinsAWaitingOrStuckEntry records keys whose entries
// wait for a retry or are stuck. A waiting entry keeps its time and
// attempts, so that a store that is down is not tried once per write; a
// stuck one is due at once, with its attempts counted from zero: the new
// write is news its repair has not seen.
func TestRepairRecordJoinsAWaitingOrStuckEntry(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		f.record(t, repairOfKey("1"))
		f.record(t, repairOfKey("2"))
		r := f.repairer(t, func(_ context.Context, rep cutover.Repair) error {
			return fmt.Errorf("new store down for %s", rep.Key)
		}, repair.WithBackoff(time.Minute, time.Minute), repair.WithMaxAttempts(2))
		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 2, Failed: 2}, stats)
		before := f.entries(t, false)[0]
		require.True(t, before.NextAttemptAt.After(f.clock.Now()))

		f.record(t, repairOfKey("1"))
		after := f.entries(t, false)[0]
		assert.Equal(t, int64(2), after.Records)
		assert.Equal(t, 1, after.Attempts, "a waiting entry keeps its attempts")
		assert.True(t, before.NextAttemptAt.Equal(after.NextAttemptAt), "and its time")
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Zero(t, stats.Claimed, "nothing is due")

		f.clock.Advance(time.Minute)
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 2, Failed: 2, Stuck: 2}, stats)
		f.record(t, repairOfKey("2"))
		entries := f.entries(t, false)
		require.Len(t, entries, 2)
		assert.True(t, entries[0].Stuck, "an entry not recorded again stays stuck")
		assert.False(t, entries[1].Stuck, "recorded again")
		assert.Zero(t, entries[1].Attempts)
		assert.True(t, f.clock.Now().Equal(entries[1].NextAttemptAt), "due at once")
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 1, Failed: 1}, stats)
	})
}

// TestRepairRetentionDeletesOldRepairedEntries repairs entries and lets
// the clock pass the retention: the repairer deletes the repaired entries
// older than it as it runs, and never an entry not repaired.
func TestRepairRetentionDeletesOldRepairedEntries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newRepairFixture(t, db)
		for i := range 5 {
			f.record(t, repairOfKey(fmt.Sprint(i)))
		}
		var calls repairCalls
		ok := f.repairer(t, calls.fn(nil))
		stats, err := ok.RunOnce(t.Context())
		require.NoError(t, err)
		require.Equal(t, 5, stats.Repaired)
		// An entry that stays pending: its repair failed, and it waits
		// longer than this test runs.
		failing := f.repairer(t, (&repairCalls{}).fn(errors.New("down")), repair.WithRetention(time.Hour),
			repair.WithBackoff(30*24*time.Hour, 30*24*time.Hour))
		f.record(t, repairOfKey("pending"))
		stats, err = failing.RunOnce(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, stats.Failed)
		require.Len(t, f.entries(t, true), 6)

		f.clock.Advance(repair.DefaultRetention - time.Minute)
		_, err = ok.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Len(t, f.entries(t, true), 6, "repaired less than the retention ago")

		f.clock.Advance(2 * time.Minute)
		f.record(t, repairOfKey("3"))
		stats, err = ok.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, stats.Repaired)
		entries := f.entries(t, true)
		require.Len(t, entries, 2, "the 5 repaired over a week ago are deleted")
		assert.Equal(t, "pending", entries[0].Repair.Key)
		assert.False(t, entries[0].Done())
		assert.Equal(t, "3", entries[1].Repair.Key)
		assert.True(t, entries[1].Done(), "repaired just now")

		// An hour on, a repairer that keeps entries forever deletes
		// nothing; one with a retention of an hour deletes the entry
		// repaired an hour ago, never the pending one.
		f.clock.Advance(time.Hour + time.Minute)
		keep := f.repairer(t, (&repairCalls{}).fn(nil), repair.WithRetention(0))
		_, err = keep.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Len(t, f.entries(t, true), 2)
		_, err = failing.RunOnce(t.Context())
		require.NoError(t, err)
		entries = f.entries(t, true)
		require.Len(t, entries, 1)
		assert.Equal(t, "pending", entries[0].Repair.Key)
		assert.False(t, entries[0].Done())
	})
}

// TestRepairLogOfSchema1IsUpgraded opens tables of schema version 1, whose
// repair log holds an entry per write, as the library wrote them before
// records joined pending entries: Open adds what version 2 needs, the old
// entries stay pending and are repaired, together with the one new records
// of their key join, by one call.
func TestRepairLogOfSchema1IsUpgraded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		f := newRepairFixture(t, db)
		// Back to version 1: no index and columns of version 2.
		drop := `DROP INDEX cutover_repairs_open`
		if db.Name == sqldialect.MySQL {
			drop += ` ON cutover_repairs`
		}
		for _, q := range []string{drop, `ALTER TABLE cutover_repairs DROP COLUMN open_entry`,
			`ALTER TABLE cutover_repairs DROP COLUMN records`, `ALTER TABLE cutover_repairs DROP COLUMN recorded_at`,
			`UPDATE cutover_schema SET version = 1`} {
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		insert := db.Rebind(`INSERT INTO cutover_repairs (migration, op, entity_key, target, stage, reason, error,
			created_at, attempts, next_attempt_at, last_error) VALUES ('users', 'users.save', ?, 1, 'dualwrite',
			'secondary_failed', 'new store down', ?, 0, ?, '')`)
		at := ectest.Start.UnixMicro()
		for _, key := range []string{"1", "1", "2", "1"} {
			_, err := db.ExecContext(ctx, insert, key, at, at)
			require.NoError(t, err)
		}

		assert.Equal(t, int64(expandcontract.SchemaVersion), ectest.OpenAtOnce(t, db.DB))
		old := f.entries(t, false)
		require.Len(t, old, 4, "the entries of version 1 are kept")
		for _, e := range old {
			assert.Equal(t, int64(1), e.Records)
			assert.True(t, ectest.Start.Equal(e.Repair.Time))
		}

		log, err := repair.NewLog(ectest.Migration(t, f.open(t), "users"))
		require.NoError(t, err)
		f.clock.Advance(time.Second)
		for range 3 {
			require.NoError(t, log.Record(ctx, repairOfKey("1")))
		}
		require.Len(t, f.entries(t, false), 5, "records join a new entry, not those of version 1")

		var calls repairCalls
		stats, err := f.repairer(t, calls.fn(nil)).RunOnce(ctx)
		require.NoError(t, err)
		assert.Equal(t, repair.Stats{Claimed: 5, Repaired: 5}, stats)
		require.Len(t, calls.calls, 2, "one call per key")
		assert.True(t, f.clock.Now().Equal(calls.calls[0].Time), "with the fields of the latest record")
		assert.Zero(t, f.pending(t))
		f.record(t, repairOfKey("1"))
		assert.Equal(t, int64(1), f.pending(t))

		// A repairer of version 1, still running, marks that entry done
		// without giving up its place as the key's pending entry: the next
		// record of the key makes it pending again.
		_, err = db.ExecContext(ctx, db.Rebind(`UPDATE cutover_repairs SET done_at = ? WHERE done_at IS NULL`), f.clock.Now().UnixMicro())
		require.NoError(t, err)
		require.Zero(t, f.pending(t))
		all := len(f.entries(t, true))
		f.record(t, repairOfKey("1"))
		entries := f.entries(t, false)
		require.Len(t, entries, 1)
		assert.Equal(t, int64(2), entries[0].Records)
		assert.True(t, f.clock.Now().Equal(entries[0].NextAttemptAt), "due at once")
		assert.Len(t, f.entries(t, true), all, "the entry came back; no new one")
	})
}
