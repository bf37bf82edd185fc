package trigger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
	"github.com/cutover-go/cutover/trigger"
)

// noLatency returns the default rules but latency's: the fake stores'
// latencies are whatever a busy machine makes them, and the latency
// trigger has tests of its own.
func noLatency() []trigger.Rule {
	var rules []trigger.Rule
	for _, r := range trigger.DefaultRules() {
		if r.Kind != trigger.Latency {
			rules = append(rules, r)
		}
	}
	return rules
}

// TestWrappersFeedTheMonitor: real wrappers over fake stores in live, the
// new store failing one call in five: the error and availability triggers
// fire and demote, and the readiness turns 503, while the callers got no
// error (the old store answered).
func TestWrappersFeedTheMonitor(t *testing.T) {
	f := newFixture(t, noLatency()...)
	stores := dualwritetest.NewPair[string]()
	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.Live), new(testutil.Log),
		dualwrite.WithObserver(f.m), dualwrite.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	r, err := shadowread.New[string]("users.get", cutover.Fixed(cutover.Live), shadowread.WithObserver[string](f.m),
		shadowread.WithSynchronous[string](), shadowread.WithLogger[string](testutil.Quiet()))
	require.NoError(t, err)
	ctx := t.Context()
	f.step(t, 0)
	stores.New.FailRate(0.2, nil)
	for i := range 200 {
		key := fmt.Sprint(i)
		require.NoError(t, w.Write(ctx, key, func(ctx context.Context, side cutover.Side) error {
			return stores.Side(side).Put(ctx, key, "ada")
		}))
		_, err := r.Read(ctx, key, func(ctx context.Context, side cutover.Side) (string, error) {
			return stores.Side(side).Get(ctx, key)
		})
		require.NoError(t, err, "the old store answers for the failing new one")
	}
	h := f.step(t, time.Second)

	byKind := map[trigger.Kind]trigger.TriggerHealth{}
	for _, th := range h.Triggers {
		byKind[th.Kind] = th
	}
	assert.Equal(t, trigger.StateFiring, byKind[trigger.ErrorRate].State)
	// One call in five fails, and a read of a key whose write fell back
	// finds nothing in the new store: an error too, until it is repaired.
	assert.Greater(t, byKind[trigger.ErrorRate].Figure, trigger.DefaultErrorRate)
	assert.GreaterOrEqual(t, byKind[trigger.ErrorRate].Samples, int64(400))
	assert.Equal(t, trigger.StateFiring, byKind[trigger.Availability].State)
	assert.Equal(t, int64(400), byKind[trigger.Availability].Samples, "every write and read asked the new store first")
	assert.Equal(t, trigger.StateOK, byKind[trigger.MismatchRate].State)
	assert.False(t, h.Ready)
	demoted, alarmed := f.acts.counts()
	assert.Equal(t, 2, demoted)
	assert.Zero(t, alarmed)
}

// TestHealthyWrappersFireNothing: the same traffic over healthy stores
// leaves every trigger ok with its samples counted.
func TestHealthyWrappersFireNothing(t *testing.T) {
	f := newFixture(t, noLatency()...)
	stores := dualwritetest.NewPair[string]()
	r, err := shadowread.New[string]("users.get", cutover.Fixed(cutover.Shadow), shadowread.WithObserver[string](f.m),
		shadowread.WithSynchronous[string](), shadowread.WithLogger[string](testutil.Quiet()))
	require.NoError(t, err)
	require.NoError(t, stores.Old.Put(t.Context(), "1", "ada"))
	require.NoError(t, stores.New.Put(t.Context(), "1", "ada"))
	for range 150 {
		_, err := r.Read(t.Context(), "1", func(ctx context.Context, side cutover.Side) (string, error) {
			return stores.Side(side).Get(ctx, "1")
		})
		require.NoError(t, err)
	}
	h := f.step(t, time.Second)
	assert.True(t, h.Ready)
	for _, th := range h.Triggers {
		assert.Equal(t, trigger.StateOK, th.State, th.Kind.String())
		if th.Kind == trigger.MismatchRate || th.Kind == trigger.ErrorRate {
			assert.Equal(t, int64(150), th.Samples, th.Kind.String())
		}
	}
}
