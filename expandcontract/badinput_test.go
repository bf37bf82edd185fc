package expandcontract_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The tests of this file give every kind of bad input to the package and
// check two things each time: the error says what was wrong (and wraps the
// sentinel docs/bad-input.md lists), and nothing changed: no metadata row,
// no history event, no table of the application (see ectest.Snapshot).

// usersEvents returns the history of the migration "users" in s.
func usersEvents(t *testing.T, s *expandcontract.Store) []expandcontract.Event {
	t.Helper()
	ev, err := ectest.Migration(t, s, "users").Events(t.Context())
	require.NoError(t, err)
	return ev
}

// TestBadInputOpen gives Open a nil database, a database of an unknown
// driver, nil and non-positive options and hostile table prefixes. Each
// fails with an error naming the problem, and no table is created.
func TestBadInputOpen(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		before := ectest.Snapshot(t, db, true)
		o := func(opts ...expandcontract.Option) []expandcontract.Option { return opts }
		prefix := func(p string) []expandcontract.Option { return o(expandcontract.WithTablePrefix(p)) }
		for _, tc := range []struct {
			name string
			db   *sqlx.DB
			opts []expandcontract.Option
			want error
			what string
		}{
			{"nil database", nil, nil, expandcontract.ErrInvalidInput, "nil database"},
			{"unknown driver", sqlx.NewDb(db.DB.DB, "oracle"), nil, nil, `unsupported database/sql driver "oracle"`},
			{"nil option", db.DB, o(expandcontract.WithLockTimeout(time.Second), nil), expandcontract.ErrInvalidInput, "option 1 is nil"},
			{"nil logger", db.DB, o(expandcontract.WithLogger(nil)), expandcontract.ErrInvalidInput, "nil logger"},
			{"nil meter provider", db.DB, o(expandcontract.WithMeterProvider(nil)), expandcontract.ErrInvalidInput, "nil meter provider"},
			{"nil tracer provider", db.DB, o(expandcontract.WithTracerProvider(nil)), expandcontract.ErrInvalidInput, "nil tracer provider"},
			{"nil SDK tracer provider", db.DB, o(expandcontract.WithTracerProvider((*sdktrace.TracerProvider)(nil))), expandcontract.ErrInvalidInput, "nil tracer provider"},
			{"nil clock", db.DB, o(expandcontract.WithClock(nil)), expandcontract.ErrInvalidInput, "nil clock"},
			{"zero verification age", db.DB, o(expandcontract.WithVerificationMaxAge(0)), expandcontract.ErrInvalidInput, "verification max age must be positive, got 0s"},
			{"negative verification age", db.DB, o(expandcontract.WithVerificationMaxAge(-time.Hour)), expandcontract.ErrInvalidInput, "got -1h0m0s"},
			{"zero lock timeout", db.DB, o(expandcontract.WithLockTimeout(0)), expandcontract.ErrInvalidInput, "lock timeout must be positive"},
			{"negative lock timeout", db.DB, o(expandcontract.WithLockTimeout(-time.Second)), expandcontract.ErrInvalidInput, "got -1s"},
			{"no DDL attempts", db.DB, o(expandcontract.WithDDLAttempts(0)), expandcontract.ErrInvalidInput, "DDL attempts must be at least 1, got 0"},
			{"negative DDL attempts", db.DB, o(expandcontract.WithDDLAttempts(-3)), expandcontract.ErrInvalidInput, "got -3"},
			{"prefix injection", db.DB, prefix("keep; DROP TABLE keep; --"), sqldialect.ErrInvalidIdentifier, `table prefix "keep; DROP TABLE keep; --"`},
			{"prefix double quote", db.DB, prefix(`a"b`), sqldialect.ErrInvalidIdentifier, "table prefix"},
			{"prefix backtick", db.DB, prefix("a`b"), sqldialect.ErrInvalidIdentifier, "table prefix"},
			{"prefix space", db.DB, prefix("a b"), sqldialect.ErrInvalidIdentifier, "table prefix"},
			{"prefix digit", db.DB, prefix("1abc"), sqldialect.ErrInvalidIdentifier, "starts with the digit"},
			{"prefix cyrillic lookalike", db.DB, prefix("\u0441utover_"), sqldialect.ErrInvalidIdentifier, "non-ASCII character"},
			{"prefix fullwidth lookalike", db.DB, prefix("\uff43utover_"), sqldialect.ErrInvalidIdentifier, "non-ASCII character"},
			{"prefix two dots", db.DB, prefix("a.b."), sqldialect.ErrInvalidIdentifier, "more than one dot"},
			{"prefix too long", db.DB, prefix(strings.Repeat("p", 60)), sqldialect.ErrInvalidIdentifier, "at most 63"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := expandcontract.Open(t.Context(), tc.db, tc.opts...)
				assert.Nil(t, s)
				require.Error(t, err)
				if tc.want != nil {
					assert.ErrorIs(t, err, tc.want)
				}
				assert.Contains(t, err.Error(), tc.what)
				assert.True(t, strings.HasPrefix(err.Error(), "expandcontract: "), "%v", err)
			})
		}
		assert.Equal(t, []string{"keep"}, ectest.Tables(t, db), "no table was created")
		assert.Equal(t, before, ectest.Snapshot(t, db, true))
	})
}

