package cdc_test

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover/expandcontract/cdc"
)

// The statements of SQLApply write the changes of a transaction that the
// log carried, here made by hand, to a SQLite new store: a renamed table
// and column, an upsert for each insert and update, a delete by key.
func ExampleSQLApply() {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:cdc_example?mode=memory&cache=shared")
	defer db.Close()
	db.MustExec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT)`)
	db.MustExec(`INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')`)

	apply, err := cdc.SQLApply(db, cdc.Table{Source: "public.users", Target: "customers",
		Columns: map[string]string{"id": "id", "name": "full_name"}})
	if err != nil {
		panic(err)
	}
	cols := []cdc.Column{{Name: "id", Key: true}, {Name: "name"}, {Name: "password"}}
	txn := &cdc.Txn{Last: true, Changes: []cdc.Change{
		{Op: cdc.Insert, Table: "public.users", Columns: cols, New: []any{int64(3), "Edsger", "x"}},
		{Op: cdc.Update, Table: "public.users", Columns: cols, New: []any{int64(1), "Ada Lovelace", cdc.Unchanged}},
		{Op: cdc.Delete, Table: "public.users", Columns: cols, Old: []any{int64(2), nil, nil}},
	}}
	tx := db.MustBeginTx(ctx, nil)
	if err := apply(ctx, tx, txn); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"full_name"`
	}
	if err := db.Select(&rows, `SELECT id, full_name FROM customers ORDER BY id`); err != nil {
		panic(err)
	}
	for _, r := range rows {
		fmt.Println(r.ID, r.Name)
	}
	// Output:
	// 1 Ada Lovelace
	// 3 Edsger
}

// A migration's slot and publication take a name derived from the
// migration's; Retire can drop them with the statements of DropSQL.
func ExampleSlot_DropSQL() {
	old := sqlx.NewDb(nil, "pgx") // the old PostgreSQL database; nothing here connects
	slot, err := cdc.SlotFor(old, "Users to the new cluster")
	if err != nil {
		panic(err)
	}
	fmt.Println(slot.Name())
	for _, q := range slot.DropSQL() {
		fmt.Println(q)
	}
	// Output:
	// cutover_users_to_the_new_cluster_5555aa16
	// SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = 'cutover_users_to_the_new_cluster_5555aa16' AND active_pid IS NOT NULL
	// SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'cutover_users_to_the_new_cluster_5555aa16'
	// DROP PUBLICATION IF EXISTS "cutover_users_to_the_new_cluster_5555aa16"
}
