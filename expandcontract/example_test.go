package expandcontract_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

func Example() {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:example?mode=memory&cache=shared")
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.MustExec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT)`)

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
	// Expand: add the new column, and start dual writes, in one move.
	st, err := mig.Move(ctx, expandcontract.Move{
		To: expandcontract.DualWrite, Actor: "alice", Reason: "rename customer_phone",
		SQL: []string{`ALTER TABLE customers ADD COLUMN phone_number TEXT`},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("phase:", st.Phase)

	// However far the flag owner turns the flag, the phase bounds it.
	bound, err := mig.Bound(time.Second, "")
	if err != nil {
		panic(err)
	}
	fmt.Println("flag says live, requests get:", bound.Clamp(ctx, cutover.Live))

	// Reads cannot move before the backfill is done and verified.
	if _, err := mig.Move(ctx, expandcontract.Move{To: expandcontract.Backfill, Actor: "alice"}); err != nil {
		panic(err)
	}
	_, err = mig.Move(ctx, expandcontract.Move{To: expandcontract.SwitchReads, Actor: "alice"})
	fmt.Println(errors.Is(err, expandcontract.ErrGuard), err)
	// Output:
	// phase: dualwrite
	// flag says live, requests get: dualwrite
	// true expandcontract: phase move refused by a guard: "customers-phone" from backfill to switchreads: backfill not complete (0 rows copied of about 0)
}

func ExampleMigration_Status() {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:example_status?mode=memory&cache=shared")
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	store, err := expandcontract.Open(ctx, db, expandcontract.WithLogger(slog.New(slog.DiscardHandler)),
		expandcontract.WithClock(func() time.Time { return now }))
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
		if _, err := mig.Move(ctx, expandcontract.Move{To: p, Actor: "alice", Reason: "rename customer_phone"}); err != nil {
			panic(err)
		}
	}
	if err := mig.ReportStage(ctx, "web-1", cutover.Shadow); err != nil {
		panic(err)
	}

	st, err := mig.Status(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("phase:", st.State.Phase, "stages:", st.Stages)
	fmt.Println("instances in shadow:", st.ByStage[cutover.Shadow], "repairs pending:", st.Repairs.Pending)
	for _, ev := range st.Events {
		fmt.Printf("%s %s %s -> %s by %s\n", ev.At.Format(time.Kitchen), ev.Kind, ev.From, ev.To, ev.Actor)
	}
	// Output:
	// phase: backfill stages: [dualwrite shadow]
	// instances in shadow: 1 repairs pending: 0
	// 9:00AM move dualwrite -> backfill by alice
	// 9:00AM move expand -> dualwrite by alice
	// 9:00AM create expand -> expand by deploy-42
}