// TestBadInputNewerOrCorruptSchema opens metadata tables that a newer
// version of the library made, and tables whose schema version is not a
// version. Open refuses both and changes no row.
func TestBadInputNewerOrCorruptSchema(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.DualWrite)

		for _, tc := range []struct {
			version int64
			want    error
			what    string
		}{
			{expandcontract.SchemaVersion + 1, expandcontract.ErrNewerSchema,
				fmt.Sprintf("tables cutover_* are at version %d, this library knows %d; upgrade the library", expandcontract.SchemaVersion+1, expandcontract.SchemaVersion)},
			{99, expandcontract.ErrNewerSchema, "version 99"},
			{0, expandcontract.ErrCorrupt, "schema version 0"},
			{-1, expandcontract.ErrCorrupt, "schema version -1"},
		} {
			_, err := db.ExecContext(t.Context(), db.Dialect.Rebind(`UPDATE cutover_schema SET version = ?`), tc.version)
			require.NoError(t, err)
			before := ectest.Snapshot(t, db, true)
			for range 2 {
				s, err := expandcontract.Open(t.Context(), db.DB)
				assert.Nil(t, s)
				ectest.ErrorIs(t, err, tc.what, tc.want)
			}
			assert.Equal(t, before, ectest.Snapshot(t, db, true), "version %d: nothing changed", tc.version)
		}
		_, err = db.ExecContext(t.Context(), db.Dialect.Rebind(`UPDATE cutover_schema SET version = ?`), expandcontract.SchemaVersion)
		require.NoError(t, err)
		s = ectest.Open(t, db.DB, ectest.NewClock())
		m, err := ectest.Migration(t, s, "users").State(t.Context())
		require.NoError(t, err)
		assert.Equal(t, expandcontract.DualWrite, m.Phase, "once the version is right again, the store opens as it was")
	})
}

