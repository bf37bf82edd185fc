package expandcontract_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// createUsers creates the application's users table with three rows, two
// of which share an email address when duplicates is true.
func createUsers(t *testing.T, db *testdb.DB, duplicates bool) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), `CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL)`)
	require.NoError(t, err)
	second := "b@example.com"
	if duplicates {
		second = "a@example.com"
	}
	_, err = db.ExecContext(t.Context(), db.Rebind(`INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, ?), (3, 'c@example.com')`), second)
	require.NoError(t, err)
}

// indexes returns how many indexes named name there are in the test's
// PostgreSQL database, and how many of them are valid.
func indexes(t *testing.T, db *testdb.DB, name string) (n, valid int) {
	t.Helper()
	require.NoError(t, db.QueryRowxContext(t.Context(), `SELECT COUNT(*), COUNT(*) FILTER (WHERE i.indisvalid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, name).Scan(&n, &valid))
	return n, valid
}

// eventsOf returns the events of kind in the history of the migration name.
func eventsOf(t *testing.T, s *expandcontract.Store, name, kind string) []expandcontract.Event {
	t.Helper()
	all, err := ectest.Migration(t, s, name).Events(t.Context())
	require.NoError(t, err)
	var out []expandcontract.Event
	for _, ev := range all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// phase returns the phase of the migration name.
func phase(t *testing.T, s *expandcontract.Store, name string) expandcontract.Phase {
	t.Helper()
	st, err := ectest.Migration(t, s, name).State(t.Context())
	require.NoError(t, err)
	return st.Phase
}

// The playbook's expand step, as one move: add the column, then index it
// without blocking writes. On PostgreSQL the index is built concurrently,
// which cannot happen in a transaction, so both statements run before the
// phase changes, each recorded in the history; on MariaDB they carry the
// clauses that keep the table writable.
func TestMovePlaybookExpandStep(t *testing.T) {
	for name, sql := range map[string][]string{
		"postgres": {`ALTER TABLE users ADD COLUMN email_address text`,
			`CREATE INDEX CONCURRENTLY idx_users_email_address ON users(email_address)`},
		"mysql": {`ALTER TABLE users ADD COLUMN email_address VARCHAR(255), ALGORITHM=INPLACE, LOCK=NONE`,
			`CREATE INDEX idx_users_email_address ON users (email_address) ALGORITHM=INPLACE LOCK=NONE`},
	} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			createUsers(t, db, false)
			s := ectest.Open(t, db.DB, ectest.NewClock())
			m := ectest.Ensure(t, s, "users-email")

			st, err := m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", Reason: "expand", SQL: sql})
			require.NoError(t, err)
			assert.Equal(t, expandcontract.DualWrite, st.Phase)
			_, err = db.ExecContext(t.Context(), `UPDATE users SET email_address = email`)
			require.NoError(t, err, "the new column is there")
			if name == "postgres" {
				n, valid := indexes(t, db, "idx_users_email_address")
				assert.Equal(t, [2]int{1, 1}, [2]int{n, valid}, "one index of that name, valid")
			} else {
				var n int
				require.NoError(t, db.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM information_schema.statistics
					WHERE table_schema = DATABASE() AND index_name = 'idx_users_email_address'`))
				assert.Equal(t, 1, n)
			}

			ddl := eventsOf(t, s, "users-email", "ddl")
			require.Len(t, ddl, 2, "each statement run before the phase change is recorded")
			for i, ev := range ddl {
				assert.Equal(t, "ann", ev.Actor)
				assert.Equal(t, expandcontract.Expand, ev.From)
				assert.Equal(t, expandcontract.DualWrite, ev.To)
				assert.Equal(t, int64(1), ev.Version, "the version the move applied to")
				assert.Regexp(t, `^statement `+string(rune('0'+i))+` done in [0-9.]+[µm]?s: `, ev.Detail)
				assert.True(t, strings.HasSuffix(ev.Detail, ": "+sql[i]), ev.Detail)
			}
			moves := eventsOf(t, s, "users-email", "move")
			require.Len(t, moves, 1)
			assert.Greater(t, moves[0].ID, ddl[1].ID, "the move is recorded after its statements")
		})
	}
}

