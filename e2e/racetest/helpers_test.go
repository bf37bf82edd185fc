package racetest

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// waitLimit bounds every wait of these tests: a signal that never comes
// fails the test instead of hanging it.
const waitLimit = 20 * time.Second

// hold is how long a test lets a store call try to finish before it
// concludes that the database is holding it back.
const hold = 500 * time.Millisecond

var quiet = slog.New(slog.DiscardHandler)

// await waits until ch is closed, for at most waitLimit.
func await(ctx context.Context, ch <-chan struct{}, what string) error {
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
	case <-t.C:
		return fmt.Errorf("waiting for %s: nothing after %v", what, waitLimit)
	}
}

// within reports whether ch is closed within d.
func within(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// storeFunc is what a dualwrite.Writer calls once per store.
type storeFunc = func(ctx context.Context, side cutover.Side) error

// interleave writes key twice through w, first with a and then with b,
// and forces their store calls into the order
//
//	a's authoritative call, b's authoritative call, b's secondary call, a's secondary call
//
// whatever the scheduler does: a's secondary call waits until b's whole
// write has returned, and b starts only once a's authoritative call is
// done. auth is the store that w's stage makes authoritative. This is the
// order in which two requests saving the same key leave the secondary
// store with the older value, and it works for serial and concurrent
// writers alike.
func interleave(ctx context.Context, w *dualwrite.Writer, auth cutover.Side, key string, a, b storeFunc) error {
	aAuth, bDone := make(chan struct{}), make(chan struct{})
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() {
		errA = w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
			if side == auth {
				defer close(aAuth)
				return a(ctx, side)
			}
			if err := await(ctx, bDone, "the second write of "+key); err != nil {
				return err
			}
			return a(ctx, side)
		})
	})
	wg.Go(func() {
		defer close(bDone)
		if errB = await(ctx, aAuth, "the first write's authoritative call on "+key); errB != nil {
			return
		}
		errB = w.Write(ctx, key, b)
	})
	wg.Wait()
	return errors.Join(errA, errB)
}

// key returns the entity key of id as the writers and the repair log see it.
func key(id int64) string { return strconv.FormatInt(id, 10) }

func keys(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = key(id)
	}
	return out
}

func parseKey(t testing.TB, k string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(k, 10, 64)
	require.NoError(t, err)
	return id
}

// upsertSQL returns an insert of (id, val) into table that overwrites the
// value of an existing row, with ? placeholders.
func upsertSQL(db *testdb.DB, table string) string {
	q := `INSERT INTO ` + table + ` (id, val) VALUES (?, ?) `
	if db.Name == sqldialect.MySQL {
		return q + `ON DUPLICATE KEY UPDATE val = VALUES(val)`
	}
	return q + `ON CONFLICT (id) DO UPDATE SET val = excluded.val`
}

const migration = "kv"

// kv is a migration of one entity, an id and a text value, from the table
// kv_old to the table kv_new, both written last-writer-wins: a write sets
// the value whatever the row held. The tables are in one database, or in
// two for a move between databases; the metadata store, with the
// migration's phase and repair log, is in the database of kv_new.
type kv struct {
	t      *testing.T
	oldDB  *testdb.DB
	newDB  *testdb.DB
	store  *expandcontract.Store
	log    *repair.Log
	upsert string
}

// newKV creates kv_old in oldDB and kv_new in newDB, with a version column
// that only the conditional writes use, opens the metadata store in newDB,
// and moves the migration to phase.
func newKV(t *testing.T, oldDB, newDB *testdb.DB, phase expandcontract.Phase) *kv {
	t.Helper()
	for _, tb := range []struct {
		db    *testdb.DB
		table string
	}{{oldDB, "kv_old"}, {newDB, "kv_new"}} {
		d := tb.db.Dialect
		_, err := tb.db.ExecContext(t.Context(), `CREATE TABLE `+tb.table+` (id `+d.TypeBigInt()+` PRIMARY KEY, val `+
			d.TypeKeyText()+` NOT NULL, version `+d.TypeBigInt()+` NOT NULL DEFAULT 0)`)
		require.NoError(t, err)
	}
	store, err := expandcontract.Open(t.Context(), newDB.DB, expandcontract.WithLogger(quiet))
	require.NoError(t, err)
	e := &kv{t: t, oldDB: oldDB, newDB: newDB, store: store,
		upsert: newDB.Dialect.Rebind(upsertSQL(newDB, "kv_new"))}
	e.log, err = repair.NewLog(suite.Migration(store, migration))
	require.NoError(t, err)
	moveTo(t, store, phase, func() { require.True(t, e.verify().Clean()) })
	return e
}

