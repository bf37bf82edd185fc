package faults

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestRepairLogSlowerThanSecondaryTimeout checks that a repair log which
// works, but answers more slowly than the secondary timeout, still records
// the key and does not turn the write the authoritative store took into an
// error for the caller: the log's insert has a budget of its own
// (dualwrite.WithRecordTimeout), apart from the secondary write's
// (WithTimeout). The same holds on the fallback path of live and rampdown.
//
// Here the old store is healthy, the new store is down (a proxy in an
// outage), and the repair log's database answers in 300 ms, through a
// second proxy, while the secondary timeout is 200 ms. The caller's context
// allows 5 s.
func TestRepairLogSlowerThanSecondaryTimeout(t *testing.T) {
	for _, kind := range []string{sqldialect.Postgres, sqldialect.MySQL} {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			old, newDB := testdb.Open(t, kind), testdb.Open(t, kind)
			for _, db := range []*testdb.DB{old, newDB} {
				if err := CreateUsers(ctx, db.DB); err != nil {
					t.Fatal(err)
				}
			}
			// The new store, through a proxy that is down.
			newStore := proxied(t, kind, newDB)
			if err := newStore.proxy.Apply(faultOutage); err != nil {
				t.Fatal(err)
			}
			// The repair log, in the old database, through a proxy whose
			// replies take 300 ms once the store is open.
			logDB := proxied(t, kind, old)
			logger := slog.New(slog.DiscardHandler)
			store, err := expandcontract.Open(ctx, logDB.db, expandcontract.WithLogger(logger))
			if err != nil {
				t.Fatal(err)
			}
			repairs, err := repair.NewLog(suite.Migration(store, "slow-log"))
			if err != nil {
				t.Fatal(err)
			}
			slow := Fault{Name: "latency", Toxic: `{"name":"f","type":"latency","stream":"downstream","attributes":{"latency":300}}`}
			if err := logDB.proxy.Apply(slow); err != nil {
				t.Fatal(err)
			}
			stores := [2]*Table{mustTable(t, cutover.Old, old.DB, 0), mustTable(t, cutover.New, newStore.db, 200*time.Millisecond)}
			saves, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), repairs, dualwrite.WithTimeout(200*time.Millisecond), dualwrite.WithLogger(logger))
			if err != nil {
				t.Fatal(err)
			}
			u := userAt("user-1", 1)
			start := time.Now()
			err = saves.Write(ctx, u.ID, func(ctx context.Context, side cutover.Side) error { return stores[side].Put(ctx, u) })
			took := time.Since(start)
			if err := logDB.proxy.Clear(); err != nil {
				t.Fatal(err)
			}
			got, gerr := stores[cutover.Old].Get(ctx, u.ID)
			pending, perr := repairs.Pending(ctx)
			t.Logf("write took %v; old store has %+v (err %v); repair log holds %d entries (err %v)", took, got, gerr, pending, perr)
			if err != nil {
				t.Errorf("a write the old (authoritative) store took, with a repair log that works but answers in 300 ms, "+
					"failed for the caller because the log's insert is bounded by the 200 ms secondary timeout: %v", err)
			}
		})
	}
}

// proxiedDB is a database reached through a proxy of its own.
type proxiedDB struct {
	proxy *Proxy
	db    *sqlx.DB
}

// proxied opens db again, through a new proxy.
func proxied(t *testing.T, kind string, db *testdb.DB) proxiedDB {
	t.Helper()
	upstream, err := serverAddr(kind, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProxy(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	dsn, err := p.DSN(kind, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	pdb, err := sqlx.Open(db.DriverName(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pdb.Close() })
	return proxiedDB{proxy: p, db: pdb}
}
