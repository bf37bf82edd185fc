package sqlrow_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testdb"
	"github.com/cutover-go/cutover/sqlrow"
)

// users creates a table of users with a version column in db and returns
// its Rows.
func users(t *testing.T, db *testdb.DB, name string) *sqlrow.Rows {
	t.Helper()
	_, err := db.ExecContext(t.Context(), fmt.Sprintf(
		"CREATE TABLE %s (id BIGINT PRIMARY KEY, name %s, email %s, version BIGINT NOT NULL DEFAULT 0)",
		name, db.Dialect.TypeText(), db.Dialect.TypeText()))
	require.NoError(t, err)
	rows, err := sqlrow.New(db.DriverName(), sqlrow.Table{Name: name, Key: "id", Version: "version", Columns: []string{"name", "email"}})
	require.NoError(t, err)
	return rows
}

func get(t *testing.T, rows *sqlrow.Rows, db *testdb.DB, id int64) sqlrow.Row {
	t.Helper()
	row, err := rows.Get(t.Context(), db, id)
	require.NoError(t, err)
	return row
}

func TestPutAppliesOnlyOverALowerVersion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		rows := users(t, db, "users")
		applied, err := rows.Put(ctx, db, 1, 10, "ann", "ann@example.com")
		require.NoError(t, err)
		assert.True(t, applied, "a missing row is inserted")

		applied, err = rows.Put(ctx, db, 1, 5, "old", "old@example.com")
		require.NoError(t, err)
		assert.False(t, applied, "a lower version is refused")
		applied, err = rows.Put(ctx, db, 1, 10, "same", "same@example.com")
		require.NoError(t, err)
		assert.False(t, applied, "the same version is refused")
		assert.Equal(t, sqlrow.Row{Found: true, Version: 10, Values: []any{"ann", "ann@example.com"}}, get(t, rows, db, 1))

		applied, err = rows.Put(ctx, db, 1, 11, "bob", "bob@example.com")
		require.NoError(t, err)
		assert.True(t, applied)
		assert.Equal(t, sqlrow.Row{Found: true, Version: 11, Values: []any{"bob", "bob@example.com"}}, get(t, rows, db, 1))
		assert.Equal(t, sqlrow.Row{}, get(t, rows, db, 2), "a missing row reads as not found")
	})
}

func TestSaveThatOrdersWritesReportsAClockRunningAhead(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		rows := users(t, db, "users")
		// An instance whose clock runs ahead wrote version 1000.
		_, err := rows.Put(ctx, db, 1, 1000, "ahead", "ahead@example.com")
		require.NoError(t, err)

		v, err := rows.Save(ctx, db, cutover.Stamp{Version: 20}, 1, "late", "late@example.com")
		require.ErrorIs(t, err, cutover.ErrStaleVersion,
			"a secondary write under a higher version is told: the higher one may be an earlier write from a clock running ahead")
		assert.Equal(t, cutover.Version(1000), v, "with the version the row holds")
		assert.Equal(t, "ahead", get(t, rows, db, 1).Values[0])
		v, err = rows.Save(ctx, db, cutover.Stamp{Version: 1000}, 1, "ahead", "ahead@example.com")
		require.NoError(t, err, "a secondary write that finds its own version is done")
		assert.Equal(t, cutover.Version(1000), v)

		v, err = rows.Save(ctx, db, cutover.Stamp{Version: 20, First: true}, 1, "now", "now@example.com")
		require.ErrorIs(t, err, cutover.ErrStaleVersion, "the write that orders the key must land: the writer is told")
		assert.Equal(t, cutover.Version(1000), v, "with the version the row holds")
		assert.Equal(t, "ahead", get(t, rows, db, 1).Values[0])

		v, err = rows.Save(ctx, db, cutover.Stamp{Version: 1001, First: true}, 1, "now", "now@example.com")
		require.NoError(t, err)
		assert.Equal(t, cutover.Version(1001), v)
		assert.Equal(t, sqlrow.Row{Found: true, Version: 1001, Values: []any{"now", "now@example.com"}}, get(t, rows, db, 1))
	})
}

