package expandcontract_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// clock is a settable clock for the store.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return newClockAt(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) }

func newClockAt(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T, db *testdb.DB, c *clock, opts ...expandcontract.Option) *expandcontract.Store {
	t.Helper()
	opts = append([]expandcontract.Option{
		expandcontract.WithClock(c.Now),
		expandcontract.WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	s, err := expandcontract.Open(t.Context(), db.DB, opts...)
	require.NoError(t, err)
	return s
}

func move(t *testing.T, s *expandcontract.Store, name string, to expandcontract.Phase) expandcontract.Migration {
	t.Helper()
	m, err := s.Move(t.Context(), name, expandcontract.Move{To: to, Actor: "test", Reason: "walk"})
	require.NoError(t, err)
	require.Equal(t, to, m.Phase)
	return m
}

func TestOpenIsIdempotent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := newClock()
		s := openStore(t, db, c)
		_, err := s.Ensure(t.Context(), "users", "test")
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
		again := openStore(t, db, c)
		m, err := again.Get(t.Context(), "users")
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase)
	})
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		openStore(t, db, newClock())
		_, err := db.ExecContext(t.Context(), `UPDATE cutover_schema SET version = 99`)
		require.NoError(t, err)
		_, err = expandcontract.Open(t.Context(), db.DB)
		assert.ErrorIs(t, err, expandcontract.ErrNewerSchema)
		assert.ErrorContains(t, err, "version 99")
	})
}

func TestTablePrefix(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := openStore(t, db, newClock(), expandcontract.WithTablePrefix("mig_"))
		_, err := s.Ensure(t.Context(), "users", "test")
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
		c := newClock()
		s := openStore(t, db, c)
		m, err := s.Ensure(t.Context(), "users", "alice")
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase)
		assert.Equal(t, int64(1), m.Version)

		move(t, s, "users", expandcontract.DualWrite)
		move(t, s, "users", expandcontract.Backfill)
		move(t, s, "users", expandcontract.DualWrite) // rollback
		m = move(t, s, "users", expandcontract.Backfill)
		assert.Equal(t, int64(5), m.Version)

		events, err := s.Events(t.Context(), "users")
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
		s := openStore(t, db, newClock())
		_, err := s.Ensure(t.Context(), "users", "test")
		require.NoError(t, err)
		for _, to := range []expandcontract.Phase{expandcontract.Expand, expandcontract.Backfill, expandcontract.Contract} {
			_, err := s.Move(t.Context(), "users", expandcontract.Move{To: to, Actor: "bob"})
			var me *expandcontract.MoveError
			require.ErrorAs(t, err, &me, "to %s", to)
			assert.ErrorIs(t, err, expandcontract.ErrIllegalMove)
		}
		_, err = s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.Backfill, Actor: "bob", Force: true})
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove, "Force never skips a phase")

		m, err := s.Get(t.Context(), "users")
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, m.Phase, "a refused move changes nothing")
		assert.Equal(t, int64(1), m.Version)
		events, err := s.Events(t.Context(), "users")
		require.NoError(t, err)
		assert.Len(t, events, 5, "the creation and four refusals")
		assert.Equal(t, "refuse", events[4].Kind)

		_, err = s.Move(t.Context(), "nope", expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrNotFound)
		_, err = s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.DualWrite})
		assert.ErrorIs(t, err, expandcontract.ErrInvalidInput, "a move needs an actor")
		_, err = s.Move(t.Context(), "users", expandcontract.Move{To: 9, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrUnknownPhase)
	})
}

