package dualwritetest_test

import (
	"context"
	"fmt"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
)

func Example() {
	ctx := context.Background()
	p := dualwritetest.NewPair[string]()
	p.New.FailNext(1, nil)

	// Code under test writes each side through one function.
	write := func(side cutover.Side) error { return p.Side(side).Put(ctx, "42", "Ada") }

	for _, side := range []cutover.Side{cutover.Old, cutover.New} {
		fmt.Printf("write %v: %v\n", side, write(side))
	}
	fmt.Println("differ:", p.Diff())

	// A repair copies the row again.
	_ = write(cutover.New)
	fmt.Println("differ:", p.Diff())
	fmt.Println("puts to new:", p.New.Count(dualwritetest.OpPut))

	// Output:
	// write old: <nil>
	// write new: dualwritetest: injected failure
	// differ: [42]
	// differ: []
	// puts to new: 2
}

func ExampleStore_Hold() {
	ctx := context.Background()
	s := dualwritetest.NewStore[int]("new")

	release := s.Hold()
	go s.Put(ctx, "7", 1) // a write the code under test does not wait for
	_ = s.WaitStarted(ctx, 1)
	fmt.Println("finished while held:", len(s.Calls()))

	release()
	_ = s.WaitCalls(ctx, 1)
	fmt.Println("finished after release:", len(s.Calls()))

	// Output:
	// finished while held: 0
	// finished after release: 1
}

func ExampleStore_Drift() {
	ctx := context.Background()
	s := dualwritetest.NewStore[string]("new")
	_ = s.Put(ctx, "42", "Ada")
	s.Drift("42", func(v string) string { return v + " Lovelace" })

	v, _ := s.Get(ctx, "42")
	fmt.Printf("read %q, stored %q\n", v, s.Snapshot()["42"])

	// Output:
	// read "Ada Lovelace", stored "Ada"
}
