package lockcheck_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestMySQLAddsOnlineClauses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ALTER TABLE users ADD COLUMN email varchar(255)",
			"ALTER TABLE users ADD COLUMN email varchar(255), ALGORITHM=INPLACE, LOCK=NONE"},
		{"alter table `app`.`users` add index idx_email (email), drop column x;  -- trailing\n",
			"alter table `app`.`users` add index idx_email (email), drop column x, ALGORITHM=INPLACE, LOCK=NONE;  -- trailing\n"},
		{"CREATE INDEX idx_email ON users (email)",
			"CREATE INDEX idx_email ON users (email) ALGORITHM=INPLACE LOCK=NONE"},
		{"CREATE UNIQUE INDEX IF NOT EXISTS idx_email ON users (email) COMMENT 'ALGORITHM=COPY'",
			"CREATE UNIQUE INDEX IF NOT EXISTS idx_email ON users (email) COMMENT 'ALGORITHM=COPY' ALGORITHM=INPLACE LOCK=NONE"},
		// MariaDB's DROP INDEX takes no ALGORITHM or LOCK: it becomes the
		// ALTER TABLE that means the same.
		{"DROP INDEX idx_email ON users", "ALTER TABLE users DROP INDEX idx_email, ALGORITHM=INPLACE, LOCK=NONE"},
		{"/* contract */ drop index if exists `idx email` on app.`users` nowait; -- done",
			"/* contract */ ALTER TABLE app.`users` NOWAIT DROP INDEX IF EXISTS `idx email`, ALGORITHM=INPLACE, LOCK=NONE; -- done"},
		{"DROP INDEX i ON t WAIT 5", "ALTER TABLE t WAIT 5 DROP INDEX i, ALGORITHM=INPLACE, LOCK=NONE"},
		// Written for MySQL with a clause: kept, the other added.
		{"DROP INDEX i ON t ALGORITHM=INPLACE", "DROP INDEX i ON t ALGORITHM=INPLACE LOCK=NONE"},
		// Given clauses are kept; the missing one is added.
		{"ALTER TABLE users ADD COLUMN a int, ALGORITHM=INSTANT", "ALTER TABLE users ADD COLUMN a int, ALGORITHM=INSTANT, LOCK=NONE"},
		{"ALTER TABLE users ALGORITHM = NOCOPY, ADD COLUMN a int", "ALTER TABLE users ALGORITHM = NOCOPY, ADD COLUMN a int, LOCK=NONE"},
		{"ALTER TABLE users LOCK=NONE, ADD COLUMN a int", "ALTER TABLE users LOCK=NONE, ADD COLUMN a int, ALGORITHM=INPLACE"},
		{"ALTER TABLE users ADD COLUMN a int, ALGORITHM=INPLACE, LOCK=DEFAULT", "ALTER TABLE users ADD COLUMN a int, ALGORITHM=INPLACE, LOCK=DEFAULT"},
		{"ALTER TABLE users ADD COLUMN a int, ALGORITHM=DEFAULT", "ALTER TABLE users ADD COLUMN a int, ALGORITHM=DEFAULT, LOCK=NONE"},
		{"CREATE INDEX i ON users (a) LOCK NONE ALGORITHM INPLACE", "CREATE INDEX i ON users (a) LOCK NONE ALGORITHM INPLACE"},
		// A column named algorithm, quoted or not, is not the clause; nor
		// is what strings and comments hold.
		{"ALTER TABLE t ADD COLUMN algorithm varchar(10) DEFAULT 'LOCK=SHARED' /* ALGORITHM=COPY */, ADD `lock` int # LOCK=EXCLUSIVE\n",
			"ALTER TABLE t ADD COLUMN algorithm varchar(10) DEFAULT 'LOCK=SHARED' /* ALGORITHM=COPY */, ADD `lock` int, ALGORITHM=INPLACE, LOCK=NONE # LOCK=EXCLUSIVE\n"},
		{`ALTER TABLE t ADD COLUMN a varchar(10) DEFAULT 'it''s \' ALGORITHM=COPY', ADD COLUMN b text DEFAULT "x"`,
			`ALTER TABLE t ADD COLUMN a varchar(10) DEFAULT 'it''s \' ALGORITHM=COPY', ADD COLUMN b text DEFAULT "x", ALGORITHM=INPLACE, LOCK=NONE`},
		{"CREATE INDEX algorithm ON t (`lock`, algorithm)", "CREATE INDEX algorithm ON t (`lock`, algorithm) ALGORITHM=INPLACE LOCK=NONE"},
		// Other statements are left as given.
		{"CREATE TABLE t (id int, algorithm int)", "CREATE TABLE t (id int, algorithm int)"},
		{"UPDATE users SET a = 1 WHERE id BETWEEN 1 AND 100", "UPDATE users SET a = 1 WHERE id BETWEEN 1 AND 100"},
		{"RENAME TABLE users TO members", "RENAME TABLE users TO members"},
		{"DROP TABLE old_users", "DROP TABLE old_users"},
	} {
		got, err := lockcheck.Check(t.Context(), nil, lockcheck.MySQL, []string{tc.in})
		require.NoError(t, err, tc.in)
		assert.Equal(t, []lockcheck.Statement{{SQL: tc.want}}, got, tc.in)
	}
}

