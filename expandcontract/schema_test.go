package expandcontract_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/sqldialect"
	"github.com/cutover-go/cutover/internal/testdb"
)

// settingsNames are the backfill's columns that schema version 3 adds to
// the migrations table, and ceilingNames those of the stage ceiling.
var (
	settingsNames = []string{"backfill_rate_limit", "backfill_batch_size", "backfill_settings", "backfill_rate", "backfill_samples",
		"backfill_throttled"}
	ceilingNames = []string{"ceiling_stage", "ceiling_set_at", "ceiling_until", "ceiling_trigger", "ceiling_figures",
		"ceiling_instance", "ceiling_lifted_at", "ceiling_version"}
)

// v3Columns are the columns that schema version 3 adds to the migrations
// table.
var v3Columns = slices.Concat(settingsNames, ceilingNames)

// v3RunColumns are the columns of a running verification's progress that
// schema version 3 adds to the migrations table.
var v3RunColumns = []string{"verify_run_started_at", "verify_run_owner", "verify_run_rows", "verify_run_total", "verify_run_at"}

// v3All are all the columns that schema version 3 adds to the migrations
// table, in order.
var v3All = append(slices.Clone(v3Columns), v3RunColumns...)

// toVersion2 takes the tables of prefix back to schema version 2: the
// migrations table without the columns of version 3, no backfill_ranges
// and no verify_ranges.
func toVersion2(t *testing.T, db *testdb.DB, prefix string) {
	t.Helper()
	for _, col := range v3All {
		_, err := db.ExecContext(t.Context(), `ALTER TABLE `+prefix+`migrations DROP COLUMN `+col)
		require.NoError(t, err, col)
	}
	for _, table := range []string{"backfill_ranges", "verify_ranges"} {
		_, err := db.ExecContext(t.Context(), `DROP TABLE IF EXISTS `+prefix+table)
		require.NoError(t, err)
	}
	_, err := db.ExecContext(t.Context(), `UPDATE `+prefix+`schema SET version = 2`)
	require.NoError(t, err)
}

// settingsColumns reads the columns of version 3 of the migration name.
func settingsColumns(t *testing.T, db *testdb.DB, name string) []any {
	t.Helper()
	var r struct {
		RateLimit float64 `db:"backfill_rate_limit"`
		BatchSize int64   `db:"backfill_batch_size"`
		Settings  int64   `db:"backfill_settings"`
		Rate      float64 `db:"backfill_rate"`
		Samples   *string `db:"backfill_samples"`
		Throttled *string `db:"backfill_throttled"`
	}
	require.NoError(t, db.GetContext(t.Context(), &r, db.Rebind(`SELECT `+strings.Join(settingsNames, ", ")+
		` FROM cutover_migrations WHERE name = ?`), name))
	return []any{r.RateLimit, r.BatchSize, r.Settings, r.Rate, r.Samples, r.Throttled}
}

// TestSchemaUpgradeFromVersion2 opens tables of schema version 2 with
// their rows: Open adds the columns of version 3 in place, from two
// instances at once, keeping every row; a library of version 2 opens
// version 2 tables but refuses them once they are at version 3, changing
// nothing.
func TestSchemaUpgradeFromVersion2(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		ectest.Keep(t, db)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c)
		m := ectest.ToBackfill(t, s, "users")
		before, err := m.State(ctx)
		require.NoError(t, err)
		events := usersEvents(t, s)
		toVersion2(t, db, "cutover_")
		require.NoError(t, expandcontract.OpenAs(ctx, s, 2), "a library of version 2 opens version 2 tables")

		assert.Equal(t, int64(3), ectest.OpenAtOnce(t, db.DB))
		after, err := m.State(ctx)
		require.NoError(t, err)
		assert.Equal(t, before, after)
		assert.Equal(t, events, usersEvents(t, s))
		assert.Equal(t, []any{0.0, int64(0), int64(0), 0.0, (*string)(nil), (*string)(nil)}, settingsColumns(t, db, "users"))

		snapshot := ectest.Snapshot(t, db, true)
		err = expandcontract.OpenAs(ctx, s, 2)
		ectest.ErrorIs(t, err, "tables cutover_* are at version 3, this library knows 2", expandcontract.ErrNewerSchema)
		assert.Equal(t, snapshot, ectest.Snapshot(t, db, true))
	})
}

