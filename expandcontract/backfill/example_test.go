package backfill_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
)

func ExampleRunner_Run() {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:backfill_example?mode=memory&cache=shared")
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.MustExec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT, phone_number TEXT)`)
	for id := 1; id <= 2500; id++ {
		db.MustExec(`INSERT INTO customers (id, customer_phone) VALUES (?, ?)`, id, fmt.Sprintf("+1-555-%04d", id))
	}

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
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		if _, err := mig.Move(ctx, expandcontract.Move{To: p, Actor: "alice"}); err != nil {
			panic(err)
		}
	}

	runner, err := backfill.New(mig,
		backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.IntKeys},
		backfill.SQLBatch(`UPDATE customers SET phone_number = customer_phone WHERE id > :from AND id <= :to`),
		backfill.WithBatchSize(1000),
		backfill.WithProgress(func(p backfill.Progress) {
			fmt.Printf("%d of %d rows, done: %v\n", p.Rows, p.Total, p.Done)
		}))
	if err != nil {
		panic(err)
	}
	if err := runner.Run(ctx); err != nil {
		panic(err)
	}
	st, err := mig.State(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("backfill done:", st.Backfill.Done())
	// Output:
	// 1000 of 2500 rows, done: false
	// 2000 of 2500 rows, done: false
	// 2500 of 2500 rows, done: false
	// 2500 of 2500 rows, done: true
	// backfill done: true
}