// TestWriteVersionedStampsAboveAClockRunningAhead writes a key whose row
// holds a version from a clock far ahead of this process's: the ordering
// store reports it, and the write lands above it in both stores.
func TestWriteVersionedStampsAboveAClockRunningAhead(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		stores := [2]*sqlrow.Rows{users(t, db, "old_users"), users(t, db, "new_users")}
		ahead := cutover.Version(1 << 62)
		for _, rows := range stores {
			_, err := rows.Put(ctx, db, 1, ahead, "ahead", "a")
			require.NoError(t, err)
		}
		w, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), &cutover.MemoryRepairLog{})
		require.NoError(t, err)
		v, err := w.WriteVersioned(ctx, "1", func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
			return stores[s.Side].Save(ctx, db, s, 1, "latest", "l")
		})
		require.NoError(t, err)
		assert.Greater(t, v, ahead)
		for side, rows := range stores {
			assert.Equal(t, sqlrow.Row{Found: true, Version: v, Values: []any{"latest", "l"}}, get(t, rows, db, 1), "%s store", cutover.Side(side))
		}
	})
}

// TestVersionedDualWritesConvergeWhateverTheOrder forces the interleaving
// that leaves a last-writer-wins secondary with the older value: A writes
// the authoritative store, B writes both stores, then A writes the
// secondary. With versioned writes the secondary refuses A's late call, A
// starts over above B's version, and both stores end with A, the write
// that returned last, in serial and concurrent mode and in the stages
// where either store is authoritative.
func TestVersionedDualWritesConvergeWhateverTheOrder(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		for _, stage := range []cutover.Stage{cutover.DualWrite, cutover.Live} {
			name := fmt.Sprintf("%s/concurrent=%v", stage, concurrent)
			t.Run(name, func(t *testing.T) {
				testdb.Each(t, func(t *testing.T, db *testdb.DB) {
					ctx := t.Context()
					stores := [2]*sqlrow.Rows{users(t, db, "old_users"), users(t, db, "new_users")}
					var opts []dualwrite.Option
					if concurrent {
						opts = append(opts, dualwrite.WithConcurrentWrites())
					}
					w, err := dualwrite.New("users.save", cutover.Fixed(stage), &cutover.MemoryRepairLog{}, opts...)
					require.NoError(t, err)
					auth := stage.Authoritative()
					save := func(name string, hold <-chan struct{}, wrote func()) func(context.Context, cutover.Stamp) (cutover.Version, error) {
						return func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
							if s.Side != auth && hold != nil {
								<-hold
							}
							v, err := stores[s.Side].Save(ctx, db, s, 1, name, name+"@example.com")
							if s.Side == auth && wrote != nil {
								wrote()
							}
							return v, err
						}
					}
					hold, wrote := make(chan struct{}), make(chan struct{})
					var wg sync.WaitGroup
					var vA cutover.Version
					var errA error
					wg.Go(func() { vA, errA = w.WriteVersioned(ctx, "1", save("A", hold, sync.OnceFunc(func() { close(wrote) }))) })
					<-wrote // A is in the authoritative store; its secondary call waits
					vB, err := w.WriteVersioned(ctx, "1", save("B", nil, nil))
					require.NoError(t, err)
					close(hold)
					wg.Wait()
					require.NoError(t, errA)
					assert.Greater(t, vA, vB, "A started over above B")
					for side, rows := range stores {
						row := get(t, rows, db, 1)
						assert.Equal(t, "A", row.Values[0], "%s store", cutover.Side(side))
						assert.Equal(t, vA, row.Version, "%s store", cutover.Side(side))
					}
				})
			})
		}
	}
}

