package dualwrite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		require.NoError(t, err)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(200, func() { err = w.Write(ctx, "42", write) })
		require.NoError(t, err)
		assert.Zero(t, allocs, "%s: Write allocated %v times per call, want 0", stage, allocs)
	}
}
