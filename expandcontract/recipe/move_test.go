package recipe_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/recipe"
	"github.com/cutover-go/cutover/internal/testdb"
)

// ddlRun returns the details of the statements the history of m records
// as run before the phase changed ("ddl" events), in order.
func ddlRun(t *testing.T, m *expandcontract.Migration) []string {
	t.Helper()
	return details(t, m, "ddl")
}

// The four statements of the NOT NULL change run in one move on
// PostgreSQL, without an override: the ADD CONSTRAINT in a transaction of
// its own, the VALIDATE on its own, and the SET NOT NULL and DROP
// CONSTRAINT in the transaction that changes the phase. The column is NOT
// NULL afterwards and the helper constraint gone.
func TestNotNullPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	usersTable(t, db)
	m := open(t, db)
	stmts, err := recipe.NotNull(db.Name, "users", "email")
	require.NoError(t, err)
	require.NoError(t, move(t, m, stmts))
	assert.Equal(t, expandcontract.DualWrite, phase(t, m))
	noOverrides(t, m)
	assert.Len(t, ddlRun(t, m), 2, "the ADD and the VALIDATE run before the phase changes")

	var notNull bool
	require.NoError(t, db.GetContext(t.Context(), &notNull,
		`SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'`))
	assert.True(t, notNull, "email is NOT NULL")
	var left int
	require.NoError(t, db.GetContext(t.Context(), &left, `SELECT count(*) FROM pg_constraint WHERE conname = 'users_email_not_null'`))
	assert.Zero(t, left, "the helper constraint is dropped")
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, email) VALUES (100, NULL)`)
	assert.Error(t, err, "NULL is refused")
}

// A NULL in the table fails the VALIDATE and the move; the phase stays,
// with the NOT VALID constraint in place. Once the row is filled, the same
// move runs the rest and the phase moves.
func TestNotNullPostgresNullRow(t *testing.T) {
	db := testdb.Postgres(t)
	usersTable(t, db, 7)
	m := open(t, db)
	stmts, err := recipe.NotNull(db.Name, "users", "email")
	require.NoError(t, err)
	err = move(t, m, stmts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "statement 1")
	assert.Equal(t, expandcontract.Expand, phase(t, m))
	var validated []bool
	require.NoError(t, db.SelectContext(t.Context(), &validated, `SELECT convalidated FROM pg_constraint WHERE conname = 'users_email_not_null'`))
	assert.Equal(t, []bool{false}, validated, "the constraint is there, not validated")

	_, err = db.ExecContext(t.Context(), `UPDATE users SET email = 'filled@example.com' WHERE email IS NULL`)
	require.NoError(t, err)
	require.NoError(t, move(t, m, stmts))
	assert.Equal(t, expandcontract.DualWrite, phase(t, m))
	var notNull bool
	require.NoError(t, db.GetContext(t.Context(), &notNull,
		`SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'`))
	assert.True(t, notNull)
}

// On MariaDB the MODIFY runs online (lockcheck adds ALGORITHM=INPLACE,
// LOCK=NONE), keeps the attributes the definition restates, and makes the
// column NOT NULL.
func TestNotNullMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	usersTable(t, db)
	m := open(t, db)
	stmts, err := recipe.MySQLNotNull("users", "email", "varchar(255) DEFAULT 'none'")
	require.NoError(t, err)
	require.NoError(t, move(t, m, stmts))
	assert.Equal(t, expandcontract.DualWrite, phase(t, m))
	noOverrides(t, m)
	ran := ddlRun(t, m)
	require.Len(t, ran, 1)
	assert.Contains(t, ran[0], "ALGORITHM=INPLACE, LOCK=NONE")
	var col struct {
		Nullable string  `db:"IS_NULLABLE"`
		Default  *string `db:"COLUMN_DEFAULT"`
	}
	require.NoError(t, db.GetContext(t.Context(), &col, `SELECT IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'email'`))
	assert.Equal(t, "NO", col.Nullable)
	require.NotNil(t, col.Default)
	assert.Equal(t, "'none'", *col.Default, "the default is kept")
}