// moveTo creates the migration and walks it forward to phase. On the way
// to switchreads it marks the backfill done and calls verify, which must
// store a clean verification.
func moveTo(t *testing.T, s *expandcontract.Store, phase expandcontract.Phase, verify func()) {
	t.Helper()
	ctx := t.Context()
	_, err := suite.Migration(s, migration).Ensure(ctx, "racetest")
	require.NoError(t, err)
	for p := expandcontract.DualWrite; p <= phase; p++ {
		if p == expandcontract.SwitchReads {
			require.NoError(t, backfill.MarkDone(ctx, suite.Migration(s, migration), "racetest", ""))
			verify()
		}
		_, err := suite.Migration(s, migration).Move(ctx, expandcontract.Move{To: p, Actor: "racetest", Reason: "set up"})
		require.NoError(t, err)
	}
}

// seed inserts the ids 1 to n with the value "init-ID" into kv_old, and
// into kv_new too if both is set.
func (e *kv) seed(n int64, both bool) {
	e.t.Helper()
	dbs := []*testdb.DB{e.oldDB}
	tables := []string{"kv_old"}
	if both {
		dbs, tables = append(dbs, e.newDB), append(tables, "kv_new")
	}
	for i, db := range dbs {
		q := db.Dialect.Rebind(`INSERT INTO ` + tables[i] + ` (id, val) VALUES (?, ?)`)
		for id := int64(1); id <= n; id++ {
			_, err := db.ExecContext(e.t.Context(), q, id, fmt.Sprintf("init-%d", id))
			require.NoError(e.t, err)
		}
	}
}

// write sets the value of id in one store, last writer wins: an UPDATE of
// the old table's row, an upsert into the new table.
func (e *kv) write(ctx context.Context, side cutover.Side, id int64, val string) error {
	var err error
	if side == cutover.Old {
		_, err = e.oldDB.ExecContext(ctx, e.oldDB.Dialect.Rebind(`UPDATE kv_old SET val = ? WHERE id = ?`), val, id)
	} else {
		_, err = e.newDB.ExecContext(ctx, e.upsert, id, val)
	}
	if err != nil {
		return fmt.Errorf("write %s %d: %w", side, id, err)
	}
	return nil
}

// save returns the store function of one save of val to id.
func (e *kv) save(id int64, val string) storeFunc {
	return func(ctx context.Context, side cutover.Side) error { return e.write(ctx, side, id, val) }
}

// guardedSave returns the store function of one save of val to id with a
// version: the old store gives the row its next version in a transaction
// that reads it back, and the new store takes the value only if its row's
// version is lower. It must be called for the old store first, as a serial
// writer in dualwrite does.
func (e *kv) guardedSave(id int64, val string) storeFunc {
	var version int64
	return func(ctx context.Context, side cutover.Side) error {
		if side == cutover.Old {
			tx, err := e.oldDB.BeginTxx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, e.oldDB.Dialect.Rebind(`UPDATE kv_old SET val = ?, version = version + 1 WHERE id = ?`), val, id); err != nil {
				return err
			}
			if err := tx.GetContext(ctx, &version, e.oldDB.Dialect.Rebind(`SELECT version FROM kv_old WHERE id = ?`), id); err != nil {
				return err
			}
			return tx.Commit()
		}
		if version == 0 {
			return errors.New("the new store was written before the old one gave a version")
		}
		_, err := e.newDB.ExecContext(ctx, e.newDB.Dialect.Rebind(`UPDATE kv_new SET val = ?, version = ? WHERE id = ? AND version < ?`),
			val, version, id, version)
		return err
	}
}

// value returns the value of id in one store, or "<missing>".
func (e *kv) value(side cutover.Side, id int64) string {
	e.t.Helper()
	v, err := e.read(e.t.Context(), side, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "<missing>"
	}
	require.NoError(e.t, err)
	return v
}

// read reads the value of id from one store.
func (e *kv) read(ctx context.Context, side cutover.Side, id int64) (string, error) {
	db, table := e.oldDB, "kv_old"
	if side == cutover.New {
		db, table = e.newDB, "kv_new"
	}
	var v string
	err := db.GetContext(ctx, &v, db.Dialect.Rebind(`SELECT val FROM `+table+` WHERE id = ?`), id)
	return v, err
}

func (e *kv) all(side cutover.Side) map[int64]string {
	e.t.Helper()
	db, table := e.oldDB, "kv_old"
	if side == cutover.New {
		db, table = e.newDB, "kv_new"
	}
	var rows []struct {
		ID  int64  `db:"id"`
		Val string `db:"val"`
	}
	require.NoError(e.t, db.SelectContext(e.t.Context(), &rows, `SELECT id, val FROM `+table))
	out := make(map[int64]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Val
	}
	return out
}

