package expandcontract_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestOpenIsIdempotent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = expandcontract.Open(t.Context(), db.DB) })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		again := ectest.Open(t, db.DB, c)
		m, err := ectest.Migration(t, again, "users").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase)
	})
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Open(t, db.DB, ectest.NewClock())
		_, err := db.ExecContext(t.Context(), `UPDATE cutover_schema SET version = 99`)
		require.NoError(t, err)
		_, err = expandcontract.Open(t.Context(), db.DB)
		assert.ErrorIs(t, err, expandcontract.ErrNewerSchema)
		assert.ErrorContains(t, err, "version 99")
	})
}

func TestTablePrefix(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithTablePrefix("mig_"))
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		var n int
		require.NoError(t, db.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM mig_migrations`))
		assert.Equal(t, 1, n)
		for _, bad := range []string{"x; DROP TABLE mig_migrations; --", `a"b`, "a b", "1abc"} {
			_, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithTablePrefix(bad))
			assert.Error(t, err, "prefix %q", bad)
		}
	})
}

func TestWalkForwardAndBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "alice")
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase)
		assert.Equal(t, int64(1), m.Version)

		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.DualWrite)
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.Backfill)
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.DualWrite) // rollback
		m = ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.Backfill)
		assert.Equal(t, int64(5), m.Version)

		events, err := ectest.Migration(t, s, "users").Events(t.Context())
		require.NoError(t, err)
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, fmt.Sprintf("%s %s->%s v%d by %s", e.Kind, e.From, e.To, e.Version, e.Actor))
		}
		assert.Equal(t, []string{
			"create expand->expand v1 by alice",
			"move expand->dualwrite v2 by test",
			"move dualwrite->backfill v3 by test",
			"move backfill->dualwrite v4 by test",
			"move dualwrite->backfill v5 by test",
		}, kinds)
	})
}

func TestIllegalMovesAreRefusedAndRecorded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClock())
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		for _, to := range []expandcontract.Phase{expandcontract.Expand, expandcontract.Backfill, expandcontract.Contract} {
			_, err := ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: to, Actor: "bob"})
			var me *expandcontract.MoveError
			require.ErrorAs(t, err, &me, "to %s", to)
			assert.ErrorIs(t, err, expandcontract.ErrIllegalMove)
		}
		_, err = ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.Backfill, Actor: "bob", Force: true})
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove, "Force never skips a phase")

		m, err := ectest.Migration(t, s, "users").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase, "a refused move changes nothing")
		assert.Equal(t, int64(1), m.Version)
		events, err := ectest.Migration(t, s, "users").Events(t.Context())
		require.NoError(t, err)
		assert.Len(t, events, 5, "the creation and four refusals")
		assert.Equal(t, "refuse", events[4].Kind)

		_, err = ectest.Migration(t, s, "nope").Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrNotFound)
		_, err = ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite})
		assert.ErrorIs(t, err, expandcontract.ErrInvalidInput, "a move needs an actor")
		_, err = ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: 9, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrUnknownPhase)
	})
}

func TestSwitchReadsGuard(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c, expandcontract.WithVerificationMaxAge(time.Hour))
		ectest.ToBackfill(t, s, "users")

		refused := func(want string) {
			t.Helper()
			_, err := ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob"})
			require.ErrorIs(t, err, expandcontract.ErrGuard)
			assert.ErrorContains(t, err, want)
		}
		refused("backfill not complete")

		require.NoError(t, backfill.MarkDone(t.Context(), ectest.Migration(t, s, "users"), "test", ""))
		refused("never verified")

		c.Advance(time.Minute)
		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: false, Rows: 100, Differences: 2}))
		refused("found 2 differing keys")
		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: false, Rows: 100,
			Detail: "verify: key not unique: " + strings.Repeat("k", 300)}))
		refused("the last verification was not clean: verify: key not unique: kkk")

		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 100}))
		c.Advance(2 * time.Hour)
		refused("old")

		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 100}))
		m := ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.SwitchReads)
		assert.True(t, m.Verification.Clean)
	})
}