// TestSkewedClocksLoseNoAcknowledgedWrite plays two instances of a service
// in live, A's clock 50ms ahead of B's. A's new store is down: A's write
// falls back to the old store, at a version from A's clock. B then writes
// the key, later, through the new store, at a lower version from its own
// clock. The old store refuses B's secondary call, and B's write starts
// over above A's version. Both stores then hold B's write, and so they do
// after the repair of A's fallback.
func TestSkewedClocksLoseNoAcknowledgedWrite(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				ctx := t.Context()
				stores := [2]*sqlrow.Rows{users(t, db, "old_users"), users(t, db, "new_users")}
				log := &cutover.MemoryRepairLog{}
				instance := func(skew time.Duration) *dualwrite.Writer {
					opts := []dualwrite.Option{dualwrite.WithClock(func() time.Time { return time.Now().Add(skew) })}
					if concurrent {
						opts = append(opts, dualwrite.WithConcurrentWrites())
					}
					w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Live), log, opts...)
					require.NoError(t, err)
					return w
				}
				a, b := instance(50*time.Millisecond), instance(0)
				save := func(name string, down error) func(context.Context, cutover.Stamp) (cutover.Version, error) {
					return func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
						if s.Side == cutover.New && down != nil {
							return 0, down
						}
						return stores[s.Side].Save(ctx, db, s, 1, name, name+"@example.com")
					}
				}
				vA, err := a.WriteVersioned(ctx, "1", save("A", errors.New("new store down")))
				require.NoError(t, err, "A falls back to the old store")
				vB, err := b.WriteVersioned(ctx, "1", save("B", nil))
				require.NoError(t, err)
				assert.Greater(t, vB, vA, "B's write started over above A's version")
				want := sqlrow.Row{Found: true, Version: vB, Values: []any{"B", "B@example.com"}}
				for side, rows := range stores {
					assert.Equal(t, want, get(t, rows, db, 1), "%s store after the writes", cutover.Side(side))
				}

				p := &sqlrow.Pair{
					Old: sqlrow.Store{DB: db.DB, Rows: stores[cutover.Old]}, New: sqlrow.Store{DB: db.DB, Rows: stores[cutover.New]},
					Key: func(k string) (any, error) { return strconv.ParseInt(k, 10, 64) },
				}
				entries := log.Entries()
				require.NotEmpty(t, entries, "A's fallback is recorded")
				for _, e := range entries {
					require.NoError(t, p.Repair(ctx, e))
				}
				for side, rows := range stores {
					assert.Equal(t, want, get(t, rows, db, 1), "%s store after the repairs", cutover.Side(side))
				}
			})
		})
	}
}

func TestCopyRangeNeverOverwritesANewerWrite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		old, nu := users(t, db, "old_users"), users(t, db, "new_users")
		for id := int64(1); id <= 10; id++ {
			_, err := old.Put(ctx, db, id, 100, fmt.Sprint("old-", id), "x")
			require.NoError(t, err)
		}
		// Key 4 was written by a dual write after the batch read it.
		_, err := nu.Put(ctx, db, 4, 200, "newer", "y")
		require.NoError(t, err)
		n, err := sqlrow.CopyRange(ctx, old, db, nu, db, int64(2), int64(6))
		require.NoError(t, err)
		assert.Equal(t, int64(4), n, "keys 3 to 6 are read")
		assert.Equal(t, "newer", get(t, nu, db, 4).Values[0])
		assert.Equal(t, "old-3", get(t, nu, db, 3).Values[0])
		assert.False(t, get(t, nu, db, 2).Found, "the range excludes its start")
		assert.False(t, get(t, nu, db, 7).Found)

		n, err = sqlrow.CopyRange(ctx, old, db, nu, db, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, int64(10), n)
		assert.Equal(t, "newer", get(t, nu, db, 4).Values[0])
		assert.Equal(t, cutover.Version(100), get(t, nu, db, 10).Version)
	})
}

func TestPairRepairCopiesTheNewerVersion(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		old, nu := users(t, db, "old_users"), users(t, db, "new_users")
		stage := cutover.Live
		p := &sqlrow.Pair{
			Old: sqlrow.Store{DB: db.DB, Rows: old}, New: sqlrow.Store{DB: db.DB, Rows: nu},
			Key:   func(k string) (any, error) { return strconv.ParseInt(k, 10, 64) },
			Stage: func(context.Context, string) cutover.Stage { return stage },
		}
		put := func(rows *sqlrow.Rows, id int64, v cutover.Version, name string) {
			_, err := rows.Put(ctx, db, id, v, name, "e")
			require.NoError(t, err)
		}
		put(old, 1, 5, "older")
		put(nu, 1, 9, "newer") // a live write whose old-store call failed
		put(old, 2, 9, "newer")
		put(nu, 2, 5, "older") // a dual write whose new-store call failed
		put(old, 3, 7, "only old")
		put(nu, 4, 7, "only new")
		put(old, 5, 0, "unversioned old")
		put(nu, 5, 0, "unversioned new")

		// Whatever the entry says, the newer version wins.
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "1", Target: cutover.New, Reason: cutover.Unverified}))
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "2", Target: cutover.Old, Reason: cutover.Mismatch}))
		for id := int64(1); id <= 2; id++ {
			assert.Equal(t, get(t, old, db, id), get(t, nu, db, id), "key %d", id)
			assert.Equal(t, "newer", get(t, nu, db, id).Values[0], "key %d", id)
		}
		// Without a version to compare, a verification's entry is repaired
		// from the store authoritative in the key's stage: the new one in live.
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "3", Target: cutover.New, Reason: cutover.Unverified}))
		assert.False(t, get(t, old, db, 3).Found, "the new store, authoritative in live, lacks key 3")
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "4", Target: cutover.New, Reason: cutover.Unverified}))
		assert.Equal(t, "only new", get(t, old, db, 4).Values[0])
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "5", Target: cutover.New, Reason: cutover.Unverified}))
		assert.Equal(t, "unversioned new", get(t, old, db, 5).Values[0])

		// A write's entry names its direction: copy over the target.
		stage = cutover.Shadow
		put(nu, 6, 3, "fallback")
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "6", Target: cutover.Old, Reason: cutover.Fallback}))
		assert.Equal(t, "fallback", get(t, old, db, 6).Values[0])
		require.NoError(t, p.Repair(ctx, cutover.Repair{Key: "404", Target: cutover.New, Reason: cutover.Unverified}),
			"a key in neither store needs nothing")
	})
}

