package repair_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/repair"
)

// A dual writer records the keys whose write to the new store failed in
// the SQL repair log; a repairer later copies them over from the old store.
func ExampleNew() {
	ctx := context.Background()
	db, err := sqlx.Open("sqlite", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database
	quiet := slog.New(slog.DiscardHandler)
	store, err := expandcontract.Open(ctx, db, expandcontract.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	mig, err := store.Migration("users")
	if err != nil {
		panic(err)
	}
	repairs, err := repair.NewLog(mig)
	if err != nil {
		panic(err)
	}

	stores := dualwritetest.NewPair[string]()
	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), repairs, dualwrite.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	stores.New.FailNext(1, errors.New("new store unavailable"))
	err = w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
		return stores.Side(side).Put(ctx, "42", "Ada")
	})
	pending, _ := repairs.Pending(ctx)
	fmt.Println("write error:", err, "| pending:", pending, "| differing keys:", stores.Diff())

	repairer, err := repair.New(repairs, func(ctx context.Context, r cutover.Repair) error {
		v, err := stores.Side(r.Target.Other()).Get(ctx, r.Key)
		if errors.Is(err, dualwritetest.ErrNotFound) {
			return stores.Side(r.Target).Delete(ctx, r.Key)
		} else if err != nil {
			return err
		}
		return stores.Side(r.Target).Put(ctx, r.Key, v)
	})
	if err != nil {
		panic(err)
	}
	defer repairer.Close()
	stats, err := repairer.RunOnce(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", stats)
	pending, _ = repairs.Pending(ctx)
	fmt.Println("pending:", pending, "| differing keys:", stores.Diff())
	// Output:
	// write error: <nil> | pending: 1 | differing keys: [42]
	// {Claimed:1 Repaired:1 Failed:0 Stuck:0 RecordedAgain:0}
	// pending: 0 | differing keys: []
}
