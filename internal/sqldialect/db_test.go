package sqldialect_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// exec runs statements on db, failing the test on the first error.
func exec(t *testing.T, ex sqlx.ExecerContext, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := ex.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// currentSchema returns the schema that schema.table names refer to in the
// tests: "main" on SQLite, a new schema on PostgreSQL, and the test's own
// database on MySQL.
func currentSchema(t *testing.T, db *testdb.DB) string {
	t.Helper()
	switch db.Name {
	case "sqlite":
		return "main"
	case "postgres":
		exec(t, db, "CREATE SCHEMA app")
		return "app"
	}
	var name string
	if err := db.GetContext(context.Background(), &name, "SELECT DATABASE()"); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestIdentifiersOnRealDatabases(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		d := db.Dialect
		long := strings.Repeat("x", 63)
		schema := currentSchema(t, db)
		for _, name := range []string{"select", "order", "user", "Group_By", "_", long, schema + ".from"} {
			table, err := d.QuoteIdent(name)
			if err != nil {
				t.Fatal(err)
			}
			col, err := d.QuoteIdent("where")
			if err != nil {
				t.Fatal(err)
			}
			exec(t, db, "CREATE TABLE "+table+" ("+col+" "+d.TypeKeyText()+" PRIMARY KEY, "+d.Quote(long)+" INTEGER)")
			if _, err := db.ExecContext(ctx, d.Rebind("INSERT INTO "+table+" ("+col+", "+d.Quote(long)+") VALUES (?, ?)"), name, 7); err != nil {
				t.Fatalf("insert into %s: %v", table, err)
			}
			var got string
			if err := db.GetContext(ctx, &got, "SELECT "+col+" FROM "+table); err != nil || got != name {
				t.Fatalf("select from %s: %q, %v", table, got, err)
			}
		}
		// Quote makes a literal name of anything, quote characters included.
		for _, name := range []string{`a"b`, "a`b", "a.b", "x; DROP TABLE y", "o'brien"} {
			exec(t, db, "CREATE TABLE "+d.Quote(name)+" (x INTEGER)", "INSERT INTO "+d.Quote(name)+" VALUES (1)")
			var n int
			if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM "+d.Quote(name)); err != nil || n != 1 {
				t.Fatalf("table %q: %d rows, %v", name, n, err)
			}
		}
	})
}