// TestSchemaDDLAndWithoutSchemaChanges creates the metadata tables from
// the statements of SchemaDDL, as a migration tool would, and opens them
// WithoutSchemaChanges: they pass the check and work. With a table, a
// column, an index or the version missing, Open names what is missing
// and creates nothing; the statements of SchemaUpgradeDDL bring tables of
// version 2 up.
func TestSchemaDDLAndWithoutSchemaChanges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		ectest.Keep(t, db)
		prefix := expandcontract.WithTablePrefix("app_")
		check := func() error {
			t.Helper()
			tables := ectest.Tables(t, db)
			_, err := expandcontract.Open(ctx, db.DB, expandcontract.WithoutSchemaChanges(), prefix)
			assert.Equal(t, tables, ectest.Tables(t, db), "no table created")
			return err
		}
		exec := func(stmts ...string) {
			t.Helper()
			for _, q := range stmts {
				_, err := db.ExecContext(ctx, q)
				require.NoError(t, err, q)
			}
		}

		// Nothing there: every table is named.
		err := check()
		ectest.ErrorIs(t, err, "tables app_* lack table app_schema; table app_migrations; table app_events; "+
			"table app_repairs; table app_instances", expandcontract.ErrSchemaMissing)
		assert.Equal(t, []string{"keep"}, ectest.Tables(t, db))

		stmts, err := expandcontract.SchemaDDL(db.Name, prefix)
		require.NoError(t, err)
		require.Len(t, stmts, 11, "seven tables, three indexes, the version")
		for _, q := range stmts {
			assert.NotContains(t, q, "IF NOT EXISTS")
		}
		assert.Equal(t, "INSERT INTO "+db.Dialect.Quote("app_schema")+" (id, version) VALUES (1, 3)", stmts[10])
		exec(stmts...)
		require.NoError(t, check())

		// The tables work, and Open without the option finds nothing to do.
		s := ectest.Open(t, db.DB, ectest.NewClock(), expandcontract.WithoutSchemaChanges(), prefix)
		m := ectest.ToBackfill(t, s, "users")
		log, err := repair.NewLog(m)
		require.NoError(t, err)
		require.NoError(t, log.Record(ctx, cutover.Repair{Op: "users.save", Key: "42", Target: cutover.New,
			Stage: cutover.DualWrite, Reason: cutover.SecondaryFailed}))
		tables := ectest.Tables(t, db)
		ectest.Open(t, db.DB, nil, prefix)
		assert.Equal(t, tables, ectest.Tables(t, db))

		// A missing index, column, version or table is named.
		dropIndex := `DROP INDEX app_repairs_open`
		if db.Name == sqldialect.MySQL {
			dropIndex += ` ON app_repairs`
		}
		exec(dropIndex)
		ectest.ErrorIs(t, check(), "tables app_* lack index app_repairs_open on app_repairs", expandcontract.ErrSchemaMissing)
		exec(stmts[9])
		require.NoError(t, check())

		exec(`DELETE FROM app_schema`)
		ectest.ErrorIs(t, check(), "lack the schema version in table app_schema", expandcontract.ErrSchemaMissing)
		exec(stmts[10])
		require.NoError(t, check())

		toVersion2(t, db, "app_")
		ectest.ErrorIs(t, check(), "lack column "+strings.Join(v3All, ", ")+" of table app_migrations; table app_backfill_ranges; table app_verify_ranges; "+
			"schema version 3 (the tables are at version 2; run the upgrade statements from version 2)", expandcontract.ErrSchemaMissing)
		upgrade, err := expandcontract.SchemaUpgradeDDL(db.Name, 2, prefix)
		require.NoError(t, err)
		require.Len(t, upgrade, len(v3All)+3, "the columns, the tables, the version")
		exec(upgrade...)
		require.NoError(t, check())
		st, err := m.State(ctx)
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Backfill, st.Phase, "the rows are kept")

		exec(`DROP TABLE app_instances`)
		ectest.ErrorIs(t, check(), "tables app_* lack table app_instances", expandcontract.ErrSchemaMissing)
		assert.NotContains(t, ectest.Tables(t, db), "app_instances")

		// A newer version is refused as such.
		exec(stmts[4], `UPDATE app_schema SET version = 9`)
		ectest.ErrorIs(t, check(), "tables app_* are at version 9, this library knows 3", expandcontract.ErrNewerSchema)
	})
}

func TestSchemaDDLBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		want []error
		what string
	}{
		{"unknown dialect", func() error { _, err := expandcontract.SchemaDDL("oracle"); return err },
			[]error{expandcontract.ErrInvalidInput}, `unsupported database/sql driver "oracle"`},
		{"bad prefix", func() error {
			_, err := expandcontract.SchemaDDL("postgres", expandcontract.WithTablePrefix("x; DROP TABLE keep; --"))
			return err
		}, []error{expandcontract.ErrInvalidInput, expandcontract.ErrInvalidIdentifier}, `table prefix "x; DROP TABLE keep; --"`},
		{"nil option", func() error { _, err := expandcontract.SchemaDDL("mysql", nil); return err },
			[]error{expandcontract.ErrInvalidInput}, "option 0 is nil"},
		{"upgrade from 0", func() error { _, err := expandcontract.SchemaUpgradeDDL("sqlite", 0); return err },
			[]error{expandcontract.ErrInvalidInput}, "schema version 0 is not one this library upgrades from (1 to 3)"},
		{"upgrade from the future", func() error { _, err := expandcontract.SchemaUpgradeDDL("sqlite", 4); return err },
			[]error{expandcontract.ErrInvalidInput}, "schema version 4"},
	} {
		t.Run(tc.name, func(t *testing.T) { ectest.ErrorIs(t, tc.err(), tc.what, tc.want...) })
	}
	none, err := expandcontract.SchemaUpgradeDDL("pgx", expandcontract.SchemaVersion)
	require.NoError(t, err)
	assert.Empty(t, none)
	all, err := expandcontract.SchemaUpgradeDDL("mysql", 1)
	require.NoError(t, err)
	assert.Len(t, all, 3+1+len(v3All)+2+1, "the columns and index of version 2, the columns and tables of version 3, the version")
}