// A concurrent build of a unique index over duplicates fails and leaves an
// INVALID index behind. The move fails, naming the statement, and the phase
// stays; once the duplicates are gone the same move drops the leftover and
// builds the index again.
func TestMoveRebuildsAnInvalidIndex(t *testing.T) {
	db := testdb.Postgres(t)
	createUsers(t, db, true)
	s := ectest.Open(t, db.DB, ectest.NewClock())
	m := ectest.Ensure(t, s, "users-email")
	mv := expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann",
		SQL: []string{`CREATE UNIQUE INDEX CONCURRENTLY idx_users_email ON users (email)`}}

	_, err := m.Move(t.Context(), mv)
	require.Error(t, err)
	assert.ErrorContains(t, err, `expandcontract: "users-email", statement 0 (CREATE UNIQUE INDEX CONCURRENTLY idx_users_email ON users (email)) for dualwrite: `)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the driver's error is wrapped")
	assert.Equal(t, "23505", pgErr.Code)
	assert.Equal(t, expandcontract.Expand, phase(t, s, "users-email"))
	n, valid := indexes(t, db, "idx_users_email")
	require.Equal(t, [2]int{1, 0}, [2]int{n, valid}, "the failed build left an INVALID index")
	assert.Empty(t, eventsOf(t, s, "users-email", "ddl"), "nothing is recorded done")

	_, err = db.ExecContext(t.Context(), `UPDATE users SET email = 'b@example.com' WHERE id = 2`)
	require.NoError(t, err)
	st, err := m.Move(t.Context(), mv)
	require.NoError(t, err)
	assert.Equal(t, expandcontract.DualWrite, st.Phase)
	n, valid = indexes(t, db, "idx_users_email")
	assert.Equal(t, [2]int{1, 1}, [2]int{n, valid}, "one index of that name, valid")
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, email) VALUES (4, 'a@example.com')`)
	assert.True(t, db.Dialect.IsUniqueViolation(err), "the index is used: %v", err)
}

// A move whose statement 1 fails after statement 0 ran before the phase
// change is run again unchanged: statement 0, recorded done, is skipped
// (running ADD COLUMN twice would fail), and the move completes.
func TestMoveRetrySkipsStatementsDone(t *testing.T) {
	for name, sql := range map[string][]string{
		"postgres": {`ALTER TABLE users ADD COLUMN nickname text`,
			`CREATE UNIQUE INDEX CONCURRENTLY idx_users_email ON users (email)`},
		"mysql": {`ALTER TABLE users ADD COLUMN nickname VARCHAR(40), ALGORITHM=INPLACE, LOCK=NONE`,
			`CREATE UNIQUE INDEX idx_users_email ON users (email) ALGORITHM=INPLACE LOCK=NONE`},
	} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			createUsers(t, db, true)
			s := ectest.Open(t, db.DB, ectest.NewClock())
			m := ectest.Ensure(t, s, "users-email")
			mv := expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", SQL: sql}

			_, err := m.Move(t.Context(), mv)
			require.Error(t, err)
			assert.ErrorContains(t, err, `"users-email", statement 1 (CREATE UNIQUE INDEX`)
			assert.True(t, db.Dialect.IsUniqueViolation(err), "the driver's error is wrapped: %v", err)
			assert.Equal(t, expandcontract.Expand, phase(t, s, "users-email"))
			ddl := eventsOf(t, s, "users-email", "ddl")
			require.Len(t, ddl, 1, "statement 0 is recorded done")
			assert.True(t, strings.HasPrefix(ddl[0].Detail, "statement 0 done in "), ddl[0].Detail)

			_, err = db.ExecContext(t.Context(), `UPDATE users SET email = 'b@example.com' WHERE id = 2`)
			require.NoError(t, err)
			st, err := m.Move(t.Context(), mv)
			require.NoError(t, err, "statement 0 is not run again")
			assert.Equal(t, expandcontract.DualWrite, st.Phase)
			ddl = eventsOf(t, s, "users-email", "ddl")
			require.Len(t, ddl, 2)
			assert.True(t, strings.HasPrefix(ddl[1].Detail, "statement 1 done in "), ddl[1].Detail)
			_, err = db.ExecContext(t.Context(), `UPDATE users SET nickname = 'a'`)
			require.NoError(t, err)

			// The records belong to that move: moving back and forth again runs
			// the statements again, and ADD COLUMN fails on the column there.
			ectest.MoveTo(t, m, expandcontract.Expand)
			_, err = m.Move(t.Context(), mv)
			assert.Error(t, err, "a later move to dualwrite does not reuse the records of an earlier one")
		})
	}
}

// A concurrent index build waits for every older transaction holding a
// snapshot. It waits no longer than the lock timeout (lock_timeout applies
// to that wait on PostgreSQL 15), is tried again, and gives up after the
// store's DDL attempts, leaving the phase where it was; and while it
// waits, the application's reads and writes of the table go on.
func TestMoveConcurrentIndexBuildWaitsOnlyForItsLockTimeout(t *testing.T) {
	db := testdb.Postgres(t)
	createUsers(t, db, false)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE other (id INTEGER PRIMARY KEY)`)
	require.NoError(t, err)
	appQueries := func(id int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, `INSERT INTO users (id, email) VALUES ($1, 'x@example.com')`, id)
		require.NoError(t, err, "the application's insert, bounded by 10 s, is not stuck behind the index build")
		var n int
		require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users WHERE email = 'x@example.com'`),
			"the application's read, bounded by 10 s, is not stuck behind the index build")
	}
	// long holds a snapshot, taken reading another table: the build waits
	// for it all the same.
	long := func() func() error {
		t.Helper()
		tx, err := db.BeginTxx(t.Context(), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = tx.Rollback() })
		_, err = tx.ExecContext(t.Context(), `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM other`))
		return tx.Rollback
	}

	t.Run("times out and retries", func(t *testing.T) {
		s := ectest.Open(t, db.DB, ectest.NewClock(),
			expandcontract.WithLockTimeout(50*time.Millisecond), expandcontract.WithDDLAttempts(3))
		m := ectest.Ensure(t, s, "by-email")
		mv := expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann",
			SQL: []string{`CREATE INDEX CONCURRENTLY idx_users_email ON users (email)`}}
		end := long()
		// Unbounded, the build would wait for the long transaction forever:
		// this bound says the lock timeout did not end the wait.
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		_, err := m.Move(ctx, mv)
		require.NoError(t, ctx.Err(), "the build's wait for the long transaction was not ended by the lock timeout")
		require.Error(t, err)
		assert.ErrorContains(t, err, "gave up after 3 lock timeouts")
		assert.True(t, db.Dialect.IsLockTimeout(err), "%v", err)
		assert.Equal(t, expandcontract.Expand, phase(t, s, "by-email"))
		appQueries(10)

		require.NoError(t, end())
		st, err := m.Move(t.Context(), mv)
		require.NoError(t, err, "once the long transaction ends the move goes through")
		assert.Equal(t, expandcontract.DualWrite, st.Phase)
		n, valid := indexes(t, db, "idx_users_email")
		assert.Equal(t, [2]int{1, 1}, [2]int{n, valid}, "the leftover of the timed-out builds was dropped; one valid index")
	})

	t.Run("does not block the application while it waits", func(t *testing.T) {
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithLockTimeout(10*time.Minute))
		m := ectest.Ensure(t, s, "by-id-email")
		end := long()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		moved := make(chan error, 1)
		go func() {
			_, err := m.Move(ctx, expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann",
				SQL: []string{`CREATE INDEX CONCURRENTLY idx_users_id_email ON users (id, email)`}})
			moved <- err
		}()
		t.Cleanup(func() { _ = end(); cancel(); <-moved })

		// Wait, bounded by ctx, until the build waits on the long transaction.
		for {
			var waiting bool
			err := db.GetContext(ctx, &waiting, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
				AND query LIKE 'CREATE INDEX CONCURRENTLY idx_users_id_email%' AND wait_event_type = 'Lock')`)
			require.NoError(t, err, "waiting up to 60 s for the index build to wait on the long transaction")
			if waiting {
				break
			}
			select {
			case err := <-moved:
				t.Fatalf("the move ended before its build waited on the long transaction: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		appQueries(20)

		require.NoError(t, end())
		select {
		case err := <-moved:
			moved <- err
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("the move did not end within 60 s of the long transaction's end")
		}
		n, valid := indexes(t, db, "idx_users_id_email")
		assert.Equal(t, [2]int{1, 1}, [2]int{n, valid})
		var lockTimeout string
		require.NoError(t, db.GetContext(t.Context(), &lockTimeout, `SELECT current_setting('lock_timeout')`))
		assert.Equal(t, "0", lockTimeout, "pooled connections do not keep the session's lock timeout")
	})
}

