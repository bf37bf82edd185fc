package lockcheck_test

import (
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// unsafeErrors returns the [*lockcheck.UnsafeError]s that err joins.
func unsafeErrors(err error) []*lockcheck.UnsafeError {
	var out []*lockcheck.UnsafeError
	var walk func(error)
	walk = func(err error) {
		var u *lockcheck.UnsafeError
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		default:
			if errors.As(err, &u) {
				out = append(out, u)
			}
		}
	}
	walk(err)
	return out
}

// refused checks that Check refuses stmts for breaking rule in statement
// at, and returns that error.
func refused(t *testing.T, db sqlx.QueryerContext, dialect string, stmts []string, at int, rule lockcheck.Rule) *lockcheck.UnsafeError {
	t.Helper()
	got, err := lockcheck.Check(t.Context(), db, dialect, stmts)
	require.ErrorIs(t, err, lockcheck.ErrUnsafe, "%q", stmts)
	assert.Nil(t, got)
	for _, u := range unsafeErrors(err) {
		if u.Rule == rule && u.Statement == at {
			assert.Equal(t, stmts[at], u.SQL)
			assert.NotEmpty(t, u.Reason)
			assert.NotEmpty(t, u.Instead)
			return u
		}
	}
	t.Fatalf("%q: no error for rule %s at statement %d in %v", stmts, rule, at, err)
	return nil
}

// passes checks that Check lets stmts through and runs them on db, one by
// one outside any transaction.
func passes(t *testing.T, db *testdb.DB, stmts ...string) []lockcheck.Statement {
	t.Helper()
	got, err := lockcheck.Check(t.Context(), db, db.Name, stmts)
	require.NoError(t, err, "%q", stmts)
	require.Len(t, got, len(stmts))
	for _, st := range got {
		_, err := db.ExecContext(t.Context(), st.SQL)
		require.NoError(t, err, st.SQL)
	}
	return got
}

// filenode returns the file that holds a PostgreSQL table's rows: a
// rewrite gives the table a new one.
func filenode(t *testing.T, db *testdb.DB, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.GetContext(t.Context(), &n, "SELECT pg_relation_filenode($1::regclass)", table))
	return n
}

// rewrites runs sql on db in a transaction that it rolls back, and reports
// whether sql gave table a new file: whether it rewrote the table.
func rewrites(t *testing.T, db *testdb.DB, table, sql string) bool {
	t.Helper()
	tx, err := db.BeginTxx(t.Context(), nil)
	require.NoError(t, err)
	defer tx.Rollback()
	var before, after int64
	q := "SELECT pg_relation_filenode($1::regclass)"
	require.NoError(t, tx.GetContext(t.Context(), &before, q, table))
	_, err = tx.ExecContext(t.Context(), sql)
	require.NoError(t, err, sql)
	require.NoError(t, tx.GetContext(t.Context(), &after, q, table))
	return before != after
}

