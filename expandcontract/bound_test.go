package expandcontract_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/flags/flagstest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestPhaseClamp(t *testing.T) {
	want := map[expandcontract.Phase][6]cutover.Stage{
		//                          off  dualwrite shadow live rampdown complete
		expandcontract.Expand:      {cutover.Off, cutover.Off, cutover.Off, cutover.Off, cutover.Off, cutover.Off},
		expandcontract.DualWrite:   {cutover.DualWrite, cutover.DualWrite, cutover.DualWrite, cutover.DualWrite, cutover.DualWrite, cutover.DualWrite},
		expandcontract.Backfill:    {cutover.DualWrite, cutover.DualWrite, cutover.Shadow, cutover.Shadow, cutover.Shadow, cutover.Shadow},
		expandcontract.SwitchReads: {cutover.DualWrite, cutover.DualWrite, cutover.Shadow, cutover.Live, cutover.Rampdown, cutover.Rampdown},
		expandcontract.Contract:    {cutover.Complete, cutover.Complete, cutover.Complete, cutover.Complete, cutover.Complete, cutover.Complete},
	}
	for p, row := range want {
		for i, s := range cutover.Stages {
			assert.Equal(t, row[i], p.Clamp(s), "%s clamps %s", p, s)
		}
	}
}

func TestFlagCannotReachLiveBeforeCleanVerification(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := newClock()
		s := openStore(t, db, c)
		_, err := s.Ensure(t.Context(), "users", "test")
		require.NoError(t, err)
		bound, err := s.Bound("users", time.Second, "web-1")
		require.NoError(t, err)

		ff := flagstest.New(t)
		ff.Set("users-migration", cutover.Live) // the flag owner is ahead of the data
		stage, err := flags.New(ff.Client(), "users-migration", flags.WithBound(bound.Clamp),
			flags.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		resolve := func() cutover.Stage {
			t.Helper()
			c.Advance(2 * time.Second) // past the TTL: calls from now on refresh
			want := currentPhase(t, s)
			require.Eventually(t, func() bool {
				stage.Stage(t.Context())
				p, _ := bound.Phase()
				return p == want
			}, 10*time.Second, time.Millisecond, "the bound re-reads the phase in the background")
			return stage.Stage(t.Context())
		}

		assert.Equal(t, cutover.Off, stage.Stage(t.Context()), "expand: nothing is written to the new store yet")
		move(t, s, "users", expandcontract.DualWrite)
		assert.Equal(t, cutover.DualWrite, resolve())
		move(t, s, "users", expandcontract.Backfill)
		assert.Equal(t, cutover.Shadow, resolve(), "live during backfill is clamped to shadow")

		require.NoError(t, s.MarkBackfillDone(t.Context(), "users", "test"))
		c.Advance(time.Second)
		require.NoError(t, s.RecordVerification(t.Context(), "users", expandcontract.Verification{Clean: false, Differences: 1}))
		_, err = s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test"})
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		assert.Equal(t, cutover.Shadow, resolve(), "no live read before a clean verification")

		require.NoError(t, s.RecordVerification(t.Context(), "users", expandcontract.Verification{Clean: true}))
		move(t, s, "users", expandcontract.SwitchReads)
		assert.Equal(t, cutover.Live, resolve())

		insts, err := s.Instances(t.Context(), "users")
		require.NoError(t, err)
		require.Len(t, insts, 1, "the bound reports the stages its instance resolves")
		assert.Equal(t, "web-1", insts[0].ID)
	})
}

func currentPhase(t *testing.T, s *expandcontract.Store) expandcontract.Phase {
	t.Helper()
	m, err := s.Get(context.Background(), "users")
	require.NoError(t, err)
	return m.Phase
}

func TestBoundKeepsLastPhaseWhenTheDatabaseFails(t *testing.T) {
	db := testdb.SQLite(t)
	c := newClock()
	s := openStore(t, db, c)
	walkToSwitchReads(t, s, c, "users")
	bound, err := s.Bound("users", time.Second, "")
	require.NoError(t, err)
	assert.Equal(t, cutover.Live, bound.Clamp(t.Context(), cutover.Live))

	require.NoError(t, db.Close()) // the metadata database goes away
	c.Advance(2 * time.Second)
	for range 3 {
		assert.Equal(t, cutover.Live, bound.Clamp(t.Context(), cutover.Live), "the last known phase still holds")
	}
}

func TestBoundWithoutAnyPhaseKeepsReadsOnOld(t *testing.T) {
	db := testdb.SQLite(t)
	s := openStore(t, db, newClock())
	bound, err := s.Bound("never-created", time.Second, "")
	require.NoError(t, err)
	assert.Equal(t, cutover.Shadow, bound.Clamp(t.Context(), cutover.Complete))
	assert.Equal(t, cutover.DualWrite, bound.Clamp(t.Context(), cutover.DualWrite))
	_, known := bound.Phase()
	assert.False(t, known)
}