// An override lets a statement that breaks a lock-safety rule through, and
// is recorded in the history, in the transaction that changes the phase.
// Without it the move is refused, recorded as a refusal, and runs nothing.
//
// The rule "create-index-concurrently" is lockcheck's rule for a CREATE
// INDEX without CONCURRENTLY on a table that exists. A retire refuses and
// records the same way.
func TestMoveRecordsOverrides(t *testing.T) {
	db := testdb.Postgres(t)
	createUsers(t, db, false)
	metrics := metrictest.New(t)
	c := ectest.NewClock()
	s := ectest.Open(t, db.DB, c, expandcontract.WithMeterProvider(metrics.Provider()))
	m := ectest.Ensure(t, s, "users-email")
	mv := expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", Reason: "expand",
		SQL: []string{`ALTER TABLE users ADD COLUMN email_address text`, `CREATE INDEX idx_users_email ON users (email)`}}

	_, err := m.Move(t.Context(), mv)
	require.ErrorIs(t, err, lockcheck.ErrUnsafe)
	var ue *lockcheck.UnsafeError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 1, ue.Statement)
	assert.Equal(t, lockcheck.Rule("create-index-concurrently"), ue.Rule)
	assert.ErrorContains(t, err, `expandcontract: "users-email" from expand to dualwrite: lockcheck: statement 1 (CREATE INDEX idx_users_email ON users (email)) breaks rule create-index-concurrently`)
	assert.Equal(t, expandcontract.Expand, phase(t, s, "users-email"))
	refusals := eventsOf(t, s, "users-email", "refuse")
	require.Len(t, refusals, 1)
	assert.Equal(t, err.Error(), refusals[0].Detail)
	n, _ := indexes(t, db, "idx_users_email")
	assert.Zero(t, n, "nothing ran")
	assert.Equal(t, int64(1), metrics.Sum("cutover.expandcontract.moves", "cutover.reason", "refused"))

	mv.Overrides = []lockcheck.Override{{Statement: 1, Rule: "create-index-concurrently", Why: "users holds three rows"}}
	st, err := m.Move(t.Context(), mv)
	require.NoError(t, err)
	assert.Equal(t, expandcontract.DualWrite, st.Phase)
	overrides := eventsOf(t, s, "users-email", "override")
	require.Len(t, overrides, 1)
	assert.Equal(t, "ann", overrides[0].Actor)
	assert.Equal(t, "expand", overrides[0].Reason)
	assert.Equal(t, st.Version, overrides[0].Version, "recorded with the phase change")
	assert.Equal(t, "rule create-index-concurrently, statement 1 (CREATE INDEX idx_users_email ON users (email)): users holds three rows", overrides[0].Detail)

	// The same for a retire.
	r := ectest.WalkToSwitchReads(t, s, c, "users-nick")
	ectest.MoveTo(t, r, expandcontract.Contract)
	retire := expandcontract.Retire{Actor: "bob", SQL: []string{`CREATE INDEX idx_users_id_email ON users (id, email)`}}
	err = r.Retire(t.Context(), retire)
	require.ErrorIs(t, err, lockcheck.ErrUnsafe)
	assert.ErrorContains(t, err, `expandcontract: "users-nick", retire: lockcheck: statement 0 (CREATE INDEX idx_users_id_email ON users (id, email)) breaks rule create-index-concurrently`)
	refusals = eventsOf(t, s, "users-nick", "refuse")
	require.Len(t, refusals, 1)
	assert.Equal(t, "retire: "+err.Error(), refusals[0].Detail)
	retire.Overrides = []lockcheck.Override{{Statement: 0, Rule: "create-index-concurrently", Why: "still three rows"}}
	require.NoError(t, r.Retire(t.Context(), retire))
	overrides = eventsOf(t, s, "users-nick", "override")
	require.Len(t, overrides, 1)
	assert.Equal(t, "bob", overrides[0].Actor)
	assert.Equal(t, "rule create-index-concurrently, statement 0 (CREATE INDEX idx_users_id_email ON users (id, email)): still three rows", overrides[0].Detail)
}

