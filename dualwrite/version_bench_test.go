package dualwrite_test

import (
	"context"
	"testing"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/testutil"
)

// BenchmarkWriteVersioned measures a dualwrite-stage write with versions
// against its floor, the two direct store calls (x-direct), and against
// the same write without versions (x-unversioned), each pair in
// alternating rounds of one benchmark (see testutil.Paired):
//
//	go test -run '^$' -bench 'BenchmarkWriteVersioned' ./dualwrite/
func BenchmarkWriteVersioned(b *testing.B) {
	versioned := func(stores [2]*kv) func() error {
		w := benchWriter(b, cutover.DualWrite)
		ctx := context.Background()
		put := func(ctx context.Context, s cutover.Stamp) (cutover.Version, error) {
			return s.Version, stores[s.Side].Put(ctx, "42", "Ada")
		}
		return func() error {
			_, err := w.WriteVersioned(ctx, "42", put)
			return err
		}
	}
	b.Run("direct", func(b *testing.B) {
		stores := [2]*kv{newKV(), newKV()}
		testutil.Paired(b, "direct", direct(stores, 2), versioned(stores))
	})
	b.Run("unversioned", func(b *testing.B) {
		stores := [2]*kv{newKV(), newKV()}
		testutil.Paired(b, "unversioned", write(benchWriter(b, cutover.DualWrite), stores), versioned(stores))
	})
}