// usersTable makes a PostgreSQL table users with a few rows.
func usersTable(t *testing.T) *testdb.DB {
	t.Helper()
	db := testdb.Postgres(t)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE users (id bigint PRIMARY KEY, email text, team bigint);
		INSERT INTO users SELECT g, 'u' || g || '@example.com', g % 3 FROM generate_series(1, 100) g`)
	require.NoError(t, err)
	return db
}

func TestRuleCreateIndexConcurrently(t *testing.T) {
	db := usersTable(t)
	u := refused(t, db, lockcheck.Postgres, []string{`CREATE INDEX idx_users_email ON users (email)`}, 0, lockcheck.RuleCreateIndexConcurrently)
	assert.Contains(t, u.Reason, "SHARE lock on users")
	assert.Contains(t, u.Instead, "CREATE INDEX CONCURRENTLY")

	got := passes(t, db, `CREATE INDEX CONCURRENTLY idx_users_email ON users (email)`)
	assert.True(t, got[0].Outside)

	// A table created earlier in the same call is seen by no one else.
	passes(t, db, `CREATE TABLE teams (id bigint, name text)`, `CREATE INDEX idx_teams_name ON teams (name)`)
	// Only if it is created: IF NOT EXISTS may find an existing table.
	refused(t, db, lockcheck.Postgres, []string{`CREATE TABLE IF NOT EXISTS teams (id bigint)`, `CREATE INDEX ON teams (id)`}, 1, lockcheck.RuleCreateIndexConcurrently)
	// And the names must match as written: lockcheck does not resolve
	// search_path.
	refused(t, nil, lockcheck.Postgres, []string{`CREATE TABLE t (id int)`, `CREATE INDEX ON public.t (id)`}, 1, lockcheck.RuleCreateIndexConcurrently)

	// DROP INDEX without CONCURRENTLY is allowed (docs/lock-safety.md).
	passes(t, db, `DROP INDEX idx_users_email`)
}

func TestRuleReindexConcurrently(t *testing.T) {
	db := usersTable(t)
	passes(t, db, `CREATE INDEX CONCURRENTLY idx_users_team ON users (team)`)
	for _, sql := range []string{`REINDEX INDEX idx_users_team`, `REINDEX TABLE users`} {
		refused(t, nil, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleReindexConcurrently)
	}
	got := passes(t, db, `REINDEX INDEX CONCURRENTLY idx_users_team`, `REINDEX (CONCURRENTLY) TABLE users`)
	assert.True(t, got[0].Outside)
	assert.True(t, got[1].Outside)
}

func TestRuleAddColumnRewrite(t *testing.T) {
	db := usersTable(t)
	_, err := db.ExecContext(t.Context(), `CREATE SEQUENCE s`)
	require.NoError(t, err)
	for _, sql := range []string{
		`ALTER TABLE users ADD COLUMN created timestamptz DEFAULT clock_timestamp()`,
		`ALTER TABLE users ADD COLUMN r float8 DEFAULT random()`,
		`ALTER TABLE users ADD COLUMN uid uuid DEFAULT gen_random_uuid()`,
		`ALTER TABLE users ADD COLUMN n bigint DEFAULT nextval('s')`,
		`ALTER TABLE users ADD COLUMN n bigint DEFAULT 1 + nextval('s')`,
		`ALTER TABLE users ADD COLUMN n bigserial`,
		`ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY`,
		`ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS (id * 2) STORED`,
	} {
		u := refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleAddColumnRewrite)
		assert.Contains(t, u.Instead, "without a default", sql)
		assert.True(t, rewrites(t, db, "users", sql), "refused but does not rewrite: %s", sql)
	}
	// Defaults lockcheck cannot judge are refused too.
	for _, sql := range []string{
		`ALTER TABLE users ADD COLUMN n bigint DEFAULT no_such_function()`,
		`ALTER TABLE users ADD COLUMN n bigint DEFAULT (SELECT 1)`,
		`ALTER TABLE users ADD COLUMN n bigint DEFAULT CASE WHEN true THEN 1 END`,
	} {
		refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleAddColumnRewrite)
	}
	// Without a catalog, only a few stable functions are known.
	refused(t, nil, lockcheck.Postgres, []string{`ALTER TABLE users ADD COLUMN e text DEFAULT lower('X')`}, 0, lockcheck.RuleAddColumnRewrite)
	refused(t, nil, lockcheck.Postgres, []string{`ALTER TABLE users ADD COLUMN e text DEFAULT 'a' || 'b'`}, 0, lockcheck.RuleAddColumnRewrite)

	// Non-volatile defaults are stored once, without a rewrite: the table
	// keeps its file.
	before := filenode(t, db, "users")
	passes(t, db,
		`ALTER TABLE users ADD COLUMN a timestamptz DEFAULT now()`,
		`ALTER TABLE users ADD COLUMN b timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP`,
		`ALTER TABLE users ADD COLUMN c bigint DEFAULT -1`,
		`ALTER TABLE users ADD COLUMN d text DEFAULT 'x'::text`,
		`ALTER TABLE users ADD COLUMN e text DEFAULT lower('X') || 'y'`,
		`ALTER TABLE users ADD COLUMN f bigint[] DEFAULT ARRAY[1, 2]`,
		`ALTER TABLE users ADD COLUMN g bigint`)
	for _, sql := range []string{`ALTER TABLE users ADD COLUMN h timestamptz DEFAULT pg_catalog.now()`, `ALTER TABLE users ADD COLUMN h timestamptz DEFAULT statement_timestamp()`} {
		_, err := lockcheck.Check(t.Context(), nil, lockcheck.Postgres, []string{sql})
		require.NoError(t, err, sql)
	}
	assert.Equal(t, before, filenode(t, db, "users"), "a non-volatile default rewrote the table")

	// The alternative the error names: no default, then the default for
	// new rows, then a backfill.
	passes(t, db,
		`ALTER TABLE users ADD COLUMN created timestamptz`,
		`ALTER TABLE users ALTER COLUMN created SET DEFAULT clock_timestamp()`,
		`UPDATE users SET created = clock_timestamp() WHERE id BETWEEN 1 AND 50`)
	assert.Equal(t, before, filenode(t, db, "users"), "the alternative rewrote the table")

	// What the rule refuses does rewrite it.
	got, err := lockcheck.Check(t.Context(), db, lockcheck.Postgres, []string{`ALTER TABLE users ADD COLUMN r float8 DEFAULT random()`},
		lockcheck.Override{Statement: 0, Rule: lockcheck.RuleAddColumnRewrite, Why: "a test table of 100 rows"})
	require.NoError(t, err)
	require.Len(t, got[0].Overridden, 1)
	_, err = db.ExecContext(t.Context(), got[0].SQL)
	require.NoError(t, err)
	assert.NotEqual(t, before, filenode(t, db, "users"), "a volatile default did not rewrite the table")
}

func TestRuleAlterColumnTypeRewrite(t *testing.T) {
	db := testdb.Postgres(t)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE m (
			v1 varchar(10), v2 varchar(10), v3 varchar(10), v4 varchar,
			n1 numeric(10,2), n2 numeric(10,2), t1 text, c1 cidr, i int, ts timestamp, v5 varchar(10));
		CREATE INDEX ON m (v1); CREATE INDEX ON m (n1);
		INSERT INTO m VALUES ('a', 'b', 'c', 'd', 1.5, 2.5, 'e', '10.0.0.0/8', 1, now(), 'f')`)
	require.NoError(t, err)
	for _, sql := range []string{
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(5)`,
		`ALTER TABLE m ALTER COLUMN n1 TYPE numeric(12,3)`,
		`ALTER TABLE m ALTER COLUMN n1 TYPE numeric(9,2)`,
		`ALTER TABLE m ALTER COLUMN i TYPE bigint`,
		`ALTER TABLE m ALTER COLUMN ts TYPE timestamptz`,
		`ALTER TABLE m ALTER COLUMN t1 TYPE varchar(10)`,
		`ALTER TABLE m ALTER COLUMN i TYPE text`,
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(20) USING v1::varchar(20)`,
		`ALTER TABLE m ALTER COLUMN v1 TYPE text COLLATE "C"`,
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(20)[]`,
		`ALTER TABLE m ALTER COLUMN missing TYPE text`,
	} {
		u := refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleAlterColumnTypeRewrite)
		assert.Contains(t, u.Instead, "add a column of the new type", sql)
	}
	// What is refused does rewrite, but for timestamp to timestamptz,
	// which PostgreSQL 12 and later change in place when the session's
	// time zone is UTC: lockcheck refuses it anyway, as it depends on the
	// session.
	for _, sql := range []string{
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(5)`,
		`ALTER TABLE m ALTER COLUMN n1 TYPE numeric(12,3)`,
		`ALTER TABLE m ALTER COLUMN i TYPE bigint`,
		`ALTER TABLE m ALTER COLUMN t1 TYPE varchar(10)`,
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(20) USING v1 || ''`,
	} {
		assert.True(t, rewrites(t, db, "m", sql), "refused but does not rewrite: %s", sql)
	}
	// Without the catalog lockcheck cannot know the current type.
	refused(t, nil, lockcheck.Postgres, []string{`ALTER TABLE m ALTER COLUMN v1 TYPE text`}, 0, lockcheck.RuleAlterColumnTypeRewrite)

	before := filenode(t, db, "m")
	passes(t, db,
		`ALTER TABLE m ALTER COLUMN v1 TYPE varchar(20)`,
		`ALTER TABLE m ALTER COLUMN v2 TYPE text`,
		`ALTER TABLE m ALTER COLUMN v3 TYPE character varying`,
		`ALTER TABLE m ALTER COLUMN v4 TYPE text`,
		`ALTER TABLE m ALTER COLUMN n1 TYPE numeric(12,2)`,
		`ALTER TABLE m ALTER COLUMN n2 TYPE decimal`,
		`ALTER TABLE m ALTER COLUMN t1 TYPE varchar`,
		`ALTER TABLE m ALTER COLUMN c1 TYPE inet`,
		`ALTER TABLE m ALTER COLUMN v5 TYPE varchar(10)`)
	assert.Equal(t, before, filenode(t, db, "m"), "an allowed type change rewrote the table")

	// A change in the same call as the table's creation is fine.
	passes(t, db, `CREATE TABLE fresh (i int)`, `ALTER TABLE fresh ALTER COLUMN i TYPE bigint`)
}

func TestRuleSetNotNullCheck(t *testing.T) {
	db := usersTable(t)
	refused(t, db, lockcheck.Postgres, []string{`ALTER TABLE users ALTER COLUMN email SET NOT NULL`}, 0, lockcheck.RuleSetNotNullCheck)
	u := refused(t, nil, lockcheck.Postgres, []string{`ALTER TABLE users ALTER COLUMN email SET NOT NULL`}, 0, lockcheck.RuleSetNotNullCheck)
	assert.Contains(t, u.Reason, "no database")
	assert.Contains(t, u.Instead, "CHECK (email IS NOT NULL) NOT VALID")

	// A constraint added NOT VALID and validated by earlier statements of
	// the same call counts, without a catalog to read: the VALIDATE runs
	// on its own, and commits before the SET NOT NULL runs.
	got, err := lockcheck.Check(t.Context(), nil, lockcheck.Postgres, []string{
		`ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
		`ALTER TABLE users VALIDATE CONSTRAINT email_nn`,
		`ALTER TABLE users ALTER COLUMN email SET NOT NULL`,
		`ALTER TABLE users DROP CONSTRAINT email_nn`,
	})
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true, false, false},
		[]bool{got[0].Outside, got[1].Outside, got[2].Outside, got[3].Outside})
	// It does not if the statement that validates it does something
	// else too (it is then refused itself), if it is validated before it
	// is added, if it is dropped before the SET NOT NULL, if it is on
	// another table or column, or if it is a CHECK of something else.
	for name, stmts := range map[string][]string{
		"validated beside another command": {
			`ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
			`ALTER TABLE users VALIDATE CONSTRAINT email_nn, ALTER COLUMN team SET DEFAULT 0`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
		"validated before it is added": {
			`ALTER TABLE users VALIDATE CONSTRAINT email_nn`,
			`ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
		"dropped first": {
			`ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
			`ALTER TABLE users VALIDATE CONSTRAINT email_nn`,
			`ALTER TABLE users DROP CONSTRAINT email_nn`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
		"another table": {
			`ALTER TABLE teams ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
			`ALTER TABLE teams VALIDATE CONSTRAINT email_nn`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
		"another column": {
			`ALTER TABLE users ADD CONSTRAINT team_nn CHECK (team IS NOT NULL) NOT VALID`,
			`ALTER TABLE users VALIDATE CONSTRAINT team_nn`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
		"another check": {
			`ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NULL OR email <> '') NOT VALID`,
			`ALTER TABLE users VALIDATE CONSTRAINT email_nn`,
			`ALTER TABLE users ALTER COLUMN email SET NOT NULL`},
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, nil, lockcheck.Postgres, stmts, len(stmts)-1, lockcheck.RuleSetNotNullCheck)
		})
	}
	// A term of an AND counts here too.
	_, err = lockcheck.Check(t.Context(), nil, lockcheck.Postgres, []string{
		`ALTER TABLE users ADD CONSTRAINT team_nn CHECK (team >= 0 AND team IS NOT NULL) NOT VALID`,
		`ALTER TABLE users VALIDATE CONSTRAINT team_nn`,
		`ALTER TABLE users ALTER COLUMN team SET NOT NULL`,
	})
	require.NoError(t, err)

	// Nor does one in the catalog that is not validated yet, or one on
	// another column.
	passes(t, db, `ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID`,
		`ALTER TABLE users ADD CONSTRAINT team_nn CHECK (team IS NOT NULL) NOT VALID`)
	passes(t, db, `ALTER TABLE users VALIDATE CONSTRAINT team_nn`)
	refused(t, db, lockcheck.Postgres, []string{`ALTER TABLE users ALTER COLUMN email SET NOT NULL`}, 0, lockcheck.RuleSetNotNullCheck)

	// Validated, in its own move: SET NOT NULL passes, then the constraint
	// goes.
	passes(t, db, `ALTER TABLE users VALIDATE CONSTRAINT email_nn`)
	passes(t, db, `ALTER TABLE users ALTER COLUMN email SET NOT NULL`, `ALTER TABLE users DROP CONSTRAINT email_nn`)
	var notNull bool
	require.NoError(t, db.GetContext(t.Context(), &notNull,
		`SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'`))
	assert.True(t, notNull)

	// A term of an AND counts too.
	passes(t, db, `ALTER TABLE users ADD CONSTRAINT team_pos CHECK (team >= 0 AND team IS NOT NULL) NOT VALID`)
	passes(t, db, `ALTER TABLE users VALIDATE CONSTRAINT team_pos`)
	passes(t, db, `ALTER TABLE users ALTER COLUMN team SET NOT NULL`)
}