// TestBadInputMigrationNames gives the store a migration name that is
// empty, too long, not UTF-8 or holds a control character: the handle is
// refused with ErrInvalidInput before any query runs, so no method of a
// migration, and no backfill, verifier or repair log, ever sees such a
// name. Each of those refuses a nil handle with its package's sentinel.
func TestBadInputMigrationNames(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		before := ectest.Snapshot(t, db, true)
		ctx := t.Context()
		rows := &verify.SQLRows{DB: db.DB, Table: "keep", Key: "id", Value: "v"}
		keys := backfill.Keyset{Table: "keep", Column: "id"}
		batch := backfill.SQLBatch(`UPDATE keep SET v = v WHERE id > :from AND id <= :to`)

		for _, name := range []string{"", strings.Repeat("n", 256), "tab\there", "nul\x00", "line\nbreak", "del\x7f"} {
			m, err := s.Migration(name)
			assert.Nil(t, m)
			ectest.ErrorIs(t, err, "migration name", expandcontract.ErrInvalidInput)
		}
		nilCalls := map[string]struct {
			call func() error
			want error
		}{
			"backfill.New":          {func() error { _, err := backfill.New(nil, keys, batch); return err }, backfill.ErrInvalidInput},
			"backfill.MarkDone":     {func() error { return backfill.MarkDone(ctx, nil, "test", "") }, backfill.ErrInvalidInput},
			"backfill.Pause":        {func() error { return backfill.Pause(ctx, nil, "test", "") }, backfill.ErrInvalidInput},
			"backfill.Resume":       {func() error { return backfill.Resume(ctx, nil, "test", "") }, backfill.ErrInvalidInput},
			"backfill.Cancel":       {func() error { return backfill.Cancel(ctx, nil, "test", "") }, backfill.ErrInvalidInput},
			"backfill.ResetCancel":  {func() error { return backfill.ResetCancel(ctx, nil, "test", "") }, backfill.ErrInvalidInput},
			"backfill.SetRate":      {func() error { return backfill.SetRate(ctx, nil, 10, "test", "") }, backfill.ErrInvalidInput},
			"backfill.SetBatchSize": {func() error { return backfill.SetBatchSize(ctx, nil, 10, "test", "") }, backfill.ErrInvalidInput},
			"verify.New":            {func() error { _, err := verify.New(nil, rows, rows); return err }, verify.ErrInvalidInput},
			"repair.NewLog":         {func() error { _, err := repair.NewLog(nil); return err }, repair.ErrInvalidInput},
		}
		for what, c := range nilCalls {
			t.Run(what, func(t *testing.T) { ectest.ErrorIs(t, c.call(), "nil migration", c.want) })
		}
		for _, id := range []string{"", "nul\x00", strings.Repeat("i", 256)} {
			err := ectest.Migration(t, s, "users").ReportStage(ctx, id, cutover.Live)
			ectest.ErrorIs(t, err, "instance id", expandcontract.ErrInvalidInput)
		}
		_, err = ectest.Migration(t, s, "users").Bound(time.Second, "bad\x00id")
		ectest.ErrorIs(t, err, "instance id", expandcontract.ErrInvalidInput)
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "nothing changed")
	})
}