// TestColumnTypes checks that values of each portable column type come back
// the same, and compare and sort the same, on every database.
func TestColumnTypes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		d := db.Dialect
		exec(t, db, "CREATE TABLE vals (id "+d.AutoIncrementPK()+", k "+d.TypeKeyText()+" NOT NULL UNIQUE, body "+d.TypeText()+
			", n "+d.TypeBigInt()+", at "+d.TypeTimestamp()+", ok "+d.TypeBool()+", raw "+d.TypeBytes()+
			", f "+d.TypeFloat()+" NOT NULL DEFAULT 0)")
		insert := d.Rebind("INSERT INTO vals (k, body, n, at, ok, raw) VALUES (?, ?, ?, ?, ?, ?)")

		at := time.Date(2031, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("X", 3600))
		longText := strings.Repeat("ü", 70_000) // over MySQL TEXT's 64 KiB
		longKey := strings.Repeat("k", sqldialect.MaxKeyTextLen)
		raw := []byte{0, 1, 0xff, 0, 'x'}
		keys := []string{"b", "a", "B", "é", "😀", "a\u0301", longKey}
		var ids []int64
		for i, k := range keys {
			id, err := d.InsertReturningID(ctx, db, insert, "id", k, longText, int64(-1)<<63+int64(i), sqldialect.EncodeTime(at), sqldialect.EncodeBool(i%2 == 1), raw)
			if err != nil {
				t.Fatalf("insert %q: %v", k, err)
			}
			ids = append(ids, id)
		}
		if !slices.IsSorted(ids) || ids[0] < 1 || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("generated ids %v", ids)
		}

		var got []struct {
			ID   int64  `db:"id"`
			K    string `db:"k"`
			Body string `db:"body"`
			N    int64  `db:"n"`
			At   int64  `db:"at"`
			OK   bool   `db:"ok"`
			Raw  []byte `db:"raw"`
		}
		if err := db.SelectContext(ctx, &got, "SELECT id, k, body, n, at, ok, raw FROM vals ORDER BY k"); err != nil {
			t.Fatal(err)
		}
		var order []string
		for i, r := range got {
			order = append(order, r.K)
			if r.Body != longText || !sqldialect.DecodeTime(r.At).Equal(at.Truncate(time.Microsecond)) || string(r.Raw) != string(raw) {
				t.Errorf("row %d (%q): body %d bytes, at %v, raw %v", i, r.K, len(r.Body), sqldialect.DecodeTime(r.At), r.Raw)
			}
			i := slices.Index(keys, r.K)
			if r.N != int64(-1)<<63+int64(i) || r.OK != (i%2 == 1) || r.ID != ids[i] {
				t.Errorf("row %q: n %d, ok %v, id %d", r.K, r.N, r.OK, r.ID)
			}
		}
		// Code point order, case-sensitive, on every database.
		want := []string{"B", "a", "a\u0301", "b", longKey, "é", "😀"}
		if !slices.Equal(order, want) {
			t.Errorf("ORDER BY key text: %q, want %q", order, want)
		}
		var n int
		if err := db.GetContext(ctx, &n, d.Rebind("SELECT COUNT(*) FROM vals WHERE k = ?"), "A"); err != nil || n != 0 {
			t.Errorf("k = 'A' matched %d rows (%v); comparisons must be case-sensitive", n, err)
		}
		if err := db.GetContext(ctx, &n, d.Rebind("SELECT COUNT(*) FROM vals WHERE body = ?"), strings.ToUpper(longText)); err != nil || n != 0 {
			t.Errorf("body = upper matched %d rows (%v)", n, err)
		}

		// The documented difference: MySQL ignores trailing spaces.
		_, err := db.ExecContext(ctx, insert, "a ", "", 0, 0, 0, nil)
		if mysql := db.Name == "mysql"; d.IsUniqueViolation(err) != mysql {
			t.Errorf("inserting %q next to %q: %v", "a ", "a", err)
		}
		// Key text longer than MaxKeyTextLen is an error on MySQL only.
		_, err = db.ExecContext(ctx, insert, longKey+"k", "", 0, 0, 0, nil)
		if mysql := db.Name == "mysql"; (err != nil) != mysql {
			t.Errorf("inserting %d characters of key text: %v", sqldialect.MaxKeyTextLen+1, err)
		}

		// Floats come back exactly, and the default is a float too.
		floats := []float64{0, 0.1, 1.0 / 3, -2.5e-300, 1e9, math.MaxFloat64, math.SmallestNonzeroFloat64}
		for i, f := range floats {
			if _, err := db.ExecContext(ctx, d.Rebind("UPDATE vals SET f = ? WHERE k = ?"), f, keys[i]); err != nil {
				t.Fatal(err)
			}
		}
		for i, f := range floats {
			var back float64
			if err := db.GetContext(ctx, &back, d.Rebind("SELECT f FROM vals WHERE k = ? AND f = ?"), keys[i], f); err != nil || back != f {
				t.Errorf("float %v came back as %v (%v)", f, back, err)
			}
		}

		// Numbers are not reused after the newest row is deleted.
		if _, err := db.ExecContext(ctx, d.Rebind("DELETE FROM vals WHERE id = ?"), ids[len(ids)-1]); err != nil {
			t.Fatal(err)
		}
		id, err := d.InsertReturningID(ctx, db, insert, "id", "new", "", 0, 0, 1, nil)
		if err != nil || id <= ids[len(ids)-1] {
			t.Errorf("id after deleting %d: %d, %v", ids[len(ids)-1], id, err)
		}
	})
}