// TestSwitchReadsNeedsVerificationAfterReturnToBackfill moves back from
// switchreads (and from backfill to dualwrite) and forward again: writes
// went on in between, so the verification from before the move back no
// longer lets reads switch, though it is clean, recent, and newer than the
// backfill's end.
func TestSwitchReadsNeedsVerificationAfterReturnToBackfill(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c, expandcontract.WithVerificationMaxAge(time.Hour))
		m := ectest.WalkToSwitchReads(t, s, c, "users")
		switchReads := func(force bool) (expandcontract.State, error) {
			return m.Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", Force: force})
		}
		refused := func() {
			t.Helper()
			_, err := switchReads(false)
			require.ErrorIs(t, err, expandcontract.ErrGuard, "a verification from before the move back into backfill let reads switch")
			assert.ErrorContains(t, err, "did not start after the last move into backfill")
		}

		c.Advance(time.Minute)
		ectest.MoveTo(t, m, expandcontract.Backfill)
		c.Advance(time.Minute)
		refused()

		// A verification started at the instant of the move may have read
		// before it.
		c.Advance(time.Minute)
		require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 1}))
		c.Advance(time.Minute)
		ectest.MoveTo(t, m, expandcontract.SwitchReads, expandcontract.Backfill)
		require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 1}))
		refused()
		c.Advance(time.Microsecond)
		require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 1}))
		_, err := switchReads(false)
		require.NoError(t, err)

		// Back two phases, and forward again, by force too.
		c.Advance(time.Minute)
		ectest.MoveTo(t, m, expandcontract.Backfill)
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", Force: true})
		require.NoError(t, err)
		c.Advance(time.Minute)
		ectest.MoveTo(t, m, expandcontract.Backfill)
		c.Advance(time.Minute)
		refused()
		st, err := switchReads(true)
		require.NoError(t, err, "force passes the guard")
		assert.Equal(t, expandcontract.SwitchReads, st.Phase)
		events, err := m.Events(t.Context())
		require.NoError(t, err)
		assert.Contains(t, events[len(events)-1].Detail, "forced past guard: the last verification")

		// Neither a refusal nor a recorded verification counts as a move.
		c.Advance(time.Minute)
		ectest.MoveTo(t, m, expandcontract.Backfill)
		c.Advance(time.Minute)
		require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 1}))
		c.Advance(time.Minute)
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.Backfill, Actor: "bob", Reason: "already there"})
		require.ErrorIs(t, err, expandcontract.ErrIllegalMove)
		_, err = switchReads(false)
		require.NoError(t, err)
	})
}

func TestContractIsFinalUnlessForced(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		ectest.WalkToSwitchReads(t, s, c, "users")
		require.NoError(t, ectest.Migration(t, s, "users").ReportStage(t.Context(), "web-1", cutover.Live))
		require.NoError(t, ectest.Migration(t, s, "users").ReportStage(t.Context(), "web-2", cutover.Complete))
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.Contract)
		events, err := ectest.Migration(t, s, "users").Events(t.Context())
		require.NoError(t, err)
		last := events[len(events)-1]
		assert.Contains(t, last.Detail, "web-1 (live)", "the move warns about instances still using the old store")
		assert.NotContains(t, last.Detail, "web-2")

		_, err = ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove)
		m, err := ectest.Migration(t, s, "users").Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", Force: true, Reason: "old columns still there"})
		require.NoError(t, err)
		assert.Equal(t, expandcontract.SwitchReads, m.Phase)
	})
}

func TestConcurrentMovesHaveOneWinner(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClock())
		for round := range 5 {
			name := fmt.Sprintf("race-%d", round)
			m, err := ectest.Migration(t, s, name).Ensure(t.Context(), "test")
			require.NoError(t, err)
			const racers = 8
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for i := range racers {
				// Each racer has read the same version, as two instances would.
				wg.Go(func() {
					<-start
					_, errs[i] = ectest.Migration(t, s, name).Move(context.Background(), expandcontract.Move{
						To: expandcontract.DualWrite, Actor: fmt.Sprintf("instance-%d", i), Version: m.Version})
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
					continue
				}
				var ce *expandcontract.ConflictError
				require.True(t, errors.As(err, &ce), "a loser gets a conflict, got %v", err)
				assert.Equal(t, m.Version, ce.Expected)
				assert.Equal(t, m.Version+1, ce.Actual)
			}
			assert.Equal(t, 1, wins, "exactly one racer wins")
			got, err := ectest.Migration(t, s, name).State(t.Context())
			require.NoError(t, err)
			assert.Equal(t, m.Version+1, got.Version, "the phase changed once")
		}
	})
}

func TestMoveRunsSQL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := ectest.Open(t, db.DB, ectest.NewClock())
		_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT)`)
		require.NoError(t, err)
		_, err = ectest.Migration(t, s, "rename").Ensure(t.Context(), "test")
		require.NoError(t, err)
		_, err = ectest.Migration(t, s, "rename").Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "test",
			SQL: []string{`ALTER TABLE customers ADD COLUMN phone_number TEXT`}})
		require.NoError(t, err)
		_, err = db.ExecContext(t.Context(), `INSERT INTO customers (id, customer_phone, phone_number) VALUES (1, 'a', 'a')`)
		require.NoError(t, err)

		_, err = ectest.Migration(t, s, "rename").Move(t.Context(), expandcontract.Move{To: expandcontract.Backfill, Actor: "test",
			SQL: []string{`SELECT no_such_column FROM customers`}})
		require.Error(t, err)
		m, err := ectest.Migration(t, s, "rename").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.DualWrite, m.Phase, "a failed statement leaves the phase alone")
	})
}