// TestBadInputMoves asks for moves that are malformed, illegal, refused by
// a guard, stale, or of a migration that does not exist. Malformed moves
// are refused before anything is read or run; the others leave the phase
// and version as they were and add one refusal or conflict to the history;
// statements of a refused move never run.
func TestBadInputMoves(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		ctx := t.Context()
		drop := []string{"DROP TABLE keep"}

		before := ectest.Snapshot(t, db, true)
		for _, tc := range []struct {
			name string
			mig  string
			m    expandcontract.Move
			want error
			what string
		}{
			{"unknown phase", "users", expandcontract.Move{To: 9, Actor: "bob", SQL: drop}, expandcontract.ErrUnknownPhase, "move to Phase(9)"},
			{"no actor", "users", expandcontract.Move{To: expandcontract.DualWrite, SQL: drop}, expandcontract.ErrInvalidInput, "a move needs an actor"},
			{"blank actor", "users", expandcontract.Move{To: expandcontract.DualWrite, Actor: " \t", SQL: drop}, expandcontract.ErrInvalidInput, "a move needs an actor"},
			{"negative version", "users", expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", Version: -1, SQL: drop}, expandcontract.ErrInvalidInput, "negative version -1"},
			{"empty statement", "users", expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: []string{"DROP TABLE keep", "  "}}, expandcontract.ErrInvalidInput, "SQL statement 1 is empty"},
			{"no such migration", "nope", expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: drop}, expandcontract.ErrNotFound, `"nope"`},
		} {
			_, err := ectest.Migration(t, s, tc.mig).Move(ctx, tc.m)
			ectest.ErrorIs(t, err, tc.what, tc.want)
		}
		// Statements and overrides lockcheck.Check cannot check.
		override := func(o lockcheck.Override) expandcontract.Move {
			return expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: drop, Overrides: []lockcheck.Override{o}}
		}
		lockInput := []struct {
			m    expandcontract.Move
			want error
			what string
		}{
			{override(lockcheck.Override{Statement: 1, Rule: "create-index-concurrently", Why: "small"}), lockcheck.ErrInvalidInput,
				"expandcontract: invalid input: lockcheck: invalid input: override for statement 1, of 1"},
			{override(lockcheck.Override{Statement: 0, Rule: "create-index-concurrently"}), lockcheck.ErrInvalidInput,
				"override of rule create-index-concurrently for statement 0 gives no reason"},
			{override(lockcheck.Override{Statement: 0, Why: "small"}), lockcheck.ErrInvalidInput, "override for statement 0 names no rule"},
		}
		if db.Name == sqldialect.Postgres {
			lockInput = append(lockInput, []struct {
				m    expandcontract.Move
				want error
				what string
			}{
				{expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: []string{"ALTER TABEL keep"}}, lockcheck.ErrParse,
					"expandcontract: invalid input: lockcheck: statement does not parse: statement 0 (ALTER TABEL keep)"},
				{expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: []string{"DROP TABLE keep; SELECT 1"}}, lockcheck.ErrInvalidInput,
					"statement 0 holds 2 statements; give one per entry"},
			}...)
		}
		for _, tc := range lockInput {
			_, err := ectest.Migration(t, s, "users").Move(ctx, tc.m)
			ectest.ErrorIs(t, err, tc.what, expandcontract.ErrInvalidInput, tc.want)
			err = ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "bob", SQL: tc.m.SQL, Overrides: tc.m.Overrides})
			ectest.ErrorIs(t, err, tc.what, expandcontract.ErrInvalidInput, tc.want)
		}
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "malformed moves change nothing, not even the history")

		refused := func(m expandcontract.Move, kind string, want error, what string) {
			t.Helper()
			before := ectest.Snapshot(t, db, false)
			events := usersEvents(t, s)
			_, err := ectest.Migration(t, s, "users").Move(ctx, m)
			ectest.ErrorIs(t, err, what, want)
			assert.Equal(t, before, ectest.Snapshot(t, db, false), "the phase, the version and the application's tables are as they were")
			after := usersEvents(t, s)
			require.Len(t, after, len(events)+1, "the refusal is in the history")
			assert.Equal(t, kind, after[len(after)-1].Kind)
		}
		var me *expandcontract.MoveError
		refused(expandcontract.Move{To: expandcontract.Expand, Actor: "bob", SQL: drop}, "refuse", expandcontract.ErrIllegalMove, "already there")
		refused(expandcontract.Move{To: expandcontract.Backfill, Actor: "bob", SQL: drop}, "refuse", expandcontract.ErrIllegalMove, "phases move one step at a time")
		refused(expandcontract.Move{To: expandcontract.Contract, Actor: "bob", Force: true, SQL: drop}, "refuse", expandcontract.ErrIllegalMove, "from expand the next is dualwrite")
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.DualWrite)
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.Backfill)
		refused(expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", SQL: drop}, "refuse", expandcontract.ErrGuard, "backfill not complete")
		_, err = ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob"})
		require.ErrorAs(t, err, &me)
		assert.Equal(t, expandcontract.Backfill, me.From)
		assert.Equal(t, expandcontract.SwitchReads, me.To)

		var ce *expandcontract.ConflictError
		refused(expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", Version: 1, SQL: drop}, "conflict", expandcontract.ErrConflict, "the move expected version 1")
		_, err = ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", Version: 2})
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, expandcontract.ConflictError{Migration: "users", Expected: 2, Actual: 3, Phase: expandcontract.Backfill}, *ce)
		assert.Equal(t, []string{"cutover_backfill_ranges", "cutover_events", "cutover_instances", "cutover_migrations", "cutover_repairs", "cutover_schema", "cutover_verify_ranges", "keep"},
			ectest.Tables(t, db), "no refused statement ran")
	})
}

