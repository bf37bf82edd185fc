package expandcontract_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/spantest"
	"github.com/cutover-go/cutover/internal/testdb"
)

const scope = "github.com/cutover-go/cutover/expandcontract"

func TestMoveSpans(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rec := spantest.New(t)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c, expandcontract.WithTracerProvider(rec.Provider()))
		_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone VARCHAR(40))`)
		require.NoError(t, err)
		m := ectest.Ensure(t, s, "rename")

		// A move that runs a statement.
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann",
			SQL: []string{`ALTER TABLE customers  ADD COLUMN phone_number VARCHAR(40)`}})
		require.NoError(t, err)
		move := spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move")
		assert.Equal(t, scope, move.InstrumentationScope().Name)
		assert.Equal(t, map[string]string{"cutover.migration": "rename", "cutover.phase.from": "expand",
			"cutover.phase.to": "dualwrite", "cutover.forced": "false", "cutover.statements": "1",
			"cutover.outcome": "ok"}, spantest.Attrs(move))
		assert.Equal(t, codes.Unset, move.Status().Code)
		stmt := spantest.Only(t, spantest.ChildrenOf(move, rec.Named("cutover.expandcontract.statement")), "one statement")
		a := spantest.Attrs(stmt)
		assert.Equal(t, "0", a["cutover.statement.index"])
		assert.Equal(t, "ok", a["cutover.outcome"])
		assert.Equal(t, "dualwrite", a["cutover.phase.to"])
		assert.True(t, strings.HasPrefix(a["cutover.statement"], "ALTER TABLE customers ADD COLUMN phone_number VARCHAR(40)"),
			"abbreviated, as lockcheck returned it: %q", a["cutover.statement"])
		assert.Equal(t, scope, stmt.InstrumentationScope().Name)

		// A move whose second statement fails.
		rec.Reset()
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.Backfill, Actor: "ann",
			SQL: []string{`ALTER TABLE customers ADD COLUMN note VARCHAR(40)`, `ALTER TABLE no_such_table ADD COLUMN x INTEGER`}})
		require.Error(t, err)
		require.Equal(t, expandcontract.DualWrite, phase(t, s, "rename"))
		move = spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move")
		assert.Equal(t, "error", spantest.Attrs(move)["cutover.outcome"])
		spantest.CheckError(t, move, "statement 1 (ALTER TABLE no_such_table ADD COLUMN x INTEGER")
		stmts := spantest.ChildrenOf(move, rec.Named("cutover.expandcontract.statement"))
		require.Len(t, stmts, 2)
		assert.Equal(t, "ok", spantest.Attrs(stmts[0])["cutover.outcome"])
		assert.Equal(t, codes.Unset, stmts[0].Status().Code)
		assert.Equal(t, map[string]string{"cutover.migration": "rename", "cutover.phase.to": "backfill",
			"cutover.statement.index": "1", "cutover.statement": spantest.Attrs(stmts[1])["cutover.statement"],
			"cutover.outcome": "error"}, spantest.Attrs(stmts[1]))
		assert.Contains(t, spantest.Attrs(stmts[1])["cutover.statement"], "no_such_table")
		spantest.CheckError(t, stmts[1], "statement 1 (ALTER TABLE no_such_table")

		// A move a guard refuses.
		ectest.MoveTo(t, m, expandcontract.Backfill)
		rec.Reset()
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "ann"})
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		move = spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move")
		assert.Equal(t, "refused", spantest.Attrs(move)["cutover.outcome"])
		assert.Equal(t, "backfill", spantest.Attrs(move)["cutover.phase.from"])
		spantest.CheckError(t, move, "backfill not complete")
		assert.Empty(t, rec.Named("cutover.expandcontract.statement"))

		// A move that lost the race to another.
		rec.Reset()
		_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", Version: 1})
		require.ErrorIs(t, err, expandcontract.ErrConflict)
		assert.Equal(t, "conflict", spantest.Attrs(spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move"))["cutover.outcome"])
	})
}

// On PostgreSQL and MySQL, a statement that breaks a lock-safety rule
// refuses the move before any runs, and a move tried again notes the
// statements it skips.
func TestMoveSpansOfLockChecks(t *testing.T) {
	for name, sql := range map[string][]string{
		"postgres": {`ALTER TABLE users ADD COLUMN nickname text`, `CREATE UNIQUE INDEX CONCURRENTLY idx_users_email ON users (email)`},
		"mysql":    {`ALTER TABLE users ADD COLUMN nickname VARCHAR(40)`, `CREATE UNIQUE INDEX idx_users_email ON users (email)`},
	} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			createUsers(t, db, true)
			rec := spantest.New(t)
			s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithTracerProvider(rec.Provider()))
			m := ectest.Ensure(t, s, "users-email")

			unsafe := map[string]string{"postgres": `CREATE INDEX idx_users_email ON users (email)`,
				"mysql": `ALTER TABLE users ADD COLUMN y INT, ALGORITHM=COPY`}[name]
			_, err := m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", SQL: []string{unsafe}})
			require.ErrorIs(t, err, lockcheck.ErrUnsafe)
			move := spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move")
			assert.Equal(t, "refused", spantest.Attrs(move)["cutover.outcome"])
			spantest.CheckError(t, move, "breaks rule")
			assert.Empty(t, rec.Named("cutover.expandcontract.statement"), "nothing ran")

			// Statement 1 fails on the duplicate emails, after statement 0
			// ran on its own and was recorded done.
			mv := expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", SQL: sql}
			_, err = m.Move(t.Context(), mv)
			require.Error(t, err)
			_, err = db.ExecContext(t.Context(), `UPDATE users SET email = 'b@example.com' WHERE id = 2`)
			require.NoError(t, err)
			rec.Reset()
			_, err = m.Move(t.Context(), mv)
			require.NoError(t, err)
			move = spantest.Only(t, rec.Named("cutover.expandcontract.move"), "one move")
			// On PostgreSQL the failed build left an INVALID index, dropped
			// first, for statement 1.
			var ran []string
			for _, st := range spantest.ChildrenOf(move, rec.Named("cutover.expandcontract.statement")) {
				a := spantest.Attrs(st)
				assert.Equal(t, "1", a["cutover.statement.index"])
				ran = append(ran, strings.Fields(a["cutover.statement"])[0]+" "+strings.Fields(a["cutover.statement"])[1])
			}
			want := map[string][]string{"postgres": {"DROP INDEX", "CREATE UNIQUE"}, "mysql": {"CREATE UNIQUE"}}[name]
			assert.Equal(t, want, ran)
			var skipped []string
			for _, ev := range move.Events() {
				if strings.HasPrefix(ev.Name, "statement skipped") {
					skipped = append(skipped, ev.Name)
				}
			}
			assert.Equal(t, []string{"statement skipped: recorded done"}, skipped)
		})
	}
}

func TestRetireSpans(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rec := spantest.New(t)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c, expandcontract.WithTracerProvider(rec.Provider()))
		_, err := db.ExecContext(t.Context(), `CREATE TABLE legacy (id INTEGER PRIMARY KEY)`)
		require.NoError(t, err)
		m := ectest.WalkToSwitchReads(t, s, c, "rename")
		ectest.MoveTo(t, m, expandcontract.Contract)
		require.NoError(t, m.ReportStage(t.Context(), "web-1", cutover.Rampdown))

		rec.Reset()
		drop := expandcontract.Retire{Actor: "ann", SQL: []string{`DROP TABLE legacy`}}
		require.ErrorIs(t, m.Retire(t.Context(), drop), expandcontract.ErrGuard)
		retire := spantest.Only(t, rec.Named("cutover.expandcontract.retire"), "one retire")
		assert.Equal(t, "refused", spantest.Attrs(retire)["cutover.outcome"])
		spantest.CheckError(t, retire, "web-1 (rampdown)")

		require.NoError(t, m.ReportStage(t.Context(), "web-1", cutover.Complete))
		rec.Reset()
		require.NoError(t, m.Retire(t.Context(), drop))
		retire = spantest.Only(t, rec.Named("cutover.expandcontract.retire"), "one retire")
		assert.Equal(t, scope, retire.InstrumentationScope().Name)
		assert.Equal(t, map[string]string{"cutover.migration": "rename", "cutover.phase.from": "contract",
			"cutover.phase.to": "contract", "cutover.forced": "false", "cutover.statements": "1",
			"cutover.outcome": "ok"}, spantest.Attrs(retire))
		stmt := spantest.Only(t, spantest.ChildrenOf(retire, rec.Named("cutover.expandcontract.statement")), "one statement")
		assert.Equal(t, "DROP TABLE legacy", spantest.Attrs(stmt)["cutover.statement"])
	})
}
