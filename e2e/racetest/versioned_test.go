package racetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/sqlrow"
)

// versioned is the kv migration written with versions: package sqlrow's
// rows of kv_old and kv_new, and its repair.
type versioned struct {
	*kv
	tables [2]*sqlrow.Rows
	pair   *sqlrow.Pair
}

func newVersioned(t *testing.T, db *testdb.DB, phase expandcontract.Phase, stage func(context.Context, string) cutover.Stage) *versioned {
	t.Helper()
	v := &versioned{kv: newKV(t, db, db, phase)}
	for side, table := range []string{"kv_old", "kv_new"} {
		rows, err := sqlrow.New(db.DriverName(), sqlrow.Table{Name: table, Key: "id", Version: "version", Columns: []string{"val"}})
		require.NoError(t, err)
		v.tables[side] = rows
	}
	v.pair = &sqlrow.Pair{
		Old: sqlrow.Store{DB: db.DB, Rows: v.tables[cutover.Old]}, New: sqlrow.Store{DB: db.DB, Rows: v.tables[cutover.New]},
		Key:   func(k string) (any, error) { return strconv.ParseInt(k, 10, 64) },
		Stage: stage,
	}
	return v
}

// save returns the versioned store function of one save of val to id.
func (v *versioned) save(id int64, val string) func(context.Context, cutover.Stamp) (cutover.Version, error) {
	return func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
		return v.tables[s.Side].Save(ctx, v.oldDB, s, id, val)
	}
}

// row returns the version and value of id in one store.
func (v *versioned) row(side cutover.Side, id int64) (cutover.Version, string) {
	v.t.Helper()
	row, err := v.tables[side].Get(v.t.Context(), v.oldDB, id)
	require.NoError(v.t, err)
	if !row.Found {
		return 0, "<missing>"
	}
	return row.Version, row.Values[0].(string)
}

// TestVersionedLiveRaceKeepsTheLastWriteInBothStores is
// TestLiveWriteRaceLeavesTheOldStoreBehind with versioned writes and the
// library's repair. The forced interleaving leaves no difference: the old
// store refuses the late, lower-versioned call, and that write starts over
// above the version it found, so both stores keep it. And where the old store did
// miss the last write (its call failed), the verification's entry names the
// new store as target, as it always does, yet the repair copies by version,
// new over old, and both stores keep the last write.
func TestVersionedLiveRaceKeepsTheLastWriteInBothStores(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				const n = 8
				forced := []int64{2, 5}
				e := newVersioned(t, db, expandcontract.SwitchReads, nil)
				e.seed(n, true)
				w := e.writer(cutover.Live, mode.opts...)
				ctx := t.Context()
				var wg sync.WaitGroup
				errs := make([]error, n+1)
				for _, id := range forced {
					wg.Go(func() { errs[id] = interleaveVersioned(ctx, w, cutover.New, key(id), e.save(id, "A"), e.save(id, "B")) })
				}
				wg.Wait()
				require.NoError(t, errors.Join(errs...))
				assert.Empty(t, e.differing(), "A's late call found B's higher version and A started over")
				for _, id := range forced {
					assert.Equal(t, "A", e.value(cutover.Old, id), "both stores keep A, the write that returned last")
				}

				// The old store misses the last write of key 7.
				_, err := w.WriteVersioned(ctx, key(7), e.save(7, "first"))
				require.NoError(t, err)
				last, err := w.WriteVersioned(ctx, key(7), func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
					if s.Side == cutover.Old {
						return 0, errors.New("old store down")
					}
					return e.save(7, "last")(ctx, s)
				})
				require.NoError(t, err)
				// The writer's own entry names the old store and would repair
				// it; drop it, to repair from the verification's entry alone.
				drain(t, e.log, func(context.Context, cutover.Repair) error { return nil })
				res := e.verify()
				require.Equal(t, []string{key(7)}, res.Keys)
				for _, r := range entries(t, e.log, verify.Op) {
					assert.Equal(t, cutover.New, r.Repair.Target, "verification names the new store")
				}
				drain(t, e.log, e.pair.Repair)
				for _, side := range []cutover.Side{cutover.Old, cutover.New} {
					v, val := e.row(side, 7)
					assert.Equal(t, "last", val, "%s store keeps the last write", side)
					assert.Equal(t, last, v)
				}
				assert.True(t, e.verify().Clean())
			})
		})
	}
}

// interleaveVersioned is interleave for versioned writes.
func interleaveVersioned(ctx context.Context, w *dualwrite.Writer, auth cutover.Side, key string, a, b func(context.Context, cutover.Stamp) (cutover.Version, error)) error {
	aAuth, bDone := make(chan struct{}), make(chan struct{})
	wroteAuth := sync.OnceFunc(func() { close(aAuth) }) // A's start over writes it again
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errA = w.WriteVersioned(ctx, key, func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
			if s.Side == auth {
				defer wroteAuth()
				return a(ctx, s)
			}
			if err := await(ctx, bDone, "the second write of "+key); err != nil {
				return 0, err
			}
			return a(ctx, s)
		})
	})
	wg.Go(func() {
		defer close(bDone)
		if errB = await(ctx, aAuth, "the first write's authoritative call on "+key); errB != nil {
			return
		}
		_, errB = w.WriteVersioned(ctx, key, b)
	})
	wg.Wait()
	return errors.Join(errA, errB)
}