// TestBadInputPhaseText parses strings that name no phase.
func TestBadInputPhaseText(t *testing.T) {
	for _, s := range []string{"", "Expand", "dual-write", "switch_reads", "sideways", " backfill", "backfill\x00", "c\u043entract", strings.Repeat("x", 1000)} {
		p, err := expandcontract.ParsePhase(s)
		assert.ErrorIs(t, err, expandcontract.ErrUnknownPhase, "%q", s)
		assert.Equal(t, expandcontract.Expand, p, "%q", s)
		assert.Less(t, len(err.Error()), 400, "the error does not echo unbounded input")
		into := expandcontract.Backfill
		assert.ErrorIs(t, into.UnmarshalText([]byte(s)), expandcontract.ErrUnknownPhase)
		assert.Equal(t, expandcontract.Backfill, into, "%q: a failed unmarshal leaves the phase alone", s)
	}
	_, err := expandcontract.Phase(9).MarshalText()
	assert.ErrorIs(t, err, expandcontract.ErrUnknownPhase)
	lo, hi := expandcontract.Phase(9).Stages()
	assert.Equal(t, [2]cutover.Stage{cutover.Off, cutover.Off}, [2]cutover.Stage{lo, hi}, "a value that is no phase allows only off")
}

// TestBadInputStateUpdates gives the methods that change a migration's
// state values they refuse: impossible verification counts, no actor, a
// stage that is not one, a non-positive TTL, a migration that does not
// exist.
func TestBadInputStateUpdates(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		_, err := ectest.Migration(t, s, "users").Ensure(t.Context(), "test")
		require.NoError(t, err)
		ctx := t.Context()
		before, state := ectest.Snapshot(t, db, true), ectest.Snapshot(t, db, false)
		for _, tc := range []struct {
			name string
			err  error
			want error
			what string
		}{
			{"negative rows", ectest.Migration(t, s, "users").RecordVerification(ctx, expandcontract.Verification{Rows: -1}), expandcontract.ErrInvalidInput, "verification with -1 rows"},
			{"negative differences", ectest.Migration(t, s, "users").RecordVerification(ctx, expandcontract.Verification{Differences: -2}), expandcontract.ErrInvalidInput, "-2 differences"},
			{"clean with differences", ectest.Migration(t, s, "users").RecordVerification(ctx, expandcontract.Verification{Clean: true, Differences: 3}), expandcontract.ErrInvalidInput, "a clean verification with 3 differences"},
			{"verification of nothing", ectest.Migration(t, s, "nope").RecordVerification(ctx, expandcontract.Verification{Clean: true}), expandcontract.ErrNotFound, `"nope"`},
			{"done without actor", backfill.MarkDone(ctx, ectest.Migration(t, s, "users"), "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"pause without actor", backfill.Pause(ctx, ectest.Migration(t, s, "users"), "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"resume without actor", backfill.Resume(ctx, ectest.Migration(t, s, "users"), "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"cancel without actor", backfill.Cancel(ctx, ectest.Migration(t, s, "users"), "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"reset without actor", backfill.ResetCancel(ctx, ectest.Migration(t, s, "users"), "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"pause of nothing", backfill.Pause(ctx, ectest.Migration(t, s, "nope"), "test", ""), expandcontract.ErrNotFound, `"nope"`},
			{"negative rate", backfill.SetRate(ctx, ectest.Migration(t, s, "users"), -1, "test", ""), backfill.ErrInvalidInput,
				"rate limit: -1 is not zero (none) or a rate up to 1e+09 rows per second"},
			{"NaN rate", backfill.SetRate(ctx, ectest.Migration(t, s, "users"), math.NaN(), "test", ""), backfill.ErrInvalidInput, "rate limit: NaN"},
			{"infinite rate", backfill.SetRate(ctx, ectest.Migration(t, s, "users"), math.Inf(1), "test", ""), backfill.ErrInvalidInput, "rate limit: +Inf"},
			{"rate too high", backfill.SetRate(ctx, ectest.Migration(t, s, "users"), 2e9, "test", ""), backfill.ErrInvalidInput, "rate limit: 2e+09"},
			{"rate without actor", backfill.SetRate(ctx, ectest.Migration(t, s, "users"), 10, " ", ""), backfill.ErrInvalidInput, "rate limit of \"users\" needs an actor"},
			{"rate of nothing", backfill.SetRate(ctx, ectest.Migration(t, s, "nope"), 10, "test", ""), expandcontract.ErrNotFound, `"nope"`},
			{"negative batch size", backfill.SetBatchSize(ctx, ectest.Migration(t, s, "users"), -5, "test", ""), backfill.ErrInvalidInput,
				"batch size: -5 is not zero (none) or a size up to 1000000 keys"},
			{"batch size too large", backfill.SetBatchSize(ctx, ectest.Migration(t, s, "users"), backfill.MaxBatchSize+1, "test", ""),
				backfill.ErrInvalidInput, "batch size: 1000001"},
			{"batch size without actor", backfill.SetBatchSize(ctx, ectest.Migration(t, s, "users"), 10, "", ""), backfill.ErrInvalidInput, "needs an actor"},
			{"batch size of nothing", backfill.SetBatchSize(ctx, ectest.Migration(t, s, "nope"), 10, "test", ""), expandcontract.ErrNotFound, `"nope"`},
			{"stage not a stage", ectest.Migration(t, s, "users").ReportStage(ctx, "web-1", cutover.Stage(9)), cutover.ErrUnknownStage, "9"},
			{"retire without actor", ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{SQL: []string{"DROP TABLE keep"}}), expandcontract.ErrInvalidInput, "retiring needs an actor"},
			{"retire nothing", ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "test"}), expandcontract.ErrInvalidInput, "nothing to run"},
			{"retire empty statement", ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "test", SQL: []string{"DROP TABLE keep", ""}}), expandcontract.ErrInvalidInput, "SQL statement 1 is empty"},
			{"retire of nothing", ectest.Migration(t, s, "nope").Retire(ctx, expandcontract.Retire{Actor: "test", SQL: []string{"DROP TABLE keep"}}), expandcontract.ErrNotFound, `"nope"`},
		} {
			t.Run(tc.name, func(t *testing.T) { ectest.ErrorIs(t, tc.err, tc.what, tc.want) })
		}
		for _, ttl := range []time.Duration{0, -time.Second} {
			b, err := ectest.Migration(t, s, "users").Bound(ttl, "")
			assert.Nil(t, b)
			ectest.ErrorIs(t, err, "bound TTL must be positive", expandcontract.ErrInvalidInput)
		}
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "nothing changed")

		// Retire outside contract is refused, recorded, and runs nothing.
		err = ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "test", SQL: []string{"DROP TABLE keep"}})
		ectest.ErrorIs(t, err, "only in contract", expandcontract.ErrIllegalMove)
		assert.Equal(t, state, ectest.Snapshot(t, db, false), "keep is still there")
	})
}