func TestRuleConstraintNotValid(t *testing.T) {
	db := usersTable(t)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE teams (id bigint PRIMARY KEY); INSERT INTO teams VALUES (0), (1), (2)`)
	require.NoError(t, err)
	for _, sql := range []string{
		`ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team) REFERENCES teams (id)`,
		`ALTER TABLE users ADD CONSTRAINT users_id_pos CHECK (id > 0)`,
		`ALTER TABLE users ADD COLUMN team2 bigint REFERENCES teams (id)`,
		`ALTER TABLE users ADD COLUMN score int CHECK (score > 0)`,
	} {
		u := refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleConstraintNotValid)
		assert.Contains(t, u.Instead, "NOT VALID", sql)
	}
	passes(t, db,
		`ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team) REFERENCES teams (id) NOT VALID`,
		`ALTER TABLE users ADD CONSTRAINT users_id_pos CHECK (id > 0) NOT VALID`)
	// A VALIDATE of its own runs on its own, in a transaction of its own,
	// so it may follow the statement that added the constraint: that one's
	// lock is gone by the time it scans.
	got, err := lockcheck.Check(t.Context(), db, lockcheck.Postgres, []string{
		`ALTER TABLE users ADD CONSTRAINT users_team_fk2 FOREIGN KEY (team) REFERENCES teams (id) NOT VALID`,
		`ALTER TABLE users VALIDATE CONSTRAINT users_team_fk2`,
		`ALTER TABLE users VALIDATE CONSTRAINT users_team_fk2, VALIDATE CONSTRAINT users_id_pos`,
	})
	require.NoError(t, err)
	assert.Equal(t, []bool{false, true, true}, []bool{got[0].Outside, got[1].Outside, got[2].Outside})
	// Beside another command of the same ALTER TABLE it would scan under
	// that command's lock.
	u := refused(t, db, lockcheck.Postgres, []string{`ALTER TABLE users ADD COLUMN x int, VALIDATE CONSTRAINT users_id_pos`}, 0, lockcheck.RuleConstraintNotValid)
	assert.Contains(t, u.Reason, "another command of the same ALTER TABLE")
	assert.Contains(t, u.Instead, "statement of its own")
	passes(t, db, `ALTER TABLE users VALIDATE CONSTRAINT users_team_fk`, `ALTER TABLE users VALIDATE CONSTRAINT users_id_pos`)
	// On a table of the same call, nothing is there to scan.
	passes(t, db, `CREATE TABLE members (team bigint)`, `ALTER TABLE members ADD FOREIGN KEY (team) REFERENCES teams (id)`)
}

func TestRuleConstraintUsingIndex(t *testing.T) {
	db := usersTable(t)
	for _, sql := range []string{
		`ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)`,
		`ALTER TABLE users ADD UNIQUE (email)`,
		`ALTER TABLE users ADD COLUMN handle text UNIQUE`,
		`ALTER TABLE users ADD CONSTRAINT no_overlap EXCLUDE USING btree (email WITH =)`,
	} {
		refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleConstraintUsingIndex)
	}
	u := refused(t, nil, lockcheck.Postgres, []string{`ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)`}, 0, lockcheck.RuleConstraintUsingIndex)
	assert.Contains(t, u.Instead, "CREATE UNIQUE INDEX CONCURRENTLY")
	passes(t, db, `CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email)`)
	passes(t, db, `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key`)

	_, err := db.ExecContext(t.Context(), `CREATE TABLE audit (id bigint NOT NULL); INSERT INTO audit VALUES (1)`)
	require.NoError(t, err)
	refused(t, db, lockcheck.Postgres, []string{`ALTER TABLE audit ADD PRIMARY KEY (id)`}, 0, lockcheck.RuleConstraintUsingIndex)
	passes(t, db, `CREATE UNIQUE INDEX CONCURRENTLY audit_pkey ON audit (id)`)
	passes(t, db, `ALTER TABLE audit ADD CONSTRAINT audit_pkey PRIMARY KEY USING INDEX audit_pkey`)
}

func TestRuleRewriteTable(t *testing.T) {
	db := usersTable(t)
	for _, sql := range []string{
		`VACUUM FULL users`,
		`VACUUM (FULL, ANALYZE) users`,
		`CLUSTER users USING users_pkey`,
		`ALTER TABLE users SET TABLESPACE pg_default`,
		`ALTER INDEX users_pkey SET TABLESPACE pg_default`,
		`ALTER TABLE users SET UNLOGGED`,
		`ALTER TABLE users SET LOGGED`,
		`ALTER TABLE users SET ACCESS METHOD heap`,
	} {
		refused(t, db, lockcheck.Postgres, []string{sql}, 0, lockcheck.RuleRewriteTable)
	}
	got := passes(t, db, `VACUUM users`, `VACUUM (FULL false, ANALYZE) users`)
	assert.True(t, got[0].Outside)
}

// TestPostgresAllowed runs the statements the rules let through on
// purpose (docs/lock-safety.md).
func TestPostgresAllowed(t *testing.T) {
	db := usersTable(t)
	passes(t, db,
		`CREATE INDEX CONCURRENTLY idx_users_team ON users (team)`)
	passes(t, db,
		`DROP INDEX idx_users_team`,
		`ALTER TABLE users RENAME COLUMN email TO email_address`,
		`ALTER TABLE users RENAME TO members`,
		`ALTER TABLE members ALTER COLUMN team SET DEFAULT 0`,
		`ALTER TABLE members ALTER COLUMN team DROP NOT NULL`,
		`ALTER TABLE members DROP COLUMN team`,
		`COMMENT ON TABLE members IS 'who may sign in'`,
		`UPDATE members SET email_address = lower(email_address) WHERE id BETWEEN 1 AND 10`)

	// A NOT NULL column without a default cannot be added to a table with
	// rows: PostgreSQL refuses it at once instead of locking.
	sql := `ALTER TABLE members ADD COLUMN nickname text NOT NULL`
	_, err := lockcheck.Check(t.Context(), db, lockcheck.Postgres, []string{sql})
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), sql)
	require.ErrorContains(t, err, "contains null values")
}

func TestPostgresOverrides(t *testing.T) {
	stmts := []string{
		`CREATE INDEX idx_users_email ON users (email)`,
		`ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email), ADD CONSTRAINT users_id_pos CHECK (id > 0)`,
	}
	_, err := lockcheck.Check(t.Context(), nil, lockcheck.Postgres, stmts)
	got := unsafeErrors(err)
	require.Len(t, got, 3, "every rule of every statement is reported at once")
	assert.Equal(t, []lockcheck.Rule{lockcheck.RuleCreateIndexConcurrently, lockcheck.RuleConstraintUsingIndex, lockcheck.RuleConstraintNotValid},
		[]lockcheck.Rule{got[0].Rule, got[1].Rule, got[2].Rule})
	assert.Equal(t, []int{0, 1, 1}, []int{got[0].Statement, got[1].Statement, got[2].Statement})

	index := lockcheck.Override{Statement: 0, Rule: lockcheck.RuleCreateIndexConcurrently, Why: "users holds 40 rows"}
	unique := lockcheck.Override{Statement: 1, Rule: lockcheck.RuleConstraintUsingIndex, Why: "users holds 40 rows"}
	_, err = lockcheck.Check(t.Context(), nil, lockcheck.Postgres, stmts, index, unique)
	got = unsafeErrors(err)
	require.Len(t, got, 1, "an override lets through only its rule")
	assert.Equal(t, lockcheck.RuleConstraintNotValid, got[0].Rule)

	check := lockcheck.Override{Statement: 1, Rule: lockcheck.RuleConstraintNotValid, Why: "users holds 40 rows"}
	sts, err := lockcheck.Check(t.Context(), nil, lockcheck.Postgres, stmts, index, unique, check)
	require.NoError(t, err)
	assert.Equal(t, []lockcheck.Override{index}, sts[0].Overridden)
	assert.Equal(t, []lockcheck.Override{unique, check}, sts[1].Overridden)

	// Two parts of one statement that break the same rule make one error.
	_, err = lockcheck.Check(t.Context(), nil, lockcheck.Postgres, []string{
		`ALTER TABLE users ADD COLUMN a float8 DEFAULT random(), ADD COLUMN b uuid DEFAULT gen_random_uuid()`})
	got = unsafeErrors(err)
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Reason, "random()")
	assert.Contains(t, got[0].Reason, "gen_random_uuid()")
}

func TestPostgresCatalogErrors(t *testing.T) {
	db := testdb.Postgres(t)
	db.Close() // every read fails
	_, err := lockcheck.Check(t.Context(), db, lockcheck.Postgres, []string{`ALTER TABLE users ALTER COLUMN email TYPE text`})
	require.Error(t, err)
	assert.NotErrorIs(t, err, lockcheck.ErrUnsafe)
	assert.ErrorContains(t, err, "lockcheck: statement 0 (ALTER TABLE users ALTER COLUMN email TYPE text): read the type of users.email")
}
