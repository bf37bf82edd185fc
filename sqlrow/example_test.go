package sqlrow_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/sqlrow"
)

// Two tables, each with a version column, written by a versioned dual
// write: a late call carrying an older version changes nothing, and a
// repair copies the newer row over the older one.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sqlrow")
	defer os.RemoveAll(dir)
	db := sqlx.MustOpen("sqlite", filepath.Join(dir, "app.db"))
	defer db.Close()
	var stores [2]*sqlrow.Rows
	for side, name := range []string{"users", "users_v2"} {
		db.MustExec("CREATE TABLE " + name + " (id INTEGER PRIMARY KEY, email TEXT, version BIGINT NOT NULL DEFAULT 0)")
		rows, err := sqlrow.New("sqlite", sqlrow.Table{Name: name, Key: "id", Version: "version", Columns: []string{"email"}})
		if err != nil {
			panic(err)
		}
		stores[side] = rows
	}

	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), &cutover.MemoryRepairLog{})
	if err != nil {
		panic(err)
	}
	save := func(email string) (cutover.Version, error) {
		return w.WriteVersioned(ctx, "7", func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
			return stores[s.Side].Save(ctx, db, s, 7, email)
		})
	}
	first, _ := save("ann@example.com")
	second, _ := save("ann@example.org")

	// A late secondary call of the first save lands after the second save.
	applied, _ := stores[cutover.New].Put(ctx, db, 7, first, "ann@example.com")
	fmt.Println("late write applied:", applied)

	// The new store missed the second save; a repair brings it over.
	db.MustExec("UPDATE users_v2 SET email = 'ann@example.com', version = ? WHERE id = 7", int64(first))
	pair := &sqlrow.Pair{Old: sqlrow.Store{DB: db, Rows: stores[cutover.Old]}, New: sqlrow.Store{DB: db, Rows: stores[cutover.New]}}
	if err := pair.Repair(ctx, cutover.Repair{Op: "users.save", Key: "7", Target: cutover.New, Reason: cutover.Unverified}); err != nil {
		panic(err)
	}
	row, _ := stores[cutover.New].Get(ctx, db, 7)
	fmt.Println("new store:", row.Values[0], row.Version == second)
	// Output:
	// late write applied: false
	// new store: ann@example.org true
}