// Retire runs a statement that cannot run in a transaction, DROP INDEX
// CONCURRENTLY, on its own before the rest, and records it done.
func TestRetireRunsStatementsOutsideTheTransaction(t *testing.T) {
	db := testdb.Postgres(t)
	c := ectest.NewClock()
	s := ectest.Open(t, db.DB, c)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone VARCHAR(40), phone_number VARCHAR(40))`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `CREATE INDEX idx_customers_phone ON customers (customer_phone)`)
	require.NoError(t, err)
	m := ectest.WalkToSwitchReads(t, s, c, "rename")
	ectest.MoveTo(t, m, expandcontract.Contract)

	drop := []string{`DROP INDEX CONCURRENTLY idx_customers_phone`, `ALTER TABLE customers DROP COLUMN customer_phone`}
	require.NoError(t, m.Retire(t.Context(), expandcontract.Retire{Actor: "alice", Reason: "rename done", SQL: drop}))
	n, _ := indexes(t, db, "idx_customers_phone")
	assert.Zero(t, n, "the index is gone")
	_, err = db.ExecContext(t.Context(), `SELECT customer_phone FROM customers`)
	require.Error(t, err, "the old column is gone")

	events, err := m.Events(t.Context())
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(events), 2)
	ddl, retire := events[len(events)-2], events[len(events)-1]
	assert.Equal(t, "ddl", ddl.Kind)
	assert.True(t, strings.HasPrefix(ddl.Detail, "statement 0 done in "), ddl.Detail)
	assert.True(t, strings.HasSuffix(ddl.Detail, ": "+drop[0]), ddl.Detail)
	assert.Equal(t, [2]expandcontract.Phase{expandcontract.Contract, expandcontract.Contract}, [2]expandcontract.Phase{ddl.From, ddl.To})
	assert.Equal(t, "retire", retire.Kind)
	assert.Len(t, eventsOf(t, s, "rename", "ddl"), 1, "the statement in the retire's transaction has no ddl event")
}

// A concurrent build of an index that is there and valid, built by hand or
// by a move whose record was lost, counts as done: the move records it so
// and goes on, where running the statement would fail. The index is looked
// up in the schema the statement names, or else through the search_path.
func TestMoveCountsAValidIndexAsBuilt(t *testing.T) {
	db := testdb.Postgres(t)
	createUsers(t, db, false)
	for _, q := range []string{`CREATE SCHEMA app`, `CREATE TABLE app.users (id INTEGER PRIMARY KEY, email text)`,
		`CREATE INDEX idx_users_email ON app.users (email)`} {
		_, err := db.ExecContext(t.Context(), q)
		require.NoError(t, err)
	}
	s := ectest.Open(t, db.DB, ectest.NewClock())
	m := ectest.Ensure(t, s, "users-email")

	sql := []string{`CREATE INDEX CONCURRENTLY idx_users_email ON app.users (email)`,
		`CREATE INDEX CONCURRENTLY idx_users_email ON users (email)`}
	st, err := m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", SQL: sql})
	require.NoError(t, err)
	assert.Equal(t, expandcontract.DualWrite, st.Phase)
	ddl := eventsOf(t, s, "users-email", "ddl")
	require.Len(t, ddl, 2)
	assert.Equal(t, "statement 0 found done: "+sql[0], ddl[0].Detail, "app.idx_users_email is found, not built")
	assert.True(t, strings.HasPrefix(ddl[1].Detail, "statement 1 done in "), "public.idx_users_email is built: %s", ddl[1].Detail)
	n, valid := indexes(t, db, "idx_users_email")
	assert.Equal(t, [2]int{2, 2}, [2]int{n, valid}, "one in each schema, valid")
}
