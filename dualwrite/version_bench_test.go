package dualwrite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
)

// BenchmarkWriteVersioned is a dualwrite-stage write with versions against
// the same write without them and against the two direct calls, in one
// run: the difference is the clock and the version handed from one store
// to the other.
func BenchmarkWriteVersioned(b *testing.B) {
	ctx := context.Background()
	key, value := "42", "Ada"
	b.Run("direct", func(b *testing.B) {
		stores := [2]*kv{newKV(), newKV()}
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if err = stores[cutover.Old].Put(ctx, key, value); err != nil {
				break
			}
			if err = stores[cutover.New].Put(ctx, key, value); err != nil {
				break
			}
		}
		require.NoError(b, err)
	})
	b.Run("unversioned", func(b *testing.B) { benchWrite(b, benchWriter(b, cutover.DualWrite)) })
	b.Run("versioned", func(b *testing.B) {
		w := benchWriter(b, cutover.DualWrite)
		stores := [2]*kv{newKV(), newKV()}
		write := func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
			return s.Version, stores[s.Side].Put(ctx, key, value)
		}
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if _, err = w.WriteVersioned(ctx, key, write); err != nil {
				break
			}
		}
		require.NoError(b, err)
	})
}