// TestBadInputCorruptMigrationRow corrupts the row of a migration with raw
// SQL: a phase that is no phase, a version of 0 or -1, a negative count of
// backfilled rows. Every method that reads the row fails with ErrCorrupt
// naming the migration and the bad value, and changes nothing; a Bound
// that knew the phase keeps it, and a new Bound keeps reads on the old
// store. Once the row is mended, all works again.
func TestBadInputCorruptMigrationRow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		c := ectest.NewClock()
		metrics := metrictest.New(t)
		s := ectest.Open(t, db.DB, c, expandcontract.WithMeterProvider(metrics.Provider()))
		ectest.ToBackfill(t, s, "users")
		ctx := t.Context()
		known, err := ectest.Migration(t, s, "users").Bound(time.Second, "")
		require.NoError(t, err)
		require.Equal(t, cutover.Shadow, known.Clamp(ctx, cutover.Live), "backfill allows up to shadow")
		rows := &verify.SQLRows{DB: db.DB, Table: "keep", Key: "id", Value: "v"}

		for _, tc := range []struct {
			name, set, what string
		}{
			{"unknown phase", `phase = 'sideways'`, `migration "users": phase: expandcontract: unknown phase "sideways"`},
			{"empty phase", `phase = ''`, `unknown phase ""`},
			{"version zero", `version = 0`, `migration "users": version 0`},
			{"negative version", `version = -1`, `migration "users": version -1`},
			{"negative backfill rows", `backfill_rows = -5`, `backfill rows -5 of 0`},
			{"negative backfill total", `backfill_total = -7`, `backfill rows 0 of -7`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.ExecContext(ctx, `UPDATE cutover_migrations SET `+tc.set+` WHERE name = 'users'`)
				require.NoError(t, err)
				before := ectest.Snapshot(t, db, true)

				for method, call := range map[string]func() error{
					"Get":    func() error { _, err := ectest.Migration(t, s, "users").State(ctx); return err },
					"Ensure": func() error { _, err := ectest.Migration(t, s, "users").Ensure(ctx, "test"); return err },
					"Move": func() error {
						_, err := ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.DualWrite, Actor: "bob", SQL: []string{"DROP TABLE keep"}})
						return err
					},
					"forced Move": func() error {
						_, err := ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.SwitchReads, Actor: "bob", Force: true})
						return err
					},
					"PauseBackfill":    func() error { return backfill.Pause(ctx, ectest.Migration(t, s, "users"), "bob", "") },
					"MarkBackfillDone": func() error { return backfill.MarkDone(ctx, ectest.Migration(t, s, "users"), "bob", "") },
					"RecordVerification": func() error {
						return ectest.Migration(t, s, "users").RecordVerification(ctx, expandcontract.Verification{Clean: true})
					},
					"Verify": func() error { _, err := ectest.Verify(ctx, ectest.Migration(t, s, "users"), rows, rows); return err },
					"Retire": func() error {
						return ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "bob", SQL: []string{"DROP TABLE keep"}})
					},
				} {
					err := call()
					require.Error(t, err, method)
					assert.ErrorIs(t, err, expandcontract.ErrCorrupt, method)
					assert.Contains(t, err.Error(), tc.what, method)
				}
				assert.Equal(t, before, ectest.Snapshot(t, db, true), "nothing changed, not even the history")

				// The bound that knew the phase keeps it...
				errs := metrics.Sum("cutover.expandcontract.phase_reads", "cutover.reason", "error")
				c.Advance(2 * time.Second)
				require.Eventually(t, func() bool {
					known.Clamp(ctx, cutover.Live)
					return metrics.Sum("cutover.expandcontract.phase_reads", "cutover.reason", "error") > errs
				}, 10*time.Second, time.Millisecond, "the bound re-reads the phase")
				assert.Equal(t, cutover.Shadow, known.Clamp(ctx, cutover.Live))
				assert.Equal(t, cutover.DualWrite, known.Clamp(ctx, cutover.Off), "dual writes go on")
				p, ok := known.Phase()
				assert.Equal(t, expandcontract.Backfill, p)
				assert.True(t, ok)
				// ...and a new one keeps reads on the old store.
				fresh, err := ectest.Migration(t, s, "users").Bound(time.Second, "")
				require.NoError(t, err)
				assert.Equal(t, cutover.Shadow, fresh.Clamp(ctx, cutover.Complete))
				assert.Equal(t, cutover.Off, fresh.Clamp(ctx, cutover.Off))
				_, ok = fresh.Phase()
				assert.False(t, ok)

				_, err = db.ExecContext(ctx, `UPDATE cutover_migrations SET phase = 'backfill', version = 3, backfill_rows = 0, backfill_total = 0 WHERE name = 'users'`)
				require.NoError(t, err)
				m, err := ectest.Migration(t, s, "users").State(ctx)
				require.NoError(t, err, "mended")
				assert.Equal(t, expandcontract.Backfill, m.Phase)
			})
		}
	})
}

