package cdc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/cdc"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// fixture is an old PostgreSQL database with a table items, a new store's
// database (PostgreSQL) with the same table and the metadata, and a
// migration in dualwrite.
type fixture struct {
	old, new *testdb.DB
	store    *expandcontract.Store
	mig      *expandcontract.Migration
}

const itemsDDL = `CREATE TABLE items (id bigint PRIMARY KEY, v text, n integer)`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{old: testdb.Postgres(t), new: testdb.Postgres(t)}
	f.old.MustExec(itemsDDL)
	f.new.MustExec(itemsDDL)
	f.store = ectest.Open(t, f.new.DB, nil)
	f.mig = ectest.Ensure(t, f.store, "items to the new store")
	ectest.MoveTo(t, f.mig, expandcontract.DualWrite)
	// The slot must go before the database: a slot left behind fails the
	// drop of testdb, and this names it first.
	t.Cleanup(func() {
		slot, err := cdc.SlotFor(f.old.DB, f.mig.Name())
		require.NoError(t, err)
		ok, err := slot.Exists(context.Background())
		require.NoError(t, err)
		if ok {
			t.Errorf("slot %s left behind", slot.Name())
			require.NoError(t, slot.Drop(context.Background()))
		}
	})
	return f
}

func (f *fixture) source() cdc.Source {
	return cdc.Source{DB: f.old.DB, DSN: f.old.DSN, Tables: []string{"items"}}
}

// fast are options that make a test's applier commit and poll often.
func fast() []cdc.Option {
	return []cdc.Option{cdc.WithFlushInterval(5 * time.Millisecond), cdc.WithPollInterval(20 * time.Millisecond),
		cdc.WithStatusInterval(50 * time.Millisecond)}
}

// start runs a in a goroutine until the test ends, and returns the
// channel of its result.
func start(t *testing.T, a *cdc.Applier) (done <-chan error, cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ch <- a.Run(ctx)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("the applier did not stop within 30s of its cancellation")
		}
	})
	return ch, stop
}

// waitFor polls cond every 10ms until it holds, for at most bound, and
// fails the test naming what it waited for otherwise, or as soon as done
// delivers the applier's end.
func waitFor(t *testing.T, done <-chan error, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		select {
		case err := <-done:
			t.Fatalf("the applier ended (%v) while waiting for %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type item struct {
	ID int64   `db:"id"`
	V  *string `db:"v"`
	N  *int64  `db:"n"`
}

func items(t *testing.T, db *sqlx.DB) []item {
	t.Helper()
	var out []item
	require.NoError(t, db.SelectContext(context.Background(), &out, `SELECT id, v, n FROM items ORDER BY id`))
	return out
}

// slots returns the number of replication slots of db's database.
func slots(t testing.TB, db *sqlx.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(context.Background(), &n,
		`SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`))
	return n
}

func publications(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.GetContext(context.Background(), &n, `SELECT count(*) FROM pg_publication`))
	return n
}

// errIs fails the test unless err wraps want.
func errIs(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %v", err, want)
	}
}

// backfillDone records m's backfill as done.
func backfillDone(t *testing.T, m *expandcontract.Migration) error {
	return backfill.MarkDone(t.Context(), m, "test", "")
}
