package racetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestDualWriteRaceLeavesTheNewStoreOlder forces, on some keys, two saves
// whose store calls interleave as old A, old B, new B, new A, while other
// goroutines save the other keys, one writer per key. Exactly the forced
// keys end with the older value A in the new store and the newer B in the
// old one. A verification finds exactly those keys and records them for
// repair, a repairer copying old to new fixes them, and a second
// verification is clean.
func TestDualWriteRaceLeavesTheNewStoreOlder(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				const n = 24
				forced := []int64{3, 7, 11, 19, 23}
				e := newKV(t, db, db, expandcontract.DualWrite)
				e.seed(n, true)
				w := e.writer(cutover.DualWrite, mode.opts...)
				ctx := t.Context()

				var wg sync.WaitGroup
				errs := make([]error, n+1)
				for id := int64(1); id <= n; id++ {
					wg.Go(func() {
						if slices.Contains(forced, id) {
							errs[id] = interleave(ctx, w, cutover.Old, key(id), e.save(id, "A"), e.save(id, "B"))
							return
						}
						for i := range 5 { // one writer per key: these keys cannot race
							if errs[id] = w.Write(ctx, key(id), e.save(id, fmt.Sprintf("free-%d", i))); errs[id] != nil {
								return
							}
						}
					})
				}
				wg.Wait()
				require.NoError(t, errors.Join(errs...))

				got := e.differing()
				t.Logf("%s writes on %s: %d of %d keys end older in the new store: %v", mode.name, db.Name, len(got), n, got)
				require.Equal(t, forced, got, "exactly the forced keys differ")
				for _, id := range forced {
					assert.Equal(t, "B", e.value(cutover.Old, id), "key %d: the old store has the last write", id)
					assert.Equal(t, "A", e.value(cutover.New, id), "key %d: the new store has the one before", id)
				}
				assert.Zero(t, pending(t, e.log), "every store call succeeded: the writer recorded nothing")

				res := e.verify()
				assert.Equal(t, int64(len(forced)), res.Differences)
				assert.Equal(t, int64(len(forced)), res.Changed)
				assert.Equal(t, keys(forced), res.Keys, "the verification names exactly the raced keys")
				recorded := entries(t, e.log, verify.Op)
				assert.Equal(t, keys(forced), entryKeys(recorded), "and sends exactly them to the repair log")
				for _, r := range recorded {
					assert.Equal(t, cutover.New, r.Repair.Target)
					assert.Equal(t, cutover.Unverified, r.Repair.Reason)
					assert.EqualError(t, r.Repair.Err, verify.ErrValueDiffers.Error())
				}

				stats := drain(t, e.log, e.copyOldToNew)
				assert.Equal(t, len(forced), stats.Repaired)
				res = e.verify()
				assert.True(t, res.Clean(), "a verification after the repair is clean: %+v", res)
				assert.Empty(t, e.differing())
				for _, id := range forced {
					assert.Equal(t, "B", e.value(cutover.New, id))
				}
				assert.Zero(t, pending(t, e.log))
			})
		})
	}
}

// TestVersionGuardKeepsTheNewStoreFromRegressing runs the interleaving of
// TestDualWriteRaceLeavesTheNewStoreOlder with conditional writes: the old
// store numbers each save of a row, and the new store applies a save only
// over a lower number. The late write of A to the new store then changes
// nothing, and the stores agree without any repair.
func TestVersionGuardKeepsTheNewStoreFromRegressing(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const n = 12
		forced := []int64{2, 5, 6, 11}
		e := newKV(t, db, db, expandcontract.DualWrite)
		e.seed(n, true)
		w := e.writer(cutover.DualWrite)
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make([]error, n+1)
		for _, id := range forced {
			wg.Go(func() {
				errs[id] = interleave(ctx, w, cutover.Old, key(id), e.guardedSave(id, "A"), e.guardedSave(id, "B"))
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))

		assert.Empty(t, e.differing(), "the late, lower-versioned write did not land")
		for _, id := range forced {
			assert.Equal(t, "B", e.value(cutover.New, id))
			var versions [2]int64
			for i, table := range []string{"kv_old", "kv_new"} {
				require.NoError(t, db.GetContext(ctx, &versions[i], db.Dialect.Rebind(`SELECT version FROM `+table+` WHERE id = ?`), id))
			}
			assert.Equal(t, [2]int64{2, 2}, versions, "key %d: both stores hold the second save", id)
		}
		assert.True(t, e.verify().Clean())
		assert.Zero(t, pending(t, e.log), "nothing to repair")
	})
}