// differing returns the ids whose rows differ between the two tables, or
// that only one of them has, in order, as read straight from the tables.
func (e *kv) differing() []int64 {
	e.t.Helper()
	olds, news := e.all(cutover.Old), e.all(cutover.New)
	var out []int64
	for id, v := range olds {
		if nv, ok := news[id]; !ok || nv != v {
			out = append(out, id)
		}
	}
	for id := range news {
		if _, ok := olds[id]; !ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// writer returns a writer of the operation "kv.save" in stage, recording
// into the migration's repair log.
func (e *kv) writer(stage cutover.Stage, opts ...dualwrite.Option) *dualwrite.Writer {
	e.t.Helper()
	return newWriter(e.t, e.log, stage, opts...)
}

func newWriter(t testing.TB, log cutover.RepairLog, stage cutover.Stage, opts ...dualwrite.Option) *dualwrite.Writer {
	t.Helper()
	w, err := dualwrite.New("kv.save", cutover.Fixed(stage), log,
		append([]dualwrite.Option{dualwrite.WithLogger(quiet), dualwrite.WithTimeout(waitLimit)}, opts...)...)
	require.NoError(t, err)
	return w
}

func (e *kv) rows(side cutover.Side) *verify.SQLRows {
	if side == cutover.Old {
		return &verify.SQLRows{DB: e.oldDB.DB, Table: "kv_old", Key: "id", Value: "val"}
	}
	return &verify.SQLRows{DB: e.newDB.DB, Table: "kv_new", Key: "id", Value: "val"}
}

// verify runs a verification of the migration, in small chunks so that a
// few rows make several key ranges.
func (e *kv) verify() verify.Result {
	e.t.Helper()
	res, err := suite.Verify(e.t.Context(), suite.Migration(e.store, migration), e.rows(cutover.Old), e.rows(cutover.New),
		verify.WithChunkSize(7))
	require.NoError(e.t, err)
	return res
}

// copyOldToNew is the repair function that treats the old store as the
// source of truth: it copies the key's current row there over the new
// store's, or deletes the new store's row if the old one has none.
func (e *kv) copyOldToNew(ctx context.Context, r cutover.Repair) error {
	id, err := strconv.ParseInt(r.Key, 10, 64)
	if err != nil {
		return err
	}
	v, err := e.read(ctx, cutover.Old, id)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = e.newDB.ExecContext(ctx, e.newDB.Dialect.Rebind(`DELETE FROM kv_new WHERE id = ?`), id)
		return err
	}
	if err != nil {
		return err
	}
	return e.write(ctx, cutover.New, id, v)
}

// copyNewToOld copies the key's row in the new store over the old store's.
func (e *kv) copyNewToOld(ctx context.Context, r cutover.Repair) error {
	id, err := strconv.ParseInt(r.Key, 10, 64)
	if err != nil {
		return err
	}
	v, err := e.read(ctx, cutover.New, id)
	if err != nil {
		return err
	}
	return e.write(ctx, cutover.Old, id, v)
}

// copyToTarget copies the key's row from the store that has the write, the
// other one, over the entry's target: right for the reasons a dual write
// records.
func (e *kv) copyToTarget(ctx context.Context, r cutover.Repair) error {
	if r.Target == cutover.New {
		return e.copyOldToNew(ctx, r)
	}
	return e.copyNewToOld(ctx, r)
}

// entries returns the pending entries of a repair log made by op.
func entries(t testing.TB, log *repair.Log, op string) []repair.Entry {
	t.Helper()
	all, err := log.Entries(context.Background(), repair.Query{Limit: 100_000})
	require.NoError(t, err)
	return slices.DeleteFunc(all, func(e repair.Entry) bool { return e.Repair.Op != op })
}

func entryKeys(es []repair.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Repair.Key
	}
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return cmp.Compare(x, y)
	})
	return out
}

func pending(t testing.TB, log *repair.Log) int64 {
	t.Helper()
	n, err := log.Pending(context.Background())
	require.NoError(t, err)
	return n
}

// drain runs a repairer with fn over log until no entry is due, and
// returns what it did in all.
func drain(t testing.TB, log *repair.Log, fn repair.Func) repair.Stats {
	t.Helper()
	stats, err := drainOnce(context.Background(), log, fn)
	require.NoError(t, err)
	return stats
}

func drainOnce(ctx context.Context, log *repair.Log, fn repair.Func) (repair.Stats, error) {
	r, err := repair.New(log, fn, repair.WithBatch(50))
	if err != nil {
		return repair.Stats{}, err
	}
	defer r.Close()
	var total repair.Stats
	for range 1000 {
		s, err := r.RunOnce(ctx)
		if err != nil {
			return total, err
		}
		if s.Claimed == 0 {
			return total, nil
		}
		total.Claimed += s.Claimed
		total.Repaired += s.Repaired
		total.Failed += s.Failed
		total.Stuck += s.Stuck
	}
	return total, errors.New("the repair log never ran dry")
}

// modes are the two ways a writer orders its two store calls.
var modes = []struct {
	name string
	opts []dualwrite.Option
}{
	{"serial", nil},
	{"concurrent", []dualwrite.Option{dualwrite.WithConcurrentWrites()}},
}
