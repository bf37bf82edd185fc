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
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
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
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		bound, err := ectest.Migration(t, s, "users").Bound(time.Second, "web-1")
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
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.DualWrite)
		assert.Equal(t, cutover.DualWrite, resolve())
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.Backfill)
		assert.Equal(t, cutover.Shadow, resolve(), "live during backfill is clamped to shadow")

		require.NoError(t, backfill.MarkDone(t.Context(), ectest.Migration(t, s, "users"), "test", ""))
		c.Advance(time.Second)
		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: false, Differences: 1}))
		_, err = ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test"})
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		assert.Equal(t, cutover.Shadow, resolve(), "no live read before a clean verification")

		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: true}))
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.SwitchReads)
		assert.Equal(t, cutover.Live, resolve())

		insts, err := ectest.Migration(t, s, "users").Instances(t.Context())
		require.NoError(t, err)
		require.Len(t, insts, 1, "the bound reports the stages its instance resolves")
		assert.Equal(t, "web-1", insts[0].ID)
	})
}

func currentPhase(t *testing.T, s *expandcontract.Store) expandcontract.Phase {
	t.Helper()
	m, err := ectest.Migration(t, s, "users").State(context.Background())
	require.NoError(t, err)
	return m.Phase
}

func TestBoundKeepsLastPhaseWhenTheDatabaseFails(t *testing.T) {
	db := testdb.SQLite(t)
	c := ectest.NewClock()
	s := ectest.Open(t, db.DB, c)
	ectest.WalkToSwitchReads(t, s, c, "users")
	bound, err := ectest.Migration(t, s, "users").Bound(time.Second, "")
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
	s := ectest.Open(t, db.DB, ectest.NewClock())
	bound, err := ectest.Migration(t, s, "never-created").Bound(time.Second, "")
	require.NoError(t, err)
	assert.Equal(t, cutover.Shadow, bound.Clamp(t.Context(), cutover.Complete))
	assert.Equal(t, cutover.DualWrite, bound.Clamp(t.Context(), cutover.DualWrite))
	_, known := bound.Phase()
	assert.False(t, known)
}