// TestVersionedRandomWritesAndRepairsConverge lets several goroutines save
// each key at once, each save in a stage drawn at random (so that some
// requests write the old store first and others the new one, as
// per-request stages do in switchreads), with random pauses between the
// two store calls and one save in ten failing one of its calls, while a repairer
// with the library's repair drains the log and verifications run, all
// without pausing the writes. Once they stop and the log is drained, both
// stores hold, for every key, the acknowledged write with the highest
// version, and nothing else: no key older than its last acknowledged write
// in either store, and no repair overwrote a newer write.
func TestVersionedRandomWritesAndRepairsConverge(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				const keys, writers, sweeps = 16, 6, 3
				seed := rand.Uint64()
				t.Logf("seed %d", seed)
				db.SetMaxOpenConns(32)
				stageOf := []cutover.Stage{cutover.DualWrite, cutover.Shadow, cutover.Live, cutover.Rampdown}
				e := newVersioned(t, db, expandcontract.SwitchReads, nil)
				e.seed(keys, true)
				var draw sync.Mutex
				rng := rand.New(rand.NewPCG(seed, 0))
				intn := func(n int) int { draw.Lock(); defer draw.Unlock(); return rng.IntN(n) }
				stages := cutover.StageFunc(func(context.Context) cutover.Stage { return stageOf[intn(len(stageOf))] })
				w, err := dualwrite.New("kv.save", stages, e.log,
					append([]dualwrite.Option{dualwrite.WithLogger(quiet), dualwrite.WithTimeout(waitLimit)}, mode.opts...)...)
				require.NoError(t, err)
				ctx := t.Context()

				type acked struct {
					version cutover.Version
					val     string
				}
				var mu sync.Mutex
				last := make(map[int64]acked)
				var errs []error
				failed := 0
				errDown := errors.New("store down")

				stop := make(chan struct{})
				var bg sync.WaitGroup
				var bgErr error
				rounds := 0
				bg.Go(func() {
					for ; rounds < 200; rounds++ {
						select {
						case <-stop:
							return
						default:
						}
						if _, bgErr = suite.Verify(ctx, suite.Migration(e.store, migration), e.rows(cutover.Old), e.rows(cutover.New)); bgErr != nil {
							return
						}
						if _, bgErr = drainOnce(ctx, e.log, e.pair.Repair); bgErr != nil {
							return
						}
					}
				})
				for sweep := range sweeps {
					gate := make(chan struct{})
					var wg sync.WaitGroup
					for id := int64(1); id <= keys; id++ {
						for g := range writers {
							val := fmt.Sprintf("s%d-g%d", sweep, g)
							pause := time.Duration(intn(1000)) * time.Microsecond
							fail := intn(10) == 0
							failSide := cutover.Side(intn(2))
							wg.Go(func() {
								<-gate
								v, err := w.WriteVersioned(ctx, key(id), func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
									if !s.First {
										time.Sleep(pause)
									}
									if fail && s.Side == failSide {
										return 0, errDown
									}
									return e.save(id, val)(ctx, s)
								})
								mu.Lock()
								defer mu.Unlock()
								switch {
								case errors.Is(err, errDown):
									failed++ // not acknowledged; its other call may have landed
								case err != nil:
									errs = append(errs, err)
								case fail:
									failed++ // acknowledged, with one store behind and the key recorded
									fallthrough
								default:
									if v > last[id].version {
										last[id] = acked{v, val}
									}
								}
							})
						}
					}
					close(gate)
					wg.Wait()
				}
				close(stop)
				bg.Wait()
				require.NoError(t, errors.Join(errs...))
				require.NoError(t, bgErr)
				t.Logf("%s writes on %s: %d saves, %d at once per key, %d secondary calls failed, %d verify+repair rounds during the writes; %d keys differ when they stop",
					mode.name, db.Name, writers*sweeps*keys, writers, failed, rounds, len(e.differing()))

				drain(t, e.log, e.pair.Repair)
				// A store may end with a write newer than the last acknowledged
				// one: a write whose one call landed and whose other failed.
				// It must never end with an older one, and both stores must
				// hold the same write.
				stale := 0
				for id := int64(1); id <= keys; id++ {
					ov, oval := e.row(cutover.Old, id)
					nv, nval := e.row(cutover.New, id)
					assert.Equal(t, [2]any{ov, oval}, [2]any{nv, nval}, "key %d: both stores hold the same write", id)
					for side, v := range map[cutover.Side]cutover.Version{cutover.Old: ov, cutover.New: nv} {
						if v < last[id].version || v == last[id].version && oval != last[id].val {
							stale++
							t.Errorf("key %d: %s store holds %q at %d, older than the last acknowledged write %q at %d", id, side, oval, v, last[id].val, last[id].version)
						}
					}
				}
				assert.Zero(t, stale)
				assert.True(t, e.verify().Clean())
				assert.Zero(t, pending(t, e.log))
			})
		})
	}
}