// On MariaDB a NULL fails the MODIFY, and the move; nothing changes.
func TestNotNullMySQLNullRow(t *testing.T) {
	db := testdb.MySQL(t)
	usersTable(t, db, 3)
	m := open(t, db)
	stmts, err := recipe.MySQLNotNull("users", "email", "varchar(255) DEFAULT 'none'")
	require.NoError(t, err)
	require.Error(t, move(t, m, stmts))
	assert.Equal(t, expandcontract.Expand, phase(t, m))
	var nullable string
	require.NoError(t, db.GetContext(t.Context(), &nullable, `SELECT IS_NULLABLE FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'email'`))
	assert.Equal(t, "YES", nullable)
}

// The foreign key is added NOT VALID and validated in one move on
// PostgreSQL; it is validated afterwards, and enforced. An orphan row
// fails the move until it is removed.
func TestForeignKeyPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	usersTable(t, db)
	_, err := db.ExecContext(t.Context(), `CREATE TABLE teams (id integer PRIMARY KEY); INSERT INTO teams VALUES (0), (1)`)
	require.NoError(t, err)
	m := open(t, db)
	stmts, err := recipe.ForeignKey(db.Name, recipe.ForeignKeyDef{Table: "users", Name: "users_team_fk",
		Columns: []string{"team"}, RefTable: "teams", RefColumns: []string{"id"}, OnDelete: "set null"})
	require.NoError(t, err)
	require.Error(t, move(t, m, stmts), "team 2 has no row in teams")
	assert.Equal(t, expandcontract.Expand, phase(t, m))

	_, err = db.ExecContext(t.Context(), `INSERT INTO teams VALUES (2)`)
	require.NoError(t, err)
	require.NoError(t, move(t, m, stmts))
	assert.Equal(t, expandcontract.DualWrite, phase(t, m))
	noOverrides(t, m)
	var validated bool
	require.NoError(t, db.GetContext(t.Context(), &validated, `SELECT convalidated FROM pg_constraint WHERE conname = 'users_team_fk' AND contype = 'f'`))
	assert.True(t, validated)
	_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, email, team) VALUES (100, 'x', 9)`)
	assert.Error(t, err, "the key is enforced")
}

// The unique constraint is built concurrently and attached on PostgreSQL,
// and added online on MariaDB, and in the phase's transaction on SQLite;
// afterwards a duplicate is refused.
func TestUnique(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		usersTable(t, db)
		m := open(t, db)
		stmts, err := recipe.Unique(db.Name, "users", "users_code_key", "code")
		require.NoError(t, err)
		require.NoError(t, move(t, m, stmts))
		assert.Equal(t, expandcontract.DualWrite, phase(t, m))
		noOverrides(t, m)
		_, err = db.ExecContext(t.Context(), `INSERT INTO users (id, email, code) VALUES (100, 'x', 5)`)
		assert.True(t, db.Dialect.IsUniqueViolation(err), "a duplicate code is refused: %v", err)
		switch db.Name {
		case "postgres":
			var kind string
			require.NoError(t, db.GetContext(t.Context(), &kind, `SELECT contype FROM pg_constraint WHERE conname = 'users_code_key'`))
			assert.Equal(t, "u", kind, "a unique constraint, not only an index")
		case "mysql":
			assert.Contains(t, ddlRun(t, m)[0], "ALGORITHM=INPLACE, LOCK=NONE")
		}
	})
}

// Duplicates fail the build and the move; the phase stays. On PostgreSQL
// the INVALID index left behind is dropped and built again by the same
// move once the duplicates are gone.
func TestUniqueDuplicates(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			usersTable(t, db)
			_, err := db.ExecContext(t.Context(), `UPDATE users SET code = 1 WHERE id = 2`)
			require.NoError(t, err)
			m := open(t, db)
			stmts, err := recipe.Unique(db.Name, "users", "users_code_key", "code")
			require.NoError(t, err)
			require.Error(t, move(t, m, stmts))
			assert.Equal(t, expandcontract.Expand, phase(t, m))
			_, err = db.ExecContext(t.Context(), `UPDATE users SET code = 2 WHERE id = 2`)
			require.NoError(t, err)
			require.NoError(t, move(t, m, stmts))
			assert.Equal(t, expandcontract.DualWrite, phase(t, m))
		})
	}
}