// TestBadInputCorruptHistoryAndInstances corrupts a history event and an
// instance's stage report. Reading them fails with ErrCorrupt. Retire,
// which must know every instance's stage before it drops anything, refuses
// and drops nothing; a move to contract, which only warns about instances,
// goes ahead and records the warning.
func TestBadInputCorruptHistoryAndInstances(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		ctx := t.Context()
		ectest.ToBackfill(t, s, "users")
		require.NoError(t, backfill.MarkDone(ctx, ectest.Migration(t, s, "users"), "test", ""))
		c.Advance(time.Second)
		require.NoError(t, ectest.Migration(t, s, "users").RecordVerification(ctx, expandcontract.Verification{Clean: true}))
		ectest.MoveTo(t, ectest.Migration(t, s, "users"), expandcontract.SwitchReads)

		_, err := db.ExecContext(ctx, db.Dialect.Rebind(`INSERT INTO cutover_instances (migration, instance, stage, seen_at) VALUES ('users', 'web-1', 'sideways', ?)`),
			c.Now().UnixMicro())
		require.NoError(t, err)
		_, err = ectest.Migration(t, s, "users").Instances(ctx)
		ectest.ErrorIs(t, err, `instance "web-1" of "users": cutover: unknown stage "sideways"`, expandcontract.ErrCorrupt, cutover.ErrUnknownStage)

		m, err := ectest.Migration(t, s, "users").Move(ctx, expandcontract.Move{To: expandcontract.Contract, Actor: "bob"})
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Contract, m.Phase)
		events := usersEvents(t, s)
		assert.Contains(t, events[len(events)-1].Detail, "could not read instance reports")

		before := ectest.Snapshot(t, db, true)
		err = ectest.Migration(t, s, "users").Retire(ctx, expandcontract.Retire{Actor: "bob", SQL: []string{"DROP TABLE keep"}})
		ectest.ErrorIs(t, err, `instance "web-1"`, expandcontract.ErrCorrupt)
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "keep was not dropped")

		_, err = db.ExecContext(ctx, `UPDATE cutover_events SET from_phase = 'sideways' WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM cutover_events) AS first_event)`)
		require.NoError(t, err)
		_, err = ectest.Migration(t, s, "users").Events(ctx)
		ectest.ErrorIs(t, err, `unknown phase "sideways"`, expandcontract.ErrCorrupt, expandcontract.ErrUnknownPhase)
	})
}

