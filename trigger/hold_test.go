package trigger_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/trigger"
)

var latencyRule = trigger.Rule{Kind: trigger.Latency, Threshold: 2, Window: time.Minute, MinSamples: 10, Action: trigger.Alarm}

// Hold names the latency trigger while it fires, and nothing otherwise:
// another trigger firing holds nothing.
func TestHoldWhileTheLatencyTriggerFires(t *testing.T) {
	f := newFixture(t, errorRule, latencyRule)
	why, err := f.m.Hold(t.Context())
	require.NoError(t, err)
	assert.Empty(t, why, "before any evaluation")

	f.calls(cutover.New, cutover.RoleAuthoritative, 40, 10, time.Millisecond) // 25% errors
	f.calls(cutover.Old, cutover.RoleSecondary, 40, 0, time.Millisecond)
	h := f.step(t, time.Second)
	require.Equal(t, trigger.StateFiring, h.Triggers[0].State, "the error rate fires")
	why, _ = f.m.Hold(t.Context())
	assert.Empty(t, why, "only the latency trigger holds a backfill")

	f.calls(cutover.New, cutover.RoleAuthoritative, 30, 0, 3*time.Millisecond) // new mean 2ms over 1ms
	require.Equal(t, trigger.StateOK, f.step(t, time.Second).Triggers[1].State, "twice is not above twice")
	why, _ = f.m.Hold(t.Context())
	assert.Empty(t, why)

	f.calls(cutover.New, cutover.RoleAuthoritative, 60, 0, 6*time.Millisecond) // new mean 4ms
	f.step(t, time.Second)
	why, _ = f.m.Hold(t.Context())
	assert.Equal(t, "latency trigger firing: new store 4x the old store's mean latency over 1m0s (threshold 2x)", why)

	calm(t, f)
	why, _ = f.m.Hold(t.Context())
	assert.Empty(t, why, "re-armed after a calm window")
}

// calm moves f's clock past a whole window without a breach, evaluating
// on the way, so that a firing trigger re-arms.
func calm(t *testing.T, f *fixture) {
	t.Helper()
	for range 3 {
		f.step(t, time.Minute)
	}
	for i, th := range f.m.Health().Triggers {
		require.Equal(t, trigger.StateOK, th.State, "trigger %d after a calm window", i)
	}
}

// A backfill held by a monitor's Hold records the latency trigger as the
// reason it waits, copies nothing while the trigger fires, and finishes
// once it no longer does.
func TestBackfillHeldByTheLatencyTrigger(t *testing.T) {
	db := testdb.SQLite(t)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, email) VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	require.NoError(t, err)
	f := newFixture(t, latencyRule)
	// The store keeps a clock of its own, which stands still, so that the
	// monitor's windows pass without the backfill's lease running out.
	m := handles(t, db, testutil.NewClock(time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)))()
	toBackfill(t, m)

	f.calls(cutover.Old, cutover.RoleSecondary, 20, 0, time.Millisecond)
	f.calls(cutover.New, cutover.RoleAuthoritative, 20, 0, 10*time.Millisecond)
	require.Equal(t, trigger.StateFiring, f.step(t, time.Second).Triggers[0].State)

	var copied atomic.Int64
	bf, err := backfill.New(m, backfill.Keyset{Table: "users", Column: "id"},
		backfill.BatchFunc(func(context.Context, *sqlx.Tx, expandcontract.KeyRange) (int64, error) { copied.Add(1); return 1, nil }),
		backfill.WithPollInterval(5*time.Millisecond), backfill.WithHold(f.m.Hold))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- bf.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.State(ctx)
		require.NoError(t, err)
		if st.Backfill.Throttled != "" {
			assert.Equal(t, "latency trigger firing: new store 10x the old store's mean latency over 1m0s (threshold 2x)", st.Backfill.Throttled)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waited 30s for the backfill to record that the latency trigger holds it")
		}
		time.Sleep(5 * time.Millisecond)
	}
	assert.Zero(t, copied.Load(), "nothing copied while the trigger fires")

	calm(t, f)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30s for the backfill to finish once the trigger no longer fires")
	}
	st, err := m.State(ctx)
	require.NoError(t, err)
	assert.True(t, st.Backfill.Done())
	assert.Empty(t, st.Backfill.Throttled)
	assert.Positive(t, copied.Load())
}
