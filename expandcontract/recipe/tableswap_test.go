package recipe_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/recipe"
	"github.com/cutover-go/cutover/internal/testdb"
)

// columnType returns the type of column col of table on MariaDB.
func columnType(t *testing.T, db *testdb.DB, table, col string) string {
	t.Helper()
	var typ string
	require.NoError(t, db.GetContext(t.Context(), &typ, `SELECT COLUMN_TYPE FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?`, table, col))
	return typ
}

// A column type change MariaDB refuses online (INT to VARCHAR) goes
// through a new table: the expand move creates and changes it, the
// application writes both tables, the backfill fills the new one, the
// contract move swaps them and leaves a view under the new table's name,
// through which writes land in the swapped-in table, and the retire drops
// the view and the old table. Every statement passes lockcheck as given.
func TestTableSwapMySQL(t *testing.T) {
	db := testdb.MySQL(t)
	usersTable(t, db)
	ctx := t.Context()
	exec := func(q string) {
		t.Helper()
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	// The server refuses the change in place.
	_, err := db.ExecContext(ctx, "ALTER TABLE users MODIFY code VARCHAR(20), ALGORITHM=INPLACE, LOCK=NONE")
	require.Error(t, err)

	swap := recipe.TableSwap{Table: "users", Changes: []string{"MODIFY code VARCHAR(20)"}}
	clock := ectest.NewClock()
	s := ectest.Open(t, db.DB, clock)
	m := ectest.Ensure(t, s, "change")
	expand, err := swap.Expand(db.Name)
	require.NoError(t, err)
	require.NoError(t, move(t, m, expand))
	assert.Equal(t, "varchar(20)", columnType(t, db, "users_new", "code"))

	// dualwrite: the application writes both stores; the backfill copies
	// the rest.
	exec(`INSERT INTO users (id, email, code) VALUES (21, 'new@example.com', 21)`)
	exec(`INSERT INTO users_new (id, email, code) VALUES (21, 'new@example.com', '21')`)
	ectest.MoveTo(t, m, expandcontract.Backfill)
	exec(`INSERT IGNORE INTO users_new (id, email, code, team) SELECT id, email, CAST(code AS CHAR), team FROM users`)
	require.NoError(t, backfill.MarkDone(ctx, m, "test", ""))
	clock.Advance(time.Second)
	require.NoError(t, m.RecordVerification(ctx, expandcontract.Verification{Clean: true}))
	ectest.MoveTo(t, m, expandcontract.SwitchReads)

	contract, err := swap.Contract(db.Name)
	require.NoError(t, err)
	_, err = m.Move(ctx, expandcontract.Move{To: expandcontract.Contract, Actor: "ann", Reason: "swap", SQL: contract})
	require.NoError(t, err)
	assert.Equal(t, expandcontract.Contract, phase(t, m))
	assert.Equal(t, "varchar(20)", columnType(t, db, "users", "code"), "users is the new table")
	assert.Equal(t, "int(11)", columnType(t, db, "users_old", "code"))

	// An instance not yet redeployed writes the new store by its old name.
	exec(`INSERT INTO users_new (id, email, code) VALUES (22, 'late@example.com', 'x22')`)
	exec(`UPDATE users_new SET code = 'y1' WHERE id = 1`)
	var codes []string
	require.NoError(t, db.SelectContext(ctx, &codes, `SELECT code FROM users WHERE id IN (1, 21, 22) ORDER BY id`))
	assert.Equal(t, []string{"y1", "21", "x22"}, codes, "writes through the view land in users")
	var n int
	require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users`))
	assert.Equal(t, 22, n)

	retire, err := swap.Retire(db.Name)
	require.NoError(t, err)
	require.NoError(t, m.Retire(ctx, expandcontract.Retire{Actor: "ann", Reason: "done", SQL: retire}))
	var left []string
	require.NoError(t, db.SelectContext(ctx, &left, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_name LIKE 'users%' ORDER BY table_name`))
	assert.Equal(t, []string{"users"}, left, "the view and the old table are gone")
	noOverrides(t, m)
}

func TestTableSwapBadInput(t *testing.T) {
	ok := recipe.TableSwap{Table: "users", Changes: []string{"MODIFY code VARCHAR(20)"}}
	for name, tc := range map[string]struct {
		s    recipe.TableSwap
		want error
	}{
		"postgres":       {ok, recipe.ErrUnsupported},
		"empty table":    {recipe.TableSwap{Changes: ok.Changes}, recipe.ErrInvalidInput},
		"no changes":     {recipe.TableSwap{Table: "users"}, recipe.ErrInvalidInput},
		"empty change":   {recipe.TableSwap{Table: "users", Changes: []string{" "}}, recipe.ErrInvalidInput},
		"two statements": {recipe.TableSwap{Table: "users", Changes: []string{"MODIFY code INT; DROP TABLE users"}}, recipe.ErrInvalidInput},
		"same names":     {recipe.TableSwap{Table: "users", Changes: ok.Changes, New: "users"}, recipe.ErrInvalidInput},
		"bad new name":   {recipe.TableSwap{Table: "users", Changes: ok.Changes, New: "users-new"}, recipe.ErrInvalidInput},
	} {
		t.Run(name, func(t *testing.T) {
			dialect := "mysql"
			if name == "postgres" {
				dialect = name
			}
			got, err := tc.s.Expand(dialect)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, got)
		})
	}
	got, err := recipe.TableSwap{Table: "app.users", Changes: ok.Changes, New: "app.users_v2"}.Contract("mysql")
	require.NoError(t, err)
	assert.Equal(t, []string{"CREATE OR REPLACE VIEW `app`.`users_v2_swap` AS SELECT * FROM `app`.`users`",
		"RENAME TABLE `app`.`users` TO `app`.`users_old`, `app`.`users_v2` TO `app`.`users`, `app`.`users_v2_swap` TO `app`.`users_v2`"}, got)
}
