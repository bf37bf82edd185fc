package verify_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// compared is a RowSource that records the ranges whose checksum it
// computed, and that can cancel a run at the start of a checksum.
type compared struct {
	verify.RowSource
	mu     sync.Mutex
	ranges map[string]int // checksums computed, by range
	calls  int
	cancel func() // called at the start of checksum number cancelAt (from 1)
	at     int    // cancelAt
}

func (c *compared) Checksum(ctx context.Context, r expandcontract.KeyRange, d verify.Digest) (verify.Checksum, error) {
	c.mu.Lock()
	c.calls++
	if c.cancel != nil && c.calls == c.at {
		c.cancel()
	}
	c.mu.Unlock()
	sum, err := c.RowSource.Checksum(ctx, r, d)
	if err == nil {
		c.mu.Lock()
		c.ranges[fmt.Sprint(r.From, "|", r.To)]++
		c.mu.Unlock()
	}
	return sum, err
}

// verifyRanges returns the ranges of the recorded verification of "m", as
// compared keys them, and how many are done.
func verifyRanges(t *testing.T, db *testdb.DB) (all []string, done int) {
	t.Helper()
	var rows []struct {
		From *string `db:"range_from"`
		To   *string `db:"range_to"`
		Done *int64  `db:"done_at"`
	}
	require.NoError(t, db.SelectContext(t.Context(), &rows, `SELECT range_from, range_to, done_at FROM cutover_verify_ranges
		WHERE migration = 'm' ORDER BY range_no`))
	bound := func(s *string) string {
		if s == nil {
			return "<nil>"
		}
		return (*s)[1:] // "i" and the decimal of an integer key
	}
	for _, r := range rows {
		all = append(all, bound(r.From)+"|"+bound(r.To))
		if r.Done != nil {
			done++
		}
	}
	return all, done
}

// differing fills old_t and new_t with 95 rows and four differences.
func differing(t *testing.T, db *testdb.DB) {
	t.Helper()
	createTable(t, db, "old_t", expandcontract.IntKeys)
	createTable(t, db, "new_t", expandcontract.IntKeys)
	fillTable(t, db, "old_t", expandcontract.IntKeys, 95)
	exec(t, db, `INSERT INTO new_t SELECT * FROM old_t`)
	exec(t, db, `UPDATE new_t SET v = 'changed' WHERE id = 40`)
	exec(t, db, `DELETE FROM new_t WHERE id = 122`)
	exec(t, db, `INSERT INTO new_t (id, v) VALUES (77, 'odd')`)
	exec(t, db, `INSERT INTO new_t (id, v) VALUES (500, 'late')`)
}

// same drops what differs from run to run of two results.
func same(r verify.Result) verify.Result {
	r.Started, r.Duration = time.Time{}, 0
	return r
}

// TestVerifyResumesWhereItStopped cancels a verification with WithResume
// at the start of its fifth range: the next run compares the ranges left,
// each range is compared once over the two runs, and the result, stored
// as of the first run's start, equals that of a verification that ran
// through.
func TestVerifyResumesWhereItStopped(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		differing(t, db)
		m := ectest.Migration(t, s, "m")
		old := &compared{RowSource: rowsOf(db, "old_t", expandcontract.IntKeys, "v"), ranges: map[string]int{}}
		new := rowsOf(db, "new_t", expandcontract.IntKeys, "v")
		opts := []verify.Option{verify.WithResume(), verify.WithChunkSize(10), verify.WithConcurrency(1), verify.WithOwner("a")}

		ctx, cancel := context.WithCancel(t.Context())
		old.cancel, old.at = cancel, 5
		first, err := ectest.Verify(ctx, m, old, new, opts...)
		require.ErrorIs(t, err, context.Canceled)
		cancel()
		assert.Equal(t, int64(40), first.Rows, "four ranges of ten rows")
		all, done := verifyRanges(t, db)
		require.Len(t, all, 10, "nine ranges of ten of the old side's keys and the rest")
		assert.Equal(t, 4, done)
		assert.Len(t, old.ranges, 4)
		st, err := m.State(t.Context())
		require.NoError(t, err)
		assert.True(t, st.Verification.At.IsZero(), "nothing stored yet")

		c.Advance(time.Minute)
		old.cancel = nil
		bounded, stop := context.WithTimeout(t.Context(), time.Minute) // a run waiting for a range fails the test
		defer stop()
		second, err := ectest.Verify(bounded, m, old, new, append(opts, verify.WithOwner("b"))...)
		require.NoError(t, err)
		assert.ElementsMatch(t, all, slices.Collect(maps.Keys(old.ranges)), "every range compared")
		for r, n := range old.ranges {
			assert.Equal(t, 1, n, "range %s compared once", r)
		}
		left, done := verifyRanges(t, db)
		assert.Len(t, left, 10, "the ranges stay until the next verification")
		assert.Equal(t, 10, done)
		st, err = m.State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), st.Verification.At.UTC(), "as of the first run's start")
		assert.False(t, st.Verification.Clean)

		whole, err := ectest.Verify(t.Context(), m, rowsOf(db, "old_t", expandcontract.IntKeys, "v"), new,
			verify.WithChunkSize(10), verify.WithConcurrency(1))
		require.NoError(t, err)
		assert.Equal(t, same(whole), same(second))
		assert.Equal(t, []string{"40", "77", "122", "500"}, second.Keys)
		assert.Equal(t, int64(4), second.Differences)
	})
}

// TestVerifySharedByInstances runs two verifications with WithResume at
// once, as two instances would: they share the ranges, each compared
// once, and both return the result of a verification that ran alone.
func TestVerifySharedByInstances(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := verifyStore(t, db, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		differing(t, db)
		old := &compared{RowSource: rowsOf(db, "old_t", expandcontract.IntKeys, "v"), ranges: map[string]int{}}
		new := rowsOf(db, "new_t", expandcontract.IntKeys, "v")
		bounded, stop := context.WithTimeout(t.Context(), time.Minute) // a run waiting for a range fails the test
		defer stop()
		var wg sync.WaitGroup
		results := make([]verify.Result, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				results[i], errs[i] = ectest.Verify(bounded, ectest.Migration(t, s, "m"), old, new, verify.WithResume(),
					verify.WithChunkSize(10), verify.WithOwner(fmt.Sprint("instance-", i)))
			})
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		for r, n := range old.ranges {
			assert.Equal(t, 1, n, "range %s compared once", r)
		}
		assert.Len(t, old.ranges, 10)
		whole, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), rowsOf(db, "old_t", expandcontract.IntKeys, "v"), new,
			verify.WithChunkSize(10))
		require.NoError(t, err)
		assert.Equal(t, same(whole), same(results[0]))
		assert.Equal(t, same(whole), same(results[1]))
	})
}