// TestBadInputHostileIdentifiers names tables and columns, for a backfill
// and a verification, with SQL in them, quotes, look-alike letters, control
// characters and too many parts. Each is refused with an error that wraps
// ErrInvalidInput (and ErrInvalidIdentifier when the name is no
// identifier), quotes the name, and runs nothing.
func TestBadInputHostileIdentifiers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		ctx := t.Context()
		ectest.ToBackfill(t, s, "users")
		before := ectest.Snapshot(t, db, true)
		batch := backfill.SQLBatch(`UPDATE keep SET v = v WHERE id > :from AND id <= :to`)
		good := verify.SQLRows{DB: db.DB, Table: "keep", Key: "id", Value: "v"}

		hostile := []string{
			"keep; DROP TABLE keep", "keep; DROP TABLE keep; --", `a"b`, `keep" --`, "a`b", "keep'", "k\u0435ep", "\uff4beep",
			"keep\x00", "keep\n", "a.b.c", "", " keep", strings.Repeat("k", 64), "1keep", "ke ep",
		}
		for _, name := range hostile {
			_, err := backfill.New(ectest.Migration(t, s, "users"), backfill.Keyset{Table: name, Column: "id"}, batch)
			ectest.ErrorIs(t, err, "key table", backfill.ErrInvalidInput, expandcontract.ErrInvalidIdentifier)
			if name != "" {
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
			}
			_, err = backfill.New(ectest.Migration(t, s, "users"), backfill.Keyset{Table: "keep", Column: name}, batch)
			ectest.ErrorIs(t, err, "key column", backfill.ErrInvalidInput)

			bad := good
			bad.Table = name
			_, err = ectest.Verify(ctx, ectest.Migration(t, s, "users"), &bad, &good)
			ectest.ErrorIs(t, err, "SQLRows table", verify.ErrInvalidInput, expandcontract.ErrInvalidIdentifier)
			bad = good
			bad.Key = name
			_, err = ectest.Verify(ctx, ectest.Migration(t, s, "users"), &good, &bad)
			ectest.ErrorIs(t, err, "SQLRows key column", verify.ErrInvalidInput)
		}
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "keep is intact and no verification was stored")
	})
}

// TestBadInputMigrationNameNotUTF8 gives a migration name that is not
// valid UTF-8: the store refuses its handle with ErrInvalidInput, on every
// database alike, so that nothing stores or queries it.
func TestBadInputMigrationNameNotUTF8(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ectest.Keep(t, db)
		s := ectest.Open(t, db.DB, ectest.NewClock())
		before := ectest.Snapshot(t, db, true)
		_, err := s.Migration("bad \xff name")
		ectest.ErrorIs(t, err, "not valid UTF-8", expandcontract.ErrInvalidInput)
		assert.Equal(t, before, ectest.Snapshot(t, db, true), "nothing changed")
	})
}