// TestLiveWriteRaceLeavesTheOldStoreBehind forces the same interleaving in
// live, where the new store is authoritative and written first: now the
// old store ends with the older value. A verification still reports the
// key with the new store as its target, since it takes the old store as
// the source of truth. Repairing by copying the new store over the old one
// keeps the last write (key 2); copying the old store over the new one, as
// the entry's target suggests, makes the stores agree on the older value
// and loses the last write from both (key 5), yet the next verification is
// clean.
func TestLiveWriteRaceLeavesTheOldStoreBehind(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const n = 8
		forced := []int64{2, 5}
		e := newKV(t, db, db, expandcontract.SwitchReads)
		e.seed(n, true)
		w := e.writer(cutover.Live)
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make([]error, n+1)
		for _, id := range forced {
			wg.Go(func() {
				errs[id] = interleave(ctx, w, cutover.New, key(id), e.save(id, "A"), e.save(id, "B"))
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Equal(t, forced, e.differing())
		for _, id := range forced {
			assert.Equal(t, "B", e.value(cutover.New, id), "the authoritative new store has the last write")
			assert.Equal(t, "A", e.value(cutover.Old, id), "the old store has the one before")
		}

		res := e.verify()
		assert.Equal(t, keys(forced), res.Keys)
		for _, r := range entries(t, e.log, verify.Op) {
			assert.Equal(t, cutover.New, r.Repair.Target, "verification always names the new store")
		}
		drain(t, e.log, func(ctx context.Context, r cutover.Repair) error {
			if r.Key == key(2) {
				return e.copyNewToOld(ctx, r) // from the store authoritative for writes
			}
			return e.copyOldToNew(ctx, r) // as the entry's target says
		})
		assert.True(t, e.verify().Clean(), "either way the stores now agree")
		assert.Equal(t, "B", e.value(cutover.Old, 2), "key 2 keeps the last write")
		assert.Equal(t, "B", e.value(cutover.New, 2))
		assert.Equal(t, "A", e.value(cutover.Old, 5), "key 5 lost the last write from both stores")
		assert.Equal(t, "A", e.value(cutover.New, 5))
	})
}

// TestLiveFallbackIsRepairedFromTheOldStore fails the new store for some
// keys in live: their writes go to the old store only and are recorded as
// fallbacks with the new store as target. Copying from the other store
// over the target fixes them.
func TestLiveFallbackIsRepairedFromTheOldStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const n = 10
		failing := []int64{1, 4, 9}
		e := newKV(t, db, db, expandcontract.SwitchReads)
		e.seed(n, true)
		w := e.writer(cutover.Live)
		errDown := errors.New("new store down")
		for id := int64(1); id <= n; id++ {
			err := w.Write(t.Context(), key(id), func(ctx context.Context, side cutover.Side) error {
				if side == cutover.New && slices.Contains(failing, id) {
					return errDown
				}
				return e.write(ctx, side, id, "saved")
			})
			require.NoError(t, err, "a fallback write succeeds for the caller")
		}
		require.Equal(t, failing, e.differing())
		recorded := entries(t, e.log, "kv.save")
		assert.Equal(t, keys(failing), entryKeys(recorded))
		for _, r := range recorded {
			assert.Equal(t, cutover.Fallback, r.Repair.Reason)
			assert.Equal(t, cutover.New, r.Repair.Target)
			assert.Equal(t, cutover.Live, r.Repair.Stage)
		}
		stats := drain(t, e.log, e.copyToTarget)
		assert.Equal(t, len(failing), stats.Repaired)
		assert.Empty(t, e.differing())
		assert.True(t, e.verify().Clean())
		for _, id := range failing {
			assert.Equal(t, "saved", e.value(cutover.New, id))
		}
	})
}

