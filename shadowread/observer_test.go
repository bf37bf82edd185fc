package shadowread_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

// TestObserver: a reader's observer is told of each store call, each
// fallback and each comparison, with the result the comparisons counter
// counts.
func TestObserver(t *testing.T) {
	ev := &testutil.Events{}
	f := newFixture(t, cutover.Live, shadowread.WithObserver[user](ev), shadowread.WithSynchronous[user]())
	f.put(t, ada)
	_, err := f.get(t.Context(), "42") // a match
	require.NoError(t, err)
	f.stores.New.Drift("42", func(u user) user { u.Email = "ada@new.example.org"; return u })
	_, err = f.get(t.Context(), "42") // a mismatch, the new store read twice
	require.NoError(t, err)
	f.stores.New.FailNext(1, nil)
	_, err = f.get(t.Context(), "42") // a fallback, no comparison
	require.NoError(t, err)

	assert.Equal(t, []cutover.ComparisonEvent{
		{Op: "users.get", Stage: cutover.Live, Result: cutover.CompareMatch},
		{Op: "users.get", Stage: cutover.Live, Result: cutover.CompareMismatch},
	}, ev.Comparisons)
	assert.Equal(t, []cutover.FallbackEvent{{Op: "users.get", Stage: cutover.Live, Reason: cutover.FallbackFailed}}, ev.Fallbacks)
	var roles []cutover.Role
	var outcomes []cutover.Outcome
	for _, c := range ev.Calls {
		roles, outcomes = append(roles, c.Role), append(outcomes, c.Outcome)
	}
	assert.Equal(t, []cutover.Role{
		cutover.RoleAuthoritative, cutover.RoleShadow,
		cutover.RoleAuthoritative, cutover.RoleShadow, cutover.RoleShadow,
		cutover.RoleAuthoritative, cutover.RoleFallback,
	}, roles)
	assert.Equal(t, cutover.CallError, outcomes[5])
}