func TestCreateIndex(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		d := db.Dialect
		schema := currentSchema(t, db)
		exec(t, db,
			"CREATE TABLE "+d.Quote("order")+" (id "+d.TypeBigInt()+" PRIMARY KEY, "+d.Quote("group")+" "+d.TypeKeyText()+", email "+d.TypeKeyText()+")",
			"CREATE TABLE "+d.Quote(schema)+"."+d.Quote("items")+" (id "+d.TypeBigInt()+" PRIMARY KEY, sku "+d.TypeKeyText()+")",
		)
		byEmail := sqldialect.Index{Name: "order_by_email", Table: "order", Columns: []string{"email"}, Unique: true}
		for range 2 {
			if err := d.CreateIndex(ctx, db, byEmail); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.CreateIndex(ctx, db, sqldialect.Index{Name: "order_by_group_email", Table: "order", Columns: []string{"group", "email"}}); err != nil {
			t.Fatal(err)
		}
		insert := d.Rebind("INSERT INTO " + d.Quote("order") + " (id, " + d.Quote("group") + ", email) VALUES (?, ?, ?)")
		if _, err := db.ExecContext(ctx, insert, 1, "g", "a@x"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, insert, 2, "g", "a@x"); !d.IsUniqueViolation(err) {
			t.Errorf("duplicate in unique index: %v", err)
		}

		// A schema-qualified table, and many sessions creating one index.
		bySKU := sqldialect.Index{Name: "items_by_sku", Table: schema + ".items", Columns: []string{"sku"}, Unique: true}
		for i, ix := range []sqldialect.Index{byEmail, bySKU, {Name: "nope", Table: "order"}, {Name: "order_by_email", Table: schema + ".items"}} {
			if ok, err := d.IndexExists(ctx, db, ix); err != nil || ok != (i == 0) {
				t.Errorf("IndexExists(%s on %s) = %v, %v before items_by_sku is created", ix.Name, ix.Table, ok, err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() { errs[i] = d.CreateIndex(ctx, db, bySKU) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent CreateIndex: %v", err)
		}
		if ok, err := d.IndexExists(ctx, db, bySKU); err != nil || !ok {
			t.Errorf("IndexExists(%s) = %v, %v after CreateIndex", bySKU.Name, ok, err)
		}
		items, _ := d.QuoteIdent(schema + ".items")
		exec(t, db, "INSERT INTO "+items+" (id, sku) VALUES (1, 's')")
		if _, err := db.ExecContext(ctx, "INSERT INTO "+items+" (id, sku) VALUES (2, 's')"); !d.IsUniqueViolation(err) {
			t.Errorf("duplicate in unique index on %s: %v", items, err)
		}

		for _, bad := range []sqldialect.Index{
			{Name: "x; DROP TABLE y", Table: "order", Columns: []string{"email"}},
			{Name: "s.idx", Table: "order", Columns: []string{"email"}},
			{Name: "idx", Table: "order`; --", Columns: []string{"email"}},
			{Name: "idx", Table: "order", Columns: []string{"email", `e"`}},
			{Name: "idx", Table: "order", Columns: []string{"order.email"}},
		} {
			if err := d.CreateIndex(ctx, db, bad); !errors.Is(err, sqldialect.ErrInvalidIdentifier) || !strings.HasPrefix(err.Error(), "sqldialect: create index") {
				t.Errorf("CreateIndex(%+v) = %v", bad, err)
			}
		}
		if err := d.CreateIndex(ctx, db, sqldialect.Index{Name: "idx", Table: "order"}); err == nil || !strings.Contains(err.Error(), "no columns") {
			t.Errorf("no columns: %v", err)
		}
		if _, err := d.IndexExists(ctx, db, sqldialect.Index{Name: "x; DROP TABLE y", Table: "order"}); !errors.Is(err, sqldialect.ErrInvalidIdentifier) {
			t.Errorf("IndexExists of a bad name: %v", err)
		}

		// The plain statement creates the index once, and fails the second time.
		byGroup := sqldialect.Index{Name: "items_by_sku_id", Table: schema + ".items", Columns: []string{"sku", "id"}}
		stmt, err := d.CreateIndexSQL(byGroup)
		if err != nil || strings.Contains(stmt, "IF NOT EXISTS") {
			t.Fatalf("CreateIndexSQL = %q, %v", stmt, err)
		}
		exec(t, db, stmt)
		if ok, err := d.IndexExists(ctx, db, byGroup); err != nil || !ok {
			t.Errorf("IndexExists(%s) = %v, %v after %s", byGroup.Name, ok, err, stmt)
		}
		if _, err := db.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s ran twice", stmt)
		}
		if _, err := d.CreateIndexSQL(sqldialect.Index{Name: "idx", Table: "order", Columns: []string{`e"`}}); !errors.Is(err, sqldialect.ErrInvalidIdentifier) {
			t.Errorf("CreateIndexSQL of a bad column: %v", err)
		}
	})
}

func TestSetLockTimeout(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := context.Background()
		d := db.Dialect
		for _, bad := range []time.Duration{0, -time.Second} {
			if err := d.SetLockTimeout(ctx, db, bad); err == nil || !strings.HasPrefix(err.Error(), "sqldialect: lock timeout must be positive") {
				t.Errorf("SetLockTimeout(%v) = %v", bad, err)
			}
		}
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := d.SetLockTimeout(ctx, tx, 1500*time.Millisecond+time.Microsecond); err != nil {
			t.Fatal(err)
		}
		show := func(ex sqlx.QueryerContext) string {
			t.Helper()
			var q string
			switch db.Name {
			case "sqlite":
				return ""
			case "postgres":
				q = "SELECT current_setting('lock_timeout')"
			case "mysql":
				q = "SELECT CONCAT(@@SESSION.innodb_lock_wait_timeout, ' ', @@SESSION.lock_wait_timeout)"
			}
			var v string
			if err := sqlx.GetContext(ctx, ex, &v, q); err != nil {
				t.Fatal(err)
			}
			return v
		}
		want := map[string]string{"sqlite": "", "postgres": "1501ms", "mysql": "2 2"}[db.Name]
		if got := show(tx); got != want {
			t.Errorf("in the transaction: %q, want %q", got, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if db.Name == "postgres" {
			if got := show(db); got != "0" {
				t.Errorf("after the transaction: lock_timeout %q, want 0", got)
			}
		}
	})
}

// TestErrorsFromRealDatabases provokes each kind of error on each database
// and checks how the dialect classifies it.
func TestErrorsFromRealDatabases(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		t.Parallel()
		d := db.Dialect
		ctx := context.Background()
		exec(t, db,
			"CREATE TABLE acct (id "+d.TypeBigInt()+" PRIMARY KEY, name "+d.TypeKeyText()+" NOT NULL UNIQUE, bal "+d.TypeBigInt()+")",
			"INSERT INTO acct (id, name, bal) VALUES (1, 'a', 0), (2, 'b', 0)",
		)
		classify := func(err error) errClass {
			return errClass{d.IsLockTimeout(err), d.IsUniqueViolation(err), d.IsSerializationFailure(err)}
		}
		check := func(what string, err error, want errClass) {
			t.Helper()
			if err == nil {
				t.Errorf("%s: no error", what)
				return
			}
			for _, e := range []error{err, fmt.Errorf("context: %w", err)} {
				if got := classify(e); got != want {
					t.Errorf("%s: %v classified (lock, unique, serialization) %+v, want %+v", what, err, got, want)
				}
			}
		}

		_, err := db.ExecContext(ctx, "INSERT INTO acct (id, name) VALUES (1, 'c')")
		check("duplicate primary key", err, errClass{unique: true})
		_, err = db.ExecContext(ctx, "INSERT INTO acct (id, name) VALUES (3, 'a')")
		check("duplicate unique key", err, errClass{unique: true})
		_, err = db.ExecContext(ctx, "INSERT INTO acct (id, name) VALUES (4, NULL)")
		check("NOT NULL", err, errClass{})

		t.Run("lock timeout", func(t *testing.T) { lockTimeout(t, db, check) })
		t.Run("conflict", func(t *testing.T) { conflict(t, db, check) })
	})
}