// TestRepairRacingAWriteCanRegressTheNewStore lets a repair read the old
// store, then a dual write of the same key land on both stores, and only
// then the repair write the value it read to the new store. The entry is
// marked repaired, the log is empty, and yet the new store is behind: only
// a verification after the last write catches it. Repaired again with no
// write racing, the stores agree.
func TestRepairRacingAWriteCanRegressTheNewStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		const id = 3
		e := newKV(t, db, db, expandcontract.DualWrite)
		e.seed(5, true)
		require.NoError(t, e.write(t.Context(), cutover.Old, id, "missed")) // a secondary write that never happened
		require.Equal(t, []string{key(id)}, e.verify().Keys)

		w := e.writer(cutover.DualWrite)
		stats := drain(t, e.log, func(ctx context.Context, r cutover.Repair) error {
			v, err := e.read(ctx, cutover.Old, id)
			if err != nil {
				return err
			}
			if err := w.Write(ctx, key(id), e.save(id, "latest")); err != nil {
				return err
			}
			return e.write(ctx, cutover.New, id, v)
		})
		assert.Equal(t, 1, stats.Repaired)
		assert.Zero(t, pending(t, e.log), "the log says all is repaired")
		assert.Equal(t, "latest", e.value(cutover.Old, id))
		assert.Equal(t, "missed", e.value(cutover.New, id), "the repair wrote what it read, over the newer write")

		res := e.verify()
		assert.Equal(t, []string{key(id)}, res.Keys, "a verification after the last write catches it")
		drain(t, e.log, e.copyOldToNew)
		assert.True(t, e.verify().Clean())
		assert.Equal(t, "latest", e.value(cutover.New, id))
	})
}

// TestRandomDualWritesConvergeAfterVerifyAndRepair lets several goroutines
// save each key at once, with random pauses between the two store calls of
// a save, while another goroutine verifies and repairs. Whatever
// the writes left behind, once they stop: a verification finds exactly the
// keys that differ, a repairer fixes them, and the next verification is
// clean.
func TestRandomDualWritesConvergeAfterVerifyAndRepair(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				const keys, writers, sweeps = 16, 6, 3
				seed := rand.Uint64()
				t.Logf("seed %d", seed)
				db.SetMaxOpenConns(32) // within every server's connection limit
				e := newKV(t, db, db, expandcontract.DualWrite)
				e.seed(keys, true)
				w := e.writer(cutover.DualWrite, mode.opts...)
				ctx := t.Context()

				stop := make(chan struct{})
				var bg sync.WaitGroup
				var bgErr error
				rounds := 0
				bg.Go(func() { // verification and repair while the first sweeps go on: harmless, and never enough
					for ; rounds < 50; rounds++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, bgErr = suite.Verify(ctx, suite.Migration(e.store, migration), e.rows(cutover.Old), e.rows(cutover.New)); bgErr != nil {
							return
						}
						if _, bgErr = drainOnce(ctx, e.log, e.copyOldToNew); bgErr != nil {
							return
						}
					}
				})
				// Each sweep starts, at once, writers goroutines per key, each
				// saving its key once with a random pause between the two store
				// calls: every key gets that many racing saves per sweep.
				var mu sync.Mutex
				var errs []error
				for sweep := range sweeps {
					if sweep == sweeps-1 {
						close(stop) // no repair after the last write: what differs now is the writes' doing
						bg.Wait()
					}
					r := rand.New(rand.NewPCG(seed, uint64(sweep)))
					gate := make(chan struct{})
					var wg sync.WaitGroup
					for id := int64(1); id <= keys; id++ {
						for g := range writers {
							pause := time.Duration(r.IntN(1000)) * time.Microsecond
							val := fmt.Sprintf("s%d-g%d", sweep, g)
							wg.Go(func() {
								<-gate
								err := w.Write(ctx, key(id), func(ctx context.Context, side cutover.Side) error {
									if side == cutover.New {
										time.Sleep(pause)
									}
									return e.write(ctx, side, id, val)
								})
								if err != nil {
									mu.Lock()
									errs = append(errs, err)
									mu.Unlock()
								}
							})
						}
					}
					close(gate)
					wg.Wait()
				}
				require.NoError(t, errors.Join(errs...))
				require.NoError(t, bgErr)

				diff := e.differing()
				t.Logf("%s writes on %s: %d saves, %d at once on each of %d keys, in %d sweeps (%d verify+repair rounds during the first %d): %d keys differ afterwards: %v",
					mode.name, db.Name, writers*sweeps*keys, writers, keys, sweeps, rounds, sweeps-1, len(diff), diff)
				res := e.verify()
				assert.Equal(t, int64(len(diff)), res.Differences, "the verification after the last write finds every difference")
				assert.Equal(t, keyStrings(diff), res.Keys)
				drain(t, e.log, e.copyOldToNew)
				res = e.verify()
				assert.True(t, res.Clean(), "%+v", res)
				assert.Empty(t, e.differing())
				assert.Equal(t, e.all(cutover.Old), e.all(cutover.New), "the stores are identical")
				assert.Zero(t, pending(t, e.log))
			})
		})
	}
}

// keyStrings is keys, with nil for no ids, as a VerifyResult lists them.
func keyStrings(ids []int64) []string {
	if len(ids) == 0 {
		return nil
	}
	return keys(ids)
}
