package lockcheck_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
)

func TestPostgresStatementsThatCannotRunInATransaction(t *testing.T) {
	for _, tc := range []struct {
		sql     string
		outside bool
		index   string
	}{
		{`CREATE INDEX CONCURRENTLY idx_users_email ON users (email)`, true, "idx_users_email"},
		{`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_u ON app.users (email)`, true, "app.idx_u"},
		{`DROP INDEX CONCURRENTLY IF EXISTS idx_users_email`, true, ""},
		{`REINDEX INDEX CONCURRENTLY idx_users_email`, true, ""},
		{`ALTER TYPE mood ADD VALUE 'meh'`, true, ""},
		{`VACUUM users`, true, ""},
		{`ALTER TABLE users ADD COLUMN email_address text`, false, ""},
		{`DROP INDEX idx_users_email`, false, ""},
		{`REINDEX INDEX idx_users_email`, false, ""},
		{`ALTER TYPE mood RENAME VALUE 'meh' TO 'so-so'`, false, ""},
	} {
		// A plain REINDEX breaks a rule; an override lets it through, to
		// show how it runs.
		var overrides []lockcheck.Override
		if tc.sql == `REINDEX INDEX idx_users_email` {
			overrides = []lockcheck.Override{{Rule: lockcheck.RuleReindexConcurrently, Why: "test"}}
		}
		got, err := lockcheck.Check(t.Context(), nil, lockcheck.Postgres, []string{tc.sql}, overrides...)
		require.NoError(t, err, tc.sql)
		require.Len(t, got, 1)
		assert.Equal(t, lockcheck.Statement{SQL: tc.sql, Outside: tc.outside, Index: tc.index, Overridden: overrides}, got[0], tc.sql)
	}
}

func TestCheckRefusesBadInput(t *testing.T) {
	ctx := t.Context()
	for name, tc := range map[string]struct {
		dialect   string
		stmts     []string
		overrides []lockcheck.Override
		want      error
		text      string
	}{
		"dialect":       {"oracle", []string{"SELECT 1"}, nil, lockcheck.ErrInvalidInput, `unknown dialect "oracle"`},
		"empty":         {lockcheck.Postgres, []string{" "}, nil, lockcheck.ErrInvalidInput, "statement 0 is empty"},
		"two":           {lockcheck.Postgres, []string{"SELECT 1; SELECT 2"}, nil, lockcheck.ErrInvalidInput, "statement 0 holds 2 statements"},
		"parse":         {lockcheck.Postgres, []string{"ALTER TABEL users"}, nil, lockcheck.ErrParse, "statement 0 (ALTER TABEL users)"},
		"override-stmt": {lockcheck.Postgres, []string{"SELECT 1"}, []lockcheck.Override{{Statement: 1, Rule: "x", Why: "y"}}, lockcheck.ErrInvalidInput, "override for statement 1, of 1"},
		"override-rule": {lockcheck.Postgres, []string{"SELECT 1"}, []lockcheck.Override{{Why: "y"}}, lockcheck.ErrInvalidInput, "names no rule"},
		"override-why":  {lockcheck.Postgres, []string{"SELECT 1"}, []lockcheck.Override{{Rule: "x"}}, lockcheck.ErrInvalidInput, "gives no reason"},
	} {
		_, err := lockcheck.Check(ctx, nil, tc.dialect, tc.stmts, tc.overrides...)
		assert.ErrorIs(t, err, tc.want, name)
		assert.ErrorContains(t, err, tc.text, name)
	}
}

// TestRulesAreDocumented checks that every rule has a stable kebab-case
// name and a row in docs/lock-safety.md.
func TestRulesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/lock-safety.md")
	require.NoError(t, err)
	kebab := regexp.MustCompile(`^[a-z]+(-[a-z]+)+$`)
	seen := map[lockcheck.Rule]bool{}
	for _, r := range lockcheck.Rules() {
		assert.Regexp(t, kebab, string(r))
		assert.False(t, seen[r], "rule %s listed twice", r)
		seen[r] = true
		assert.Contains(t, string(doc), "| `"+string(r)+"` |", "rule %s has no row in docs/lock-safety.md", r)
	}
}
