package recipe_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/recipe"
	"github.com/cutover-go/cutover/internal/testdb"
)

// usersTable creates users (id, email, code, team) on db with rows 1 to
// 20, email and team filled; email of the ids in nulls is NULL.
func usersTable(t *testing.T, db *testdb.DB, nulls ...int) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), `CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255) DEFAULT 'none', code INTEGER, team INTEGER)`)
	require.NoError(t, err)
	for i := 1; i <= 20; i++ {
		var email any = "u" + string(rune('a'+i)) + "@example.com"
		for _, n := range nulls {
			if n == i {
				email = nil
			}
		}
		_, err := db.ExecContext(t.Context(), db.Rebind(`INSERT INTO users (id, email, code, team) VALUES (?, ?, ?, ?)`), i, email, i, i%3)
		require.NoError(t, err)
	}
}

// move moves m from expand to dualwrite with stmts, as the actor "ann",
// and returns the error.
func move(t *testing.T, m *expandcontract.Migration, stmts []string) error {
	t.Helper()
	_, err := m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann", Reason: "recipe", SQL: stmts})
	return err
}

// noOverrides checks that the history of m records no override: lockcheck
// let every statement through on its own.
func noOverrides(t *testing.T, m *expandcontract.Migration) {
	t.Helper()
	assert.Empty(t, details(t, m, "override"))
}

// details returns the details of the events of kind in the history of m.
func details(t *testing.T, m *expandcontract.Migration, kind string) []string {
	t.Helper()
	evs, err := m.Events(t.Context())
	require.NoError(t, err)
	var out []string
	for _, ev := range evs {
		if ev.Kind == kind {
			out = append(out, ev.Detail)
		}
	}
	return out
}

func phase(t *testing.T, m *expandcontract.Migration) expandcontract.Phase {
	t.Helper()
	st, err := m.State(t.Context())
	require.NoError(t, err)
	return st.Phase
}

// open opens a store on db and creates the migration "change" in expand.
func open(t *testing.T, db *testdb.DB) *expandcontract.Migration {
	t.Helper()
	return ectest.Ensure(t, ectest.Open(t, db.DB, ectest.NewClock()), "change")
}

func TestBadInput(t *testing.T) {
	fk := recipe.ForeignKeyDef{Table: "orders", Name: "fk", Columns: []string{"user_id"}, RefTable: "users", RefColumns: []string{"id"}}
	with := func(f func(*recipe.ForeignKeyDef)) recipe.ForeignKeyDef { d := fk; f(&d); return d }
	for name, call := range map[string]func() ([]string, error){
		"unknown dialect": func() ([]string, error) { return recipe.NotNull("oracle", "users", "email") },
		"empty table":     func() ([]string, error) { return recipe.NotNull("postgres", "", "email") },
		"empty column":    func() ([]string, error) { return recipe.NotNull("postgres", "users", "") },
		"quote in table":  func() ([]string, error) { return recipe.NotNull("postgres", `us"ers`, "email") },
		"dotted column":   func() ([]string, error) { return recipe.NotNull("postgres", "users", "u.email") },
		"constraint name too long": func() ([]string, error) {
			return recipe.NotNull("postgres", strings.Repeat("t", 40), strings.Repeat("c", 20))
		},
		"mysql empty definition": func() ([]string, error) { return recipe.MySQLNotNull("users", "email", " ") },
		"mysql two statements":   func() ([]string, error) { return recipe.MySQLNotNull("users", "email", "int; DROP TABLE users") },
		"mysql backquote column": func() ([]string, error) { return recipe.MySQLNotNull("users", "e`mail", "int") },
		"fk no columns": func() ([]string, error) {
			return recipe.ForeignKey("postgres", with(func(d *recipe.ForeignKeyDef) { d.Columns = nil }))
		},
		"fk column count": func() ([]string, error) {
			return recipe.ForeignKey("postgres", with(func(d *recipe.ForeignKeyDef) { d.RefColumns = []string{"id", "x"} }))
		},
		"fk on delete": func() ([]string, error) {
			return recipe.ForeignKey("postgres", with(func(d *recipe.ForeignKeyDef) { d.OnDelete = "DROP TABLE" }))
		},
		"fk empty name": func() ([]string, error) {
			return recipe.ForeignKey("postgres", with(func(d *recipe.ForeignKeyDef) { d.Name = "" }))
		},
		"fk bad ref table": func() ([]string, error) {
			return recipe.ForeignKey("postgres", with(func(d *recipe.ForeignKeyDef) { d.RefTable = "a.b.c" }))
		},
		"unique no columns":        func() ([]string, error) { return recipe.Unique("mysql", "users", "users_email_key") },
		"unique empty column":      func() ([]string, error) { return recipe.Unique("sqlite", "users", "k", "email", "") },
		"unique dotted constraint": func() ([]string, error) { return recipe.Unique("postgres", "users", "public.k", "email") },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := call()
			require.ErrorIs(t, err, recipe.ErrInvalidInput)
			assert.Nil(t, got)
		})
	}
	for name, call := range map[string]func() ([]string, error){
		"not null mysql":     func() ([]string, error) { return recipe.NotNull("mysql", "users", "email") },
		"not null sqlite":    func() ([]string, error) { return recipe.NotNull("sqlite", "users", "email") },
		"foreign key mysql":  func() ([]string, error) { return recipe.ForeignKey("mysql", fk) },
		"foreign key sqlite": func() ([]string, error) { return recipe.ForeignKey("sqlite", fk) },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := call()
			require.ErrorIs(t, err, recipe.ErrUnsupported)
			assert.NotErrorIs(t, err, recipe.ErrInvalidInput)
			assert.Nil(t, got)
		})
	}
}

func TestQuoting(t *testing.T) {
	got, err := recipe.Unique("sqlite", "main.users", "users_team_email_key", "team", "email")
	require.NoError(t, err)
	assert.Equal(t, []string{`CREATE UNIQUE INDEX "main"."users_team_email_key" ON "users" ("team", "email")`}, got)
	got, err = recipe.NotNull("pgx", "app.Users", "Email")
	require.NoError(t, err)
	assert.Equal(t, `ALTER TABLE "app"."Users" ADD CONSTRAINT "Users_Email_not_null" CHECK ("Email" IS NOT NULL) NOT VALID`, got[0])
	got, err = recipe.Unique("mysql", "app.users", "k", "email")
	require.NoError(t, err)
	assert.Equal(t, []string{"ALTER TABLE `app`.`users` ADD UNIQUE INDEX `k` (`email`)"}, got)
}
