package dualwrite_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
)

func Example() {
	ctx := context.Background()
	stores := dualwritetest.NewPair[string]()
	repairs := new(cutover.MemoryRepairLog)
	saves, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), repairs,
		dualwrite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	save := func(id, name string) error {
		return saves.Write(ctx, id, func(ctx context.Context, side cutover.Side) error {
			return stores.Side(side).Put(ctx, id, name)
		})
	}

	fmt.Println(save("1", "Ada"))
	stores.New.FailNext(1, nil) // the new store has a bad moment
	fmt.Println(save("2", "Grace"))

	for _, r := range repairs.Entries() {
		fmt.Printf("repair %s %q in the %s store: %s\n", r.Op, r.Key, r.Target, r.Reason)
	}
	fmt.Println("differ:", stores.Diff())
	// Output:
	// <nil>
	// <nil>
	// repair users.save "2" in the new store: secondary_failed
	// differ: [2]
}

func ExampleCall() {
	ctx := context.Background()
	w, err := dualwrite.New("orders.create", cutover.Fixed(cutover.Live), new(cutover.MemoryRepairLog))
	if err != nil {
		panic(err)
	}
	id, err := dualwrite.Call(ctx, w, "order-7", func(ctx context.Context, side cutover.Side) (int64, error) {
		if side == cutover.New {
			return 1001, nil // the new store's generated id
		}
		return 17, nil
	})
	fmt.Println(id, err)
	// Output: 1001 <nil>
}
