package verify_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// heldRows is a RowSource whose second Checksum waits, once entered is
// closed, until release is closed or its context ends.
type heldRows struct {
	verify.RowSource
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func hold(src verify.RowSource) *heldRows {
	return &heldRows{RowSource: src, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldRows) Checksum(ctx context.Context, r expandcontract.KeyRange, d verify.Digest) (verify.Checksum, error) {
	if h.calls.Add(1) == 2 {
		close(h.entered)
		select {
		case <-h.release:
		case <-ctx.Done():
			return verify.Checksum{}, context.Cause(ctx)
		}
	}
	return h.RowSource.Checksum(ctx, r, d)
}

// verifying returns the running verification the status of m shows.
func verifying(t *testing.T, m *expandcontract.Migration) *expandcontract.VerificationProgress {
	t.Helper()
	st, err := m.Status(t.Context())
	require.NoError(t, err)
	return st.Verifying
}

// waitFor waits, at most 10 seconds, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, "waiting for %s", what)
}

// TestVerifyShowsItsProgress holds a verification after its first key
// range: the status shows it running, with its owner, rows, total, rate
// and ETA, and shows it no more once it ends, cleanly or canceled.
func TestVerifyShowsItsProgress(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		m := ectest.Migration(t, s, "m")
		createTable(t, db, "old_t", expandcontract.IntKeys)
		fillTable(t, db, "old_t", expandcontract.IntKeys, 30)
		createTable(t, db, "new_t", expandcontract.IntKeys)
		fillTable(t, db, "new_t", expandcontract.IntKeys, 30)
		exec(t, db, `UPDATE cutover_migrations SET backfill_total = 30 WHERE name = 'm'`)
		assert.Nil(t, verifying(t, m), "before any verification")

		old := hold(rowsOf(db, "old_t", expandcontract.IntKeys, "v"))
		v, err := verify.New(m, old, rowsOf(db, "new_t", expandcontract.IntKeys, "v"), verify.WithChunkSize(10),
			verify.WithConcurrency(1), verify.WithOwner("svc-1"), verify.WithProgressInterval(10*time.Millisecond))
		require.NoError(t, err)
		started := c.Now()
		done := make(chan error, 1)
		go func() {
			_, err := v.Run(t.Context())
			done <- err
		}()
		<-old.entered
		waitFor(t, "the first range's rows in the status", func() bool {
			p := verifying(t, m)
			return p != nil && p.Rows == 10
		})
		p := verifying(t, m)
		assert.Equal(t, "svc-1", p.Owner)
		assert.Equal(t, started, p.Started)
		assert.Equal(t, int64(30), p.Total)

		c.Advance(5 * time.Second)
		waitFor(t, "a progress record at the clock's new time", func() bool {
			p := verifying(t, m)
			return p != nil && p.UpdatedAt.Equal(c.Now())
		})
		p = verifying(t, m)
		assert.Equal(t, 2.0, p.Rate, "10 rows in 5 s")
		assert.Equal(t, 10*time.Second, p.ETA, "20 rows left at 2 rows/s")

		close(old.release)
		require.NoError(t, <-done)
		st, err := m.Status(t.Context())
		require.NoError(t, err)
		assert.Nil(t, st.Verifying, "after the run")
		assert.True(t, st.State.Verification.Clean)
		assert.Equal(t, int64(30), st.State.Verification.Rows)

		// A canceled run clears its mark too.
		old = hold(rowsOf(db, "old_t", expandcontract.IntKeys, "v"))
		v, err = verify.New(m, old, rowsOf(db, "new_t", expandcontract.IntKeys, "v"), verify.WithChunkSize(10),
			verify.WithConcurrency(1))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			_, err := v.Run(ctx)
			done <- err
		}()
		<-old.entered
		p = verifying(t, m)
		require.NotNil(t, p, "while the second run is held")
		assert.Regexp(t, `^.+/[0-9]+$`, p.Owner, "the host name and process id")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		assert.Nil(t, verifying(t, m), "after the canceled run")
	})
}

// TestVerifyingGoesStale checks that a run's mark, left by a process that
// stopped without clearing it, shows while its last record is recent and
// no more after a minute.
func TestVerifyingGoesStale(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		m := ectest.Migration(t, s, "m")
		at := c.Now().UnixMicro()
		exec(t, db, `UPDATE cutover_migrations SET verify_run_started_at = ?, verify_run_owner = 'gone',
			verify_run_rows = 40, verify_run_total = 0, verify_run_at = ? WHERE name = 'm'`, at-10_000_000, at)
		c.Advance(expandcontract.VerifyingFresh)
		p := verifying(t, m)
		require.NotNil(t, p, "a minute after its last record")
		assert.Equal(t, expandcontract.VerificationProgress{Started: c.Now().Add(-70 * time.Second), Owner: "gone",
			Rows: 40, UpdatedAt: c.Now().Add(-time.Minute), Rate: 4}, *p, "no total: no ETA")
		c.Advance(time.Microsecond)
		assert.Nil(t, verifying(t, m), "past a minute after its last record")
	})
}
