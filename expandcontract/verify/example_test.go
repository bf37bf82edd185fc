package verify_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

// A column is being renamed: customer_phone is the old column and
// phone_number the new one, in the same table. The verification compares
// them and records the customers whose new column is wrong for repair.
func ExampleVerifier_Run() {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:verify_example?mode=memory&cache=shared")
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.MustExec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT, phone_number TEXT)`)
	db.MustExec(`INSERT INTO customers VALUES (1, '555-0101', '555-0101'), (2, '555-0102', '555-0102'),
		(3, NULL, NULL), (4, '555-0104', NULL), (5, '', '')`)

	store, err := expandcontract.Open(ctx, db, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	mig, err := store.Migration("customers-phone")
	if err != nil {
		panic(err)
	}
	if _, err := mig.Ensure(ctx, "deploy-42"); err != nil {
		panic(err)
	}
	old := &verify.SQLRows{DB: db, Table: "customers", Key: "id", Kind: expandcontract.IntKeys, Value: "customer_phone"}
	new := &verify.SQLRows{DB: db, Table: "customers", Key: "id", Kind: expandcontract.IntKeys, Value: "phone_number"}

	var repairs cutover.MemoryRepairLog
	v, err := verify.New(mig, old, new, verify.WithRepairLog(&repairs))
	if err != nil {
		panic(err)
	}
	res, err := v.Run(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("clean=%v rows=%d differences=%d keys=%v\n", res.Clean(), res.Rows, res.Differences, res.Keys)
	for _, r := range repairs.Entries() {
		fmt.Printf("repair %s %s in the %s store: %v\n", r.Op, r.Key, r.Target, r.Err)
	}

	// After the repair, the stored verification is clean.
	db.MustExec(`UPDATE customers SET phone_number = customer_phone WHERE id = 4`)
	if _, err := v.Run(ctx); err != nil {
		panic(err)
	}
	m, err := mig.State(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("stored: clean=%v rows=%d\n", m.Verification.Clean, m.Verification.Rows)
	// Output:
	// clean=false rows=5 differences=1 keys=[4]
	// repair verify 4 in the new store: verify: value differs between the stores
	// stored: clean=true rows=5
}
