package racetest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/shadowread"
)

// shadowReader returns a synchronous reader of kv in shadow, recording
// mismatches in the migration's repair log.
func (e *kv) shadowReader(t *testing.T, metrics *metrictest.Reader) *shadowread.Reader[string] {
	t.Helper()
	r, err := shadowread.New[string]("kv.get", cutover.Fixed(cutover.Shadow),
		shadowread.WithSynchronous[string](), shadowread.WithRepairLog[string](e.log),
		shadowread.WithMeterProvider[string](metrics.Provider()), shadowread.WithLogger[string](quiet))
	require.NoError(t, err)
	return r
}

// TestShadowReadInsideADualWriteIsAMismatchRepairHeals reads a key in
// shadow while a dual write of it has reached the old store and not yet the
// new one. The authoritative old store does not change between the read
// and the recheck, so the comparison counts a mismatch and records the key
// for repair of the new store, though nothing is wrong once the write
// finishes. Repairing it afterwards, by copying old to new, changes
// nothing, and the stores agree.
func TestShadowReadInsideADualWriteIsAMismatchRepairHeals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const id = 4
		e := newKV(t, db, db, expandcontract.Backfill)
		e.seed(6, true)
		metrics := metrictest.New(t)
		reader := e.shadowReader(t, metrics)
		w := e.writer(cutover.Shadow)
		ctx := t.Context()

		oldDone, release := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		var writeErr error
		wg.Go(func() {
			writeErr = w.Write(ctx, key(id), func(ctx context.Context, side cutover.Side) error {
				if side == cutover.New {
					if err := await(ctx, release, "the end of the shadow read"); err != nil {
						return err
					}
				}
				err := e.write(ctx, side, id, "saved")
				if side == cutover.Old {
					close(oldDone)
				}
				return err
			})
		})
		require.NoError(t, await(ctx, oldDone, "the old store's write"))
		got, err := reader.Read(ctx, key(id), func(ctx context.Context, side cutover.Side) (string, error) {
			return e.read(ctx, side, id)
		})
		close(release)
		wg.Wait()
		require.NoError(t, writeErr)
		require.NoError(t, err)
		assert.Equal(t, "saved", got, "the caller gets the old store's answer")

		assert.Equal(t, int64(1), metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "mismatch"))
		recorded := entries(t, e.log, "kv.get")
		require.Len(t, recorded, 1)
		assert.Equal(t, cutover.Mismatch, recorded[0].Repair.Reason)
		assert.Equal(t, cutover.New, recorded[0].Repair.Target)
		assert.Empty(t, e.differing(), "the write has finished: the stores agree already")

		stats := drain(t, e.log, e.copyOldToNew)
		assert.Equal(t, 1, stats.Repaired)
		assert.Equal(t, "saved", e.value(cutover.New, id), "the repair copied what the write had written")
		assert.True(t, e.verify().Clean())
	})
}

// TestShadowRecheckTellsARacingWriteFromAMismatch lets a whole dual write
// of the key land between the shadow read's authoritative read and its read
// of the new store. The new store's answer differs from the one the caller
// got, but the recheck of the old store sees that it changed too, so the
// comparison counts a race: no mismatch, nothing recorded.
func TestShadowRecheckTellsARacingWriteFromAMismatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const id = 6
		e := newKV(t, db, db, expandcontract.Backfill)
		e.seed(6, true)
		metrics := metrictest.New(t)
		reader := e.shadowReader(t, metrics)
		w := e.writer(cutover.Shadow)
		ctx := t.Context()

		raced := false
		got, err := reader.Read(ctx, key(id), func(ctx context.Context, side cutover.Side) (string, error) {
			if side == cutover.New && !raced {
				raced = true
				if err := w.Write(ctx, key(id), e.save(id, "saved")); err != nil {
					return "", errors.Join(errors.New("racing write"), err)
				}
			}
			return e.read(ctx, side, id)
		})
		require.NoError(t, err)
		require.True(t, raced)
		assert.Equal(t, "init-6", got, "the caller gets what the old store held when it read")
		assert.Equal(t, int64(1), metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "race"))
		assert.Zero(t, metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "mismatch"))
		assert.Zero(t, metrics.Sum("cutover.shadowread.mismatches", "", ""))
		assert.Empty(t, entries(t, e.log, "kv.get"), "nothing to repair")
		assert.Empty(t, e.differing())
	})
}