func TestMySQLTableOfTheSameCall(t *testing.T) {
	stmts := []string{
		"CREATE TABLE `teams` (id int)",
		"ALTER TABLE teams ADD FOREIGN KEY (id) REFERENCES users (id)",
		"CREATE INDEX i ON `teams` (id)",
		"CREATE TABLE IF NOT EXISTS others (id int)",
		"ALTER TABLE others ADD COLUMN a int",
	}
	got, err := lockcheck.Check(t.Context(), nil, lockcheck.MySQL, stmts)
	require.NoError(t, err)
	for i := range 4 {
		assert.Equal(t, stmts[i], got[i].SQL)
	}
	assert.Equal(t, "ALTER TABLE others ADD COLUMN a int, ALGORITHM=INPLACE, LOCK=NONE", got[4].SQL,
		"IF NOT EXISTS may find a table that exists")
}

func TestRuleMySQLOnlineDDL(t *testing.T) {
	for _, sql := range []string{
		"ALTER TABLE users MODIFY email text, ALGORITHM=COPY",
		"ALTER TABLE users ADD COLUMN a int, LOCK=SHARED",
		"ALTER TABLE users ADD COLUMN a int, LOCK = exclusive",
		"ALTER TABLE users ADD COLUMN a int, ALGORITHM=DEFAULT, LOCK=DEFAULT",
		"CREATE INDEX i ON users (a) ALGORITHM=COPY",
		"DROP INDEX i ON users LOCK=EXCLUSIVE",
		"ALTER ONLINE TABLE users ADD COLUMN a int, ALGORITHM=COPY",
	} {
		u := refused(t, nil, lockcheck.MySQL, []string{sql}, 0, lockcheck.RuleMySQLOnlineDDL)
		assert.Contains(t, u.Instead, "LOCK=NONE", sql)
		// Overridden, the statement runs as given.
		got, err := lockcheck.Check(t.Context(), nil, lockcheck.MySQL, []string{sql},
			lockcheck.Override{Rule: lockcheck.RuleMySQLOnlineDDL, Why: "a table of ten rows"})
		require.NoError(t, err)
		assert.Equal(t, sql, got[0].SQL)
		assert.Len(t, got[0].Overridden, 1)
	}
}