func TestNewRejectsBadTables(t *testing.T) {
	good := sqlrow.Table{Name: "users", Key: "id", Version: "version", Columns: []string{"name"}}
	for name, tc := range map[string]struct {
		driver string
		change func(*sqlrow.Table)
		want   string
	}{
		"unknown driver":  {"oracle", func(*sqlrow.Table) {}, "oracle"},
		"no table":        {"sqlite", func(t *sqlrow.Table) { t.Name = "" }, "table"},
		"bad key":         {"pgx", func(t *sqlrow.Table) { t.Key = "id; DROP TABLE users" }, "key column"},
		"no version":      {"mysql", func(t *sqlrow.Table) { t.Version = "" }, "version column"},
		"no columns":      {"sqlite", func(t *sqlrow.Table) { t.Columns = nil }, "no value columns"},
		"column twice":    {"sqlite", func(t *sqlrow.Table) { t.Columns = []string{"name", "name"} }, `"name" named twice`},
		"key as a column": {"sqlite", func(t *sqlrow.Table) { t.Columns = []string{"id"} }, `"id" named twice`},
		"key is version":  {"sqlite", func(t *sqlrow.Table) { t.Version = "id" }, "same column"},
	} {
		t.Run(name, func(t *testing.T) {
			tb := good
			tb.Columns = append([]string(nil), good.Columns...)
			tc.change(&tb)
			rows, err := sqlrow.New(tc.driver, tb)
			assert.Nil(t, rows)
			require.ErrorIs(t, err, sqlrow.ErrInvalidInput)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := sqlrow.New("sqlite", sqlrow.Table{Name: "users", Key: "id", Version: "version", Columns: []string{"bad name"}})
	assert.ErrorIs(t, err, sqlrow.ErrInvalidIdentifier)

	rows, err := sqlrow.New("sqlite", good)
	require.NoError(t, err)
	_, err = rows.Put(t.Context(), nil, 1, 1, "a", "b")
	assert.ErrorIs(t, err, sqlrow.ErrInvalidInput, "two values for one column")
	_, err = rows.Put(t.Context(), nil, 1, 1<<63, "a")
	assert.ErrorIs(t, err, sqlrow.ErrInvalidInput, "a version no signed column holds")
	err = (&sqlrow.Pair{}).Repair(t.Context(), cutover.Repair{Key: "1"})
	assert.ErrorIs(t, err, sqlrow.ErrInvalidInput)
}

// The driver name of github.com/mattn/go-sqlite3, under which programs
// also register modernc.org/sqlite, is SQLite.
func TestNewSQLite3DriverName(t *testing.T) {
	db := testdb.SQLite(t)
	_, err := db.ExecContext(t.Context(), "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT, version BIGINT NOT NULL DEFAULT 0)")
	require.NoError(t, err)
	rows, err := sqlrow.New("sqlite3", sqlrow.Table{Name: "people", Key: "id", Version: "version", Columns: []string{"name"}})
	require.NoError(t, err)
	applied, err := rows.Put(t.Context(), db, 1, 3, "ann")
	require.NoError(t, err)
	assert.True(t, applied)
	row, err := rows.Get(t.Context(), db, 1)
	require.NoError(t, err)
	assert.Equal(t, sqlrow.Row{Found: true, Version: 3, Values: []any{"ann"}}, row)
}
