package shadowread_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/shadowread"
)

// In the stages that read one store a read is a pass-through: beyond the
// caller's own closure, it must not allocate.
func TestSingleStoreReadAllocatesNothing(t *testing.T) {
	stores := benchStores(0)
	read := func(ctx context.Context, side cutover.Side) (user, error) { return stores[side].Get(ctx, "42") }
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite, cutover.Complete} {
		r, err := shadowread.New[user]("users.get", cutover.Fixed(stage))
		require.NoError(t, err)
		ctx := context.Background()
		allocs := testing.AllocsPerRun(200, func() { _, err = r.Read(ctx, "42", read) })
		require.NoError(t, err)
		assert.Zero(t, allocs, "%s: Read allocated %v times per call, want 0", stage, allocs)
	}
}
