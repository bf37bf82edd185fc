// Package ectest holds the test fixtures that the tests of package
// expandcontract and of its sub-packages share: one settable clock, a store
// opened on a test database, migration handles, and walks through the
// phases.
package ectest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testutil"
)

// Start is the time a [NewClock] starts at.
var Start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable clock for a store: testutil's, so that every test
// in the module moves time alike. The zero value reads as the zero time. It
// is safe for concurrent use.
type Clock = testutil.Clock

// NewClock returns a clock at [Start].
func NewClock() *Clock { return NewClockAt(Start) }

// NewClockAt returns a clock at t.
func NewClockAt(t time.Time) *Clock { return testutil.NewClock(t) }

// Open opens a store on db that logs nowhere, with the clock c (nil: the
// real clock) and opts, and closes it when the test ends.
func Open(t testing.TB, db *sqlx.DB, c *Clock, opts ...expandcontract.Option) *expandcontract.Store {
	t.Helper()
	base := []expandcontract.Option{expandcontract.WithLogger(slog.New(slog.DiscardHandler))}
	if c != nil {
		base = append(base, expandcontract.WithClock(c.Now))
	}
	s, err := expandcontract.Open(t.Context(), db, append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// OpenAtOnce opens the metadata tables of db from two stores at once, as
// two instances starting together would, and returns the schema version
// the tables record after.
func OpenAtOnce(t testing.TB, db *sqlx.DB) int64 {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = expandcontract.Open(t.Context(), db) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var version int64
	require.NoError(t, db.GetContext(t.Context(), &version, `SELECT version FROM cutover_schema`))
	return version
}

// Migration returns the handle of the migration name in s. It may be
// called from any goroutine: a valid name cannot fail, and an invalid one
// panics, naming the test's mistake.
func Migration(t testing.TB, s *expandcontract.Store, name string) *expandcontract.Migration {
	m, err := s.Migration(name)
	if err != nil {
		panic("ectest: " + t.Name() + ": " + err.Error())
	}
	return m
}

// Ensure creates the migration name in s, in the expand phase, and returns
// its handle.
func Ensure(t testing.TB, s *expandcontract.Store, name string) *expandcontract.Migration {
	t.Helper()
	m := Migration(t, s, name)
	_, err := m.Ensure(t.Context(), "test")
	require.NoError(t, err)
	return m
}

// MoveTo moves m through the phases in order, one step each, and returns
// its state after the last.
func MoveTo(t testing.TB, m *expandcontract.Migration, phases ...expandcontract.Phase) expandcontract.State {
	t.Helper()
	var st expandcontract.State
	for _, p := range phases {
		var err error
		st, err = m.Move(t.Context(), expandcontract.Move{To: p, Actor: "test", Reason: "walk"})
		require.NoError(t, err)
		require.Equal(t, p, st.Phase)
	}
	return st
}

// ToBackfill creates the migration name in s and moves it to the backfill
// phase.
func ToBackfill(t testing.TB, s *expandcontract.Store, name string) *expandcontract.Migration {
	t.Helper()
	m := Ensure(t, s, name)
	MoveTo(t, m, expandcontract.DualWrite, expandcontract.Backfill)
	return m
}

// Verify creates a verifier of m with old, new and opts, and runs it once.
func Verify(ctx context.Context, m *expandcontract.Migration, old, new verify.RowSource, opts ...verify.Option) (verify.Result, error) {
	v, err := verify.New(m, old, new, opts...)
	if err != nil {
		return verify.Result{}, err
	}
	return v.Run(ctx)
}

// WalkToSwitchReads creates the migration name in s and moves it to
// switchreads through a backfill marked done and a clean verification
// recorded a second later on c.
func WalkToSwitchReads(t testing.TB, s *expandcontract.Store, c *Clock, name string) *expandcontract.Migration {
	t.Helper()
	m := ToBackfill(t, s, name)
	require.NoError(t, backfill.MarkDone(t.Context(), m, "test", ""))
	c.Advance(time.Second)
	require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true}))
	MoveTo(t, m, expandcontract.SwitchReads)
	return m
}

// RunEnds waits, at most 30s, for the error of a run on done, after what
// (such as "its context was canceled") should have ended it, and returns
// it; it fails the test if the run goes on.
func RunEnds(t testing.TB, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the run did not end within 30s after %s", what)
		return nil
	}
}
