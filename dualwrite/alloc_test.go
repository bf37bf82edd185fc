package dualwrite_test

import (
	"context"
	"testing"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
)

// In off and complete a write is a pass-through: beyond the caller's own
// closure, it must not allocate.
func TestSingleStoreWriteAllocatesNothing(t *testing.T) {
	stores := [2]*kv{newKV(), newKV()}
	write := func(ctx context.Context, side cutover.Side) error { return stores[side].Put(ctx, "42", "Ada") }
	for _, stage := range []cutover.Stage{cutover.Off, cutover.Complete} {
		w, err := dualwrite.New("users.save", cutover.Fixed(stage), new(cutover.MemoryRepairLog))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		allocs := testing.AllocsPerRun(200, func() {
			if err := w.Write(ctx, "42", write); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Write allocated %v times per call, want 0", stage, allocs)
		}
	}
}