func TestSwitchReadsGuard(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := newClock()
		s := openStore(t, db, c, expandcontract.WithVerificationMaxAge(time.Hour))
		_, err := s.Ensure(t.Context(), "users", "test")
		require.NoError(t, err)
		move(t, s, "users", expandcontract.DualWrite)
		move(t, s, "users", expandcontract.Backfill)

		refused := func(want string) {
			t.Helper()
			_, err := s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob"})
			require.ErrorIs(t, err, expandcontract.ErrGuard)
			assert.ErrorContains(t, err, want)
		}
		refused("backfill not complete")

		require.NoError(t, s.MarkBackfillDone(t.Context(), "users", "test"))
		refused("never verified")

		c.Advance(time.Minute)
		require.NoError(t, s.RecordVerification(t.Context(), "users", expandcontract.Verification{Clean: false, Rows: 100, Differences: 2}))
		refused("found 2 differing keys")

		require.NoError(t, s.RecordVerification(t.Context(), "users", expandcontract.Verification{Clean: true, Rows: 100}))
		c.Advance(2 * time.Hour)
		refused("old")

		require.NoError(t, s.RecordVerification(t.Context(), "users", expandcontract.Verification{Clean: true, Rows: 100}))
		m := move(t, s, "users", expandcontract.SwitchReads)
		assert.True(t, m.Verification.Clean)
	})
}

func TestContractIsFinalUnlessForced(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := newClock()
		s := openStore(t, db, c)
		walkToSwitchReads(t, s, c, "users")
		require.NoError(t, s.ReportStage(t.Context(), "users", "web-1", cutover.Live))
		require.NoError(t, s.ReportStage(t.Context(), "users", "web-2", cutover.Complete))
		move(t, s, "users", expandcontract.Contract)
		events, err := s.Events(t.Context(), "users")
		require.NoError(t, err)
		last := events[len(events)-1]
		assert.Contains(t, last.Detail, "web-1 (live)", "the move warns about instances still using the old store")
		assert.NotContains(t, last.Detail, "web-2")

		_, err = s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob"})
		assert.ErrorIs(t, err, expandcontract.ErrIllegalMove)
		m, err := s.Move(t.Context(), "users", expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", Force: true, Reason: "old columns still there"})
		require.NoError(t, err)
		assert.Equal(t, expandcontract.SwitchReads, m.Phase)
	})
}

// walkToSwitchReads moves a new migration to switchreads through a finished
// backfill and a clean verification.
func walkToSwitchReads(t *testing.T, s *expandcontract.Store, c *clock, name string) {
	t.Helper()
	_, err := s.Ensure(t.Context(), name, "test")
	require.NoError(t, err)
	move(t, s, name, expandcontract.DualWrite)
	move(t, s, name, expandcontract.Backfill)
	require.NoError(t, s.MarkBackfillDone(t.Context(), name, "test"))
	c.Advance(time.Second)
	require.NoError(t, s.RecordVerification(t.Context(), name, expandcontract.Verification{Clean: true}))
	move(t, s, name, expandcontract.SwitchReads)
}

func TestConcurrentMovesHaveOneWinner(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := openStore(t, db, newClock())
		for round := range 5 {
			name := fmt.Sprintf("race-%d", round)
			m, err := s.Ensure(t.Context(), name, "test")
			require.NoError(t, err)
			const racers = 8
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for i := range racers {
				// Each racer has read the same version, as two instances would.
				wg.Go(func() {
					<-start
					_, errs[i] = s.Move(context.Background(), name, expandcontract.Move{
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
			got, err := s.Get(t.Context(), name)
			require.NoError(t, err)
			assert.Equal(t, m.Version+1, got.Version, "the phase changed once")
		}
	})
}

func TestMoveRunsSQL(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := openStore(t, db, newClock())
		_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT)`)
		require.NoError(t, err)
		_, err = s.Ensure(t.Context(), "rename", "test")
		require.NoError(t, err)
		_, err = s.Move(t.Context(), "rename", expandcontract.Move{To: expandcontract.DualWrite, Actor: "test",
			SQL: []string{`ALTER TABLE customers ADD COLUMN phone_number TEXT`}})
		require.NoError(t, err)
		_, err = db.ExecContext(t.Context(), `INSERT INTO customers (id, customer_phone, phone_number) VALUES (1, 'a', 'a')`)
		require.NoError(t, err)

		_, err = s.Move(t.Context(), "rename", expandcontract.Move{To: expandcontract.Backfill, Actor: "test",
			SQL: []string{`SELECT no_such_column FROM customers`}})
		require.Error(t, err)
		m, err := s.Get(t.Context(), "rename")
		require.NoError(t, err)
		assert.Equal(t, expandcontract.DualWrite, m.Phase, "a failed statement leaves the phase alone")
	})
}
