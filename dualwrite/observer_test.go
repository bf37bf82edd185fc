package dualwrite_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testutil"
)

// TestObserver: a writer's observer is told of each store call, with its
// side, role and outcome, and of each fallback, in either write order.
func TestObserver(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		name := "sequential"
		opts := []dualwrite.Option{}
		if concurrent {
			name, opts = "concurrent", append(opts, dualwrite.WithConcurrentWrites())
		}
		t.Run(name, func(t *testing.T) {
			ev := &testutil.Events{}
			f := newFixture(t, cutover.Live, append(opts, dualwrite.WithObserver(ev))...)
			require.NoError(t, f.save(t.Context(), "42", "ada"))
			f.stores.New.FailNext(1, nil)
			require.NoError(t, f.save(t.Context(), "42", "ada"))

			assert.Equal(t, []cutover.FallbackEvent{{Op: "users.save", Stage: cutover.Live, Reason: cutover.FallbackFailed}}, ev.Fallbacks)
			var failedNew, okOld int
			for _, c := range ev.Calls {
				assert.Equal(t, "users.save", c.Op)
				switch {
				case c.Side == cutover.New && c.Outcome == cutover.CallError:
					failedNew++
					assert.Equal(t, cutover.RoleAuthoritative, c.Role)
				case c.Side == cutover.Old && c.Outcome == cutover.CallOK:
					okOld++
				}
			}
			assert.Equal(t, 1, failedNew)
			assert.Equal(t, 2, okOld, "the old store wrote both times: as secondary, then in place of the new one")
			assert.Empty(t, ev.Comparisons)
		})
	}
}
