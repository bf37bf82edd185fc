package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// waitFor polls cond every 20ms until it holds, for at most bound, and
// fails the test naming what it waited for otherwise.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLagThrottleRealReplica runs a backfill with the lag throttle on a
// PostgreSQL primary whose streaming replica has its replay paused and
// more WAL to replay than the throttle allows: the runner copies nothing
// and the migration's state and status say why, until the replay resumes,
// after which the backfill finishes.
func TestLagThrottleRealReplica(t *testing.T) {
	rp := testdb.PostgresReplica(t)
	ctx := t.Context()
	ids := intIDs(60)
	createCustomers(t, rp.Primary, expandcontract.IntKeys, anys(ids))
	s := ectest.Open(t, rp.Primary.DB, nil)
	ectest.ToBackfill(t, s, "phones")

	_, err := rp.Replica.ExecContext(ctx, `SELECT pg_wal_replay_pause()`)
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the replica's replay to be paused", func() bool {
		var st string
		require.NoError(t, rp.Replica.GetContext(ctx, &st, `SELECT pg_get_wal_replay_pause_state()`))
		return st == "paused"
	})
	// About 4 MB of WAL that the replica receives but does not replay.
	_, err = rp.Primary.ExecContext(ctx, `CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) AS g`)
	require.NoError(t, err)

	var copied []expandcontract.KeyRange
	bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
		backfill.BatchFunc(func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
			copied = append(copied, r)
			return copyRange(ctx, tx, r)
		}),
		backfill.WithBatchSize(10), backfill.WithPollInterval(50*time.Millisecond),
		backfill.WithLagThrottle(rp.Primary.DB, 30*time.Second, backfill.WithMaxLagBytes(1<<20)))
	require.NoError(t, err)
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bf.Run(runCtx) }()

	var why string
	waitFor(t, 30*time.Second, "the runner to record that it is throttled", func() bool {
		why = state(t, s, "phones").Throttled
		return why != ""
	})
	assert.Regexp(t, `^replica replay \d+ bytes behind > 1048576 on \S* ?\(127\.0\.0\.1:\d+\)$`, why)
	st, err := ectest.Migration(t, s, "phones").Status(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, st.State.Backfill.Throttled, "the status shows the throttle")
	assert.Empty(t, st.State.Backfill.Checkpoint, "no batch was copied while the replica lags")
	assert.Zero(t, st.State.Backfill.Rows)
	select {
	case err := <-done:
		t.Fatalf("the run ended while throttled: %v", err)
	default:
	}

	_, err = rp.Replica.ExecContext(ctx, `SELECT pg_wal_replay_resume()`)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(90 * time.Second):
		t.Fatal("the backfill did not finish within 90s of the replay's resumption")
	}
	b := state(t, s, "phones")
	assert.True(t, b.Done())
	assert.Empty(t, b.Throttled, "cleared once copying again")
	assert.Len(t, copied, 6)
	checkCopiedOnce(t, rp.Primary.DB, "customers", len(ids))
}

// TestLagThrottleNotAReplica gives the MariaDB path a server that is no
// replica: the lag cannot be read, so the runner waits, saying why, and
// copies nothing, until its context ends.
func TestLagThrottleNotAReplica(t *testing.T) {
	db := testdb.MySQL(t)
	ids := intIDs(20)
	createCustomers(t, db, expandcontract.IntKeys, anys(ids))
	s := ectest.Open(t, db.DB, nil)
	ectest.ToBackfill(t, s, "phones")
	bf, err := backfill.New(ectest.Migration(t, s, "phones"), backfill.Keyset{Table: "customers", Column: "id"},
		backfill.SQLBatch(copySQL), backfill.WithPollInterval(20*time.Millisecond),
		backfill.WithLagThrottle(db.DB, time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bf.Run(ctx) }()
	var why string
	waitFor(t, 30*time.Second, "the runner to record that it is throttled", func() bool {
		why = state(t, s, "phones").Throttled
		return why != ""
	})
	assert.True(t, strings.HasPrefix(why, "replica lag unknown: replica "), why)
	assert.Contains(t, why, "not a replica")
	cancel()
	require.ErrorIs(t, ectest.RunEnds(t, done, "its context was canceled"), context.Canceled)
	b := state(t, s, "phones")
	assert.Zero(t, b.Rows)
	assert.Empty(t, b.Throttled, "cleared when the lease is given back")
}

// TestLagThrottleHookPauseAndCancel holds a backfill with a throttle hook
// and pauses and cancels it meanwhile: the state says it is throttled, and
// the cancellation ends the run while the hook still holds it.
func TestLagThrottleHookPauseAndCancel(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		createCustomers(t, db, expandcontract.IntKeys, anys(intIDs(20)))
		s := ectest.Open(t, db.DB, nil)
		m := ectest.ToBackfill(t, s, "phones")
		bf, err := backfill.New(m, backfill.Keyset{Table: "customers", Column: "id"}, backfill.SQLBatch(copySQL),
			backfill.WithPollInterval(10*time.Millisecond),
			backfill.WithThrottle(func(context.Context) (time.Duration, error) { return time.Hour, nil }))
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- bf.Run(t.Context()) }()
		waitFor(t, 30*time.Second, "the runner to record that it is throttled", func() bool {
			return state(t, s, "phones").Throttled == "throttle hook: wait 1h0m0s"
		})
		require.NoError(t, backfill.Pause(t.Context(), m, "test", "look"))
		require.NoError(t, backfill.Cancel(t.Context(), m, "test", "stop"))
		require.ErrorIs(t, ectest.RunEnds(t, done, "the cancellation"), backfill.ErrCanceled)
		b := state(t, s, "phones")
		assert.Zero(t, b.Rows)
		assert.Empty(t, b.Throttled)
	})
}

func TestLagThrottleBadInput(t *testing.T) {
	db := testdb.SQLite(t)
	s := ectest.Open(t, db.DB, nil)
	m := ectest.ToBackfill(t, s, "phones")
	keys := backfill.Keyset{Table: "customers", Column: "id"}
	pg := sqlx.NewDb(db.DB.DB, "pgx")
	for _, tc := range []struct {
		opt  backfill.Option
		want string
	}{
		{backfill.WithLagThrottle(nil, time.Second), "nil database for the lag throttle"},
		{backfill.WithLagThrottle(pg, 0), "lag throttle bound must be positive, got 0s"},
		{backfill.WithLagThrottle(pg, time.Second, backfill.WithMaxLagBytes(-1)), "bound in bytes must not be negative, got -1"},
		{backfill.WithLagThrottle(pg, time.Second, nil), "lag option 0 is nil"},
		{backfill.WithLagThrottle(db.DB, time.Second), "the lag throttle reads PostgreSQL or MySQL replicas, not sqlite"},
	} {
		_, err := backfill.New(m, keys, backfill.SQLBatch(copySQL), tc.opt)
		require.ErrorIs(t, err, backfill.ErrInvalidInput)
		assert.ErrorContains(t, err, tc.want)
	}
}