func TestMySQLBadInput(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want error
		text string
	}{
		{"ALTER TABLE t ADD COLUMN a int; ALTER TABLE t ADD COLUMN b int", lockcheck.ErrInvalidInput, "statement 0 holds 2 statements"},
		{"-- only a comment", lockcheck.ErrInvalidInput, "statement 0 holds 0 statements"},
		{"ALTER TABLE t ADD COLUMN a varchar(10) DEFAULT 'x", lockcheck.ErrParse, "string at byte 47 does not end"},
		{"ALTER TABLE `t ADD COLUMN a int", lockcheck.ErrParse, "quoted identifier at byte 12 does not end"},
		{"ALTER TABLE t ADD COLUMN a int /* no end", lockcheck.ErrParse, "comment at byte 31 does not end"},
		{"ALTER TABLE t ADD INDEX (a", lockcheck.ErrParse, "1 parentheses are not closed"},
		{"ALTER TABLE t ADD INDEX a)", lockcheck.ErrParse, ") at byte 25 closes no parenthesis"},
		{"ALTER TABLE t ADD COLUMN a int /*!50000 , ALGORITHM=COPY */", lockcheck.ErrParse, "executable comment"},
		{"ALTER TABLE t ADD COLUMN a int /*M!100000 , LOCK=SHARED */", lockcheck.ErrParse, "executable comment"},
	} {
		_, err := lockcheck.Check(t.Context(), nil, lockcheck.MySQL, []string{tc.sql})
		assert.ErrorIs(t, err, tc.want, tc.sql)
		assert.ErrorContains(t, err, tc.text, tc.sql)
	}
	// A trailing semicolon ends the statement and starts no other.
	got, err := lockcheck.Check(t.Context(), nil, lockcheck.MySQL, []string{"CREATE INDEX i ON t (a);"})
	require.NoError(t, err)
	assert.Equal(t, "CREATE INDEX i ON t (a) ALGORITHM=INPLACE LOCK=NONE;", got[0].SQL)
}

// TestMySQLOnMariaDB runs the statements as Check returns them on a real
// server: the online changes run, and one the server cannot make online is
// refused by the server instead of run under a lock.
func TestMySQLOnMariaDB(t *testing.T) {
	db := testdb.MySQL(t)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, "CREATE TABLE users (id int PRIMARY KEY, email varchar(100), n int)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO users VALUES (1, 'a@example.com', 1), (2, 'b@example.com', 2)")
	require.NoError(t, err)

	got := passes(t, db,
		"ALTER TABLE users ADD COLUMN nickname varchar(50)",
		"ALTER TABLE users ADD INDEX idx_nickname (nickname)",
		"CREATE INDEX idx_email ON users (email)",
		"DROP INDEX idx_email ON users",
		"ALTER TABLE users DROP INDEX idx_nickname, ALGORITHM=NOCOPY",
		"ALTER TABLE users MODIFY email varchar(200)")
	assert.Equal(t, "ALTER TABLE users ADD COLUMN nickname varchar(50), ALGORITHM=INPLACE, LOCK=NONE", got[0].SQL)
	assert.Equal(t, "ALTER TABLE users DROP INDEX idx_email, ALGORITHM=INPLACE, LOCK=NONE", got[3].SQL)

	for _, sql := range []string{
		"ALTER TABLE users MODIFY n varchar(20)",
		"ALTER TABLE users MODIFY email int",
	} {
		sts, err := lockcheck.Check(ctx, db, lockcheck.MySQL, []string{sql})
		require.NoError(t, err, sql)
		_, err = db.ExecContext(ctx, sts[0].SQL)
		require.Error(t, err, sts[0].SQL)
		assert.Regexp(t, `(LOCK=NONE|ALGORITHM=INPLACE) is not supported`, err.Error(), sts[0].SQL)
	}
	var nType, emailType string
	require.NoError(t, db.GetContext(ctx, &nType, "SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'n'"))
	require.NoError(t, db.GetContext(ctx, &emailType, "SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'email'"))
	assert.Equal(t, []string{"int", "varchar"}, []string{nType, emailType}, "a refused change ran")

	// With the rule overridden and the copy asked for, it runs.
	sql := "ALTER TABLE users MODIFY n varchar(20), ALGORITHM=COPY"
	sts, err := lockcheck.Check(ctx, db, lockcheck.MySQL, []string{sql},
		lockcheck.Override{Rule: lockcheck.RuleMySQLOnlineDDL, Why: "two rows"})
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, sts[0].SQL)
	require.NoError(t, err)
}

func TestSQLiteHasNoRules(t *testing.T) {
	db := testdb.SQLite(t)
	passes(t, db,
		"CREATE TABLE users (id integer PRIMARY KEY, email text)",
		"CREATE INDEX idx_email ON users (email)",
		"ALTER TABLE users ADD COLUMN created text DEFAULT CURRENT_TIMESTAMP",
		"DROP INDEX idx_email")
}