// errClass is how a dialect classifies an error.
type errClass struct{ lock, unique, serial bool }

// checkFunc checks how an error is classified.
type checkFunc = func(what string, err error, want errClass)

// lockTimeout holds a lock in one transaction and waits for it in another
// with a short lock timeout.
func lockTimeout(t *testing.T, db *testdb.DB, check checkFunc) {
	ctx := context.Background()
	d := db.Dialect
	holder, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "UPDATE acct SET bal = bal + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	waiter := db.DB
	if db.Name == "sqlite" {
		// SQLite waits as long as the connection's busy_timeout says, in
		// BEGIN IMMEDIATE.
		short, err := sqlx.Open("sqlite", strings.Replace(db.DSN, "busy_timeout(10000)", "busy_timeout(50)", 1)+"&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer short.Close()
		waiter = short
	}
	start := time.Now()
	tx, err := waiter.BeginTxx(ctx, nil) // BEGIN IMMEDIATE on SQLite: waits here
	if err == nil {
		defer tx.Rollback()
		if err = d.SetLockTimeout(ctx, tx, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		var bal int
		err = tx.GetContext(ctx, &bal, "SELECT bal FROM acct WHERE id = 1"+d.ForUpdate())
	}
	elapsed := time.Since(start)
	want := errClass{lock: true, serial: db.Name == "sqlite"}
	check("waiting for a lock", err, want)
	if elapsed > 5*time.Second {
		t.Errorf("lock timeout took %v", elapsed)
	}

	if db.Name != "sqlite" {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var bal int
		err = tx.GetContext(ctx, &bal, "SELECT bal FROM acct WHERE id = 1"+d.ForUpdate()+" NOWAIT")
		check("NOWAIT", err, want)
	}
}

// conflict makes two transactions conflict: a deadlock on PostgreSQL and
// MySQL, a serialization failure under SERIALIZABLE on PostgreSQL, and a
// stale read snapshot that tries to write on SQLite.
func conflict(t *testing.T, db *testdb.DB, check checkFunc) {
	ctx := context.Background()
	want := errClass{serial: true, lock: db.Name == "sqlite"}
	if db.Name == "sqlite" {
		deferred, err := sqlx.Open("sqlite", db.DSN+"&_txlock=deferred")
		if err != nil {
			t.Fatal(err)
		}
		defer deferred.Close()
		tx, err := deferred.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var bal int
		if err := tx.GetContext(ctx, &bal, "SELECT bal FROM acct WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		exec(t, db, "UPDATE acct SET bal = bal + 1 WHERE id = 2")
		_, err = tx.ExecContext(ctx, "UPDATE acct SET bal = bal + 1 WHERE id = 2")
		check("write from a stale snapshot", err, want)
		return
	}

	// Deadlock: a locks 1 then 2, b locks 2 then 1.
	a, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	b, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Rollback()
	exec(t, a, "UPDATE acct SET bal = bal + 1 WHERE id = 1")
	exec(t, b, "UPDATE acct SET bal = bal + 1 WHERE id = 2")
	errA := make(chan error, 1)
	go func() {
		_, err := a.ExecContext(ctx, "UPDATE acct SET bal = bal + 1 WHERE id = 2")
		errA <- err
	}()
	time.Sleep(200 * time.Millisecond) // let a start waiting for b's lock
	_, errB := b.ExecContext(ctx, "UPDATE acct SET bal = bal + 1 WHERE id = 1")
	if errB == nil {
		b.Rollback() // b won; a then gets the lock
	}
	var err2 error
	select {
	case err2 = <-errA:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock not detected within 20 s")
	}
	if errB != nil {
		check("deadlock", errB, want)
	} else {
		check("deadlock", err2, want)
	}
	a.Rollback()
	b.Rollback()

	if db.Name != "postgres" {
		return
	}
	// Write skew under SERIALIZABLE: each reads what the other writes.
	opts := &sql.TxOptions{Isolation: sql.LevelSerializable}
	x, err := db.BeginTxx(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Rollback()
	y, err := db.BeginTxx(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Rollback()
	var sum int
	for _, tx := range []*sqlx.Tx{x, y} {
		if err := tx.GetContext(ctx, &sum, "SELECT SUM(bal) FROM acct"); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, x, "UPDATE acct SET bal = bal + 10 WHERE id = 1")
	exec(t, y, "UPDATE acct SET bal = bal + 10 WHERE id = 2")
	if err := x.Commit(); err != nil {
		t.Fatal(err)
	}
	check("serializable write skew", y.Commit(), want)
}
