package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// column is one column of a metadata table.
type column struct {
	name, def string // the name, and the definition after it
	since     int64  // the schema version that added it
}

// table is one metadata table.
type table struct {
	name, quoted string // unquoted and quoted
	columns      []column
	constraint   string // a table constraint after the columns, or ""
	since        int64  // the schema version that added it; 0 for the first
}

// index is one index of the metadata tables.
type index struct {
	ix    sqldialect.Index
	since int64
}

// tables returns the metadata tables as the newest schema version has
// them, in the order they are created.
func (s *Store) tables() []table {
	d := s.Dialect
	key, text, big, small, float := d.TypeKeyText(), d.TypeText(), d.TypeBigInt(), d.TypeBool(), d.TypeFloat()
	cols := func(since int64, defs ...string) []column {
		out := make([]column, len(defs))
		for i, def := range defs {
			name, rest, _ := strings.Cut(def, " ")
			out[i] = column{name: name, def: rest, since: since}
		}
		return out
	}
	return []table{
		{name: s.Prefix + "schema", quoted: s.T.Schema,
			columns: cols(1, "id "+small+" PRIMARY KEY", "version "+big+" NOT NULL")},
		{name: s.Prefix + "migrations", quoted: s.T.Migrations, columns: append(cols(1,
			"name "+key+" PRIMARY KEY",
			"phase "+key+" NOT NULL",
			"version "+big+" NOT NULL",
			"created_at "+big+" NOT NULL",
			"updated_at "+big+" NOT NULL",
			"backfill_checkpoint "+text,
			"backfill_rows "+big+" NOT NULL DEFAULT 0",
			"backfill_total "+big+" NOT NULL DEFAULT 0",
			"backfill_started_at "+big,
			"backfill_done_at "+big,
			"backfill_paused "+small+" NOT NULL DEFAULT 0",
			"backfill_canceled "+small+" NOT NULL DEFAULT 0",
			"lease_owner "+text,
			"lease_until "+big,
			"verified_at "+big,
			"verify_clean "+small,
			"verify_rows "+big,
			"verify_diffs "+big,
			"verify_detail "+text,
		), cols(3,
			"backfill_rate_limit "+float+" NOT NULL DEFAULT 0",
			"backfill_batch_size "+big+" NOT NULL DEFAULT 0",
			"backfill_settings "+big+" NOT NULL DEFAULT 0",
			"backfill_rate "+float+" NOT NULL DEFAULT 0",
			"backfill_samples "+text,
			"backfill_throttled "+text,
			"ceiling_stage "+key,
			"ceiling_set_at "+big,
			"ceiling_until "+big,
			"ceiling_trigger "+text,
			"ceiling_figures "+text,
			"ceiling_instance "+text,
			"ceiling_lifted_at "+big,
			"ceiling_version "+big+" NOT NULL DEFAULT 0",
			"verify_run_started_at "+big,
			"verify_run_owner "+text,
			"verify_run_rows "+big+" NOT NULL DEFAULT 0",
			"verify_run_total "+big+" NOT NULL DEFAULT 0",
			"verify_run_at "+big,
		)...)},
		{name: s.Prefix + "events", quoted: s.T.Events, columns: cols(1,
			"id "+d.AutoIncrementPK(),
			"migration "+key+" NOT NULL",
			"at "+big+" NOT NULL",
			"actor "+text+" NOT NULL",
			"kind "+key+" NOT NULL",
			"from_phase "+key+" NOT NULL",
			"to_phase "+key+" NOT NULL",
			"version "+big+" NOT NULL",
			"reason "+text+" NOT NULL",
			"detail "+text+" NOT NULL",
		)},
		{name: s.Prefix + "repairs", quoted: s.T.Repairs, columns: append(cols(1,
			"id "+d.AutoIncrementPK(),
			"migration "+key+" NOT NULL",
			"op "+key+" NOT NULL",
			"entity_key "+key+" NOT NULL",
			"target "+small+" NOT NULL",
			"stage "+key+" NOT NULL",
			"reason "+key+" NOT NULL",
			"error "+text+" NOT NULL",
			"created_at "+big+" NOT NULL",
			"attempts "+big+" NOT NULL DEFAULT 0",
			"next_attempt_at "+big+" NOT NULL",
			"last_error "+text+" NOT NULL",
			"done_at "+big,
		), cols(2,
			"recorded_at "+big,
			"records "+big+" NOT NULL DEFAULT 1",
			"open_entry "+small,
		)...)},
		{name: s.Prefix + "instances", quoted: s.T.Instances, columns: cols(1,
			"migration "+key+" NOT NULL",
			"instance "+key+" NOT NULL",
			"stage "+key+" NOT NULL",
			"seen_at "+big+" NOT NULL",
		), constraint: "PRIMARY KEY (migration, instance)"},
		{name: s.Prefix + "backfill_ranges", quoted: s.T.Ranges, since: 3, columns: cols(3,
			"migration "+key+" NOT NULL",
			"range_no "+big+" NOT NULL",
			"range_from "+text,
			"range_to "+text,
			"range_checkpoint "+text,
			"range_rows "+big+" NOT NULL DEFAULT 0",
			"lease_owner "+text,
			"lease_until "+big,
			"done_at "+big,
		), constraint: "PRIMARY KEY (migration, range_no)"},
		{name: s.Prefix + "verify_ranges", quoted: s.T.VerifyRanges, since: 3, columns: cols(3,
			"migration "+key+" NOT NULL",
			"run_at "+big+" NOT NULL",
			"range_no "+big+" NOT NULL",
			"range_from "+text,
			"range_to "+text,
			"lease_owner "+text,
			"lease_until "+big,
			"done_at "+big,
			"old_rows "+big+" NOT NULL DEFAULT 0",
			"new_rows "+big+" NOT NULL DEFAULT 0",
			"drilled "+big+" NOT NULL DEFAULT 0",
			"missing "+big+" NOT NULL DEFAULT 0",
			"extra "+big+" NOT NULL DEFAULT 0",
			"changed "+big+" NOT NULL DEFAULT 0",
			"sample_keys "+text,
			"stored_at "+big,
		), constraint: "PRIMARY KEY (migration, range_no)"},
	}
}

// indexes returns the indexes of the metadata tables.
func (s *Store) indexes() []index {
	p := s.Prefix
	return []index{
		{sqldialect.Index{Name: p + "events_migration", Table: p + "events", Columns: []string{"migration", "id"}}, 1},
		{sqldialect.Index{Name: p + "repairs_pending", Table: p + "repairs", Columns: []string{"migration", "done_at", "next_attempt_at"}}, 1},
		{sqldialect.Index{Name: p + "repairs_open", Table: p + "repairs", Unique: true,
			Columns: []string{"migration", "op", "entity_key", "target", "open_entry"}}, 2},
	}
}

// createTable returns the CREATE TABLE statement of t, with IF NOT EXISTS
// if ifNotExists.
func createTable(t table, ifNotExists bool) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE ")
	if ifNotExists {
		b.WriteString("IF NOT EXISTS ")
	}
	b.WriteString(t.quoted + " (")
	for i, c := range t.columns {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n\t" + c.name + " " + c.def)
	}
	if t.constraint != "" {
		b.WriteString(",\n\t" + t.constraint)
	}
	b.WriteString("\n)")
	return b.String()
}

// DDL returns the statements that create the metadata tables at the schema
// version given, which must be the newest this package knows, and record
// that version: the CREATE TABLE and CREATE INDEX statements, without IF
// NOT EXISTS, and an INSERT into the schema table.
func (s *Store) DDL(version int64) ([]string, error) {
	var out []string
	for _, t := range s.tables() {
		out = append(out, createTable(t, false))
	}
	for _, ix := range s.indexes() {
		q, err := s.Dialect.CreateIndexSQL(ix.ix)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return append(out, `INSERT INTO `+s.T.Schema+` (id, version) VALUES (1, `+strconv.FormatInt(version, 10)+`)`), nil
}

// UpgradeDDL returns the statements that bring metadata tables of schema
// version from up to version: the columns and indexes each step between
// adds, and an UPDATE of the version recorded. It returns none if from is
// version.
func (s *Store) UpgradeDDL(from, version int64) ([]string, error) {
	if from < 1 || from > version {
		return nil, fmt.Errorf("schema version %d is not one this library upgrades from (1 to %d)", from, version)
	}
	if from == version {
		return nil, nil
	}
	var out []string
	for _, t := range s.tables() {
		if t.since > from {
			out = append(out, createTable(t, false))
			continue
		}
		for _, c := range t.columns {
			if c.since > from {
				out = append(out, `ALTER TABLE `+t.quoted+` ADD COLUMN `+c.name+` `+c.def)
			}
		}
	}
	for _, ix := range s.indexes() {
		if ix.since > from {
			q, err := s.Dialect.CreateIndexSQL(ix.ix)
			if err != nil {
				return nil, err
			}
			out = append(out, q)
		}
	}
	return append(out, `UPDATE `+s.T.Schema+` SET version = `+strconv.FormatInt(version, 10)+` WHERE id = 1`), nil
}

// Migrate creates the tables of the schema version given, or checks
// those already there, bringing tables of an older version up to it. It
// refuses, creating nothing, tables whose schema is newer.
//
// The versions:
//
//  1. the first tables;
//  2. the repairs table gains recorded_at (when the entry was last
//     recorded; NULL for created_at), records (how many records it holds)
//     and open_entry (1 on the one pending entry of an operation, key and
//     target that new records of them join, NULL otherwise), with a unique
//     index that keeps that entry one. Entries of version 1 have a NULL
//     open_entry: they are repaired as before, and records join a new one;
//  3. the migrations table gains the backfill's settings, which operators
//     change while it runs: backfill_rate_limit (rows per second, 0 for
//     none) and backfill_batch_size (keys, 0 for none), with
//     backfill_settings, a number that every change of them bumps; and what
//     its runner measures: backfill_rate (rows per second over its recent
//     batches) and backfill_samples (its progress over time, see
//     [EncodeSamples]); and the stage ceiling a demotion sets:
//     ceiling_stage (the highest stage allowed, NULL if none),
//     ceiling_set_at, ceiling_until (the end of its cool-down),
//     ceiling_trigger, ceiling_figures and ceiling_instance (what fired,
//     on what figures, where), ceiling_lifted_at (the last lift, for the
//     quiet period after it) and ceiling_version, a number that every
//     demotion and lift bumps, their compare-and-swap token; and the progress
//     of a running verification:
//     verify_run_started_at (when it started; NULL when none runs),
//     verify_run_owner (who runs it), verify_run_rows (rows compared so
//     far), verify_run_total (the rows it expects to compare, 0 if
//     unknown) and verify_run_at (when it last recorded its progress);
//     and the table backfill_ranges, the key ranges of a partitioned
//     backfill, one row per range (migration, range_no from 0 in key
//     order): its bounds range_from (exclusive; NULL from the first key)
//     and range_to (inclusive; NULL to the last), encoded as checkpoints
//     are, its own checkpoint range_checkpoint and rows range_rows, its
//     lease (lease_owner, lease_until) and done_at; and the table
//     verify_ranges, the key ranges of a resumable verification
//     (verify.WithResume), one row per range (migration, range_no from 0
//     in key order) of the one run of a migration (run_at, when it
//     started): its bounds range_from and range_to (NULL where open, "i"
//     and the decimal of an integer key or "s" and a text key otherwise),
//     its lease (lease_owner, lease_until), done_at, and what its
//     comparison found: old_rows, new_rows, drilled (1 if read row by
//     row), missing, extra, changed and sample_keys (the first differing
//     keys, a JSON array); stored_at, on range 0, when the run that found
//     every range done took on storing the result (the ranges stay until
//     the next verification starts, for every run to read).
//
// Each step only adds, and is safe to run from any number of instances at
// once.
func (s *Store) Migrate(ctx context.Context, version int64) error {
	// A newer library's tables are refused before anything is created.
	if err := s.refuseNewer(ctx, version); err != nil {
		return err
	}
	tables := s.tables()
	for _, t := range tables {
		if _, err := s.DB.ExecContext(ctx, createTable(t, true)); err != nil {
			return fmt.Errorf("expandcontract: create metadata tables: %w", err)
		}
	}
	v, recorded, err := s.schemaVersion(ctx, version)
	if err != nil {
		return err
	}
	// New tables, or tables whose first Open stopped short, are not
	// recorded yet: each step finds done what is done.
	for _, t := range tables {
		for _, c := range t.columns {
			if c.since > 1 && (!recorded || v < c.since) {
				if err := s.addColumn(ctx, t.quoted, c); err != nil {
					return err
				}
			}
		}
	}
	for _, ix := range s.indexes() {
		if err := s.Dialect.CreateIndex(ctx, s.DB, ix.ix); err != nil {
			return fmt.Errorf("expandcontract: create metadata indexes: %w", err)
		}
	}
	if !recorded {
		// Record the schema version once; a concurrent Open may win the insert.
		_, err = s.DB.ExecContext(ctx, s.Q(`INSERT INTO `+s.T.Schema+` (id, version) VALUES (1, ?)`), version)
		if err != nil && !s.Dialect.IsUniqueViolation(err) {
			return fmt.Errorf("expandcontract: record schema version: %w", err)
		}
		return nil
	}
	if v < version {
		if _, err := s.DB.ExecContext(ctx, s.Q(`UPDATE `+s.T.Schema+` SET version = ? WHERE id = 1 AND version < ?`),
			version, version); err != nil {
			return fmt.Errorf("expandcontract: record schema version %d: %w", version, err)
		}
	}
	return nil
}

// refuseNewer returns the error for tables of a schema newer than version,
// or nil, also when there are no tables yet.
func (s *Store) refuseNewer(ctx context.Context, version int64) error {
	var existing int64
	if err := s.DB.GetContext(ctx, &existing, `SELECT version FROM `+s.T.Schema+` WHERE id = 1`); err == nil && existing > version {
		return s.newerErr(existing, version)
	}
	return nil
}

func (s *Store) newerErr(existing, version int64) error {
	return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
		ErrNewerSchema, s.Prefix, existing, version)
}

// schemaVersion reads the schema version recorded; recorded is false if
// the schema table holds none. It refuses a version newer than version
// and one below 1.
func (s *Store) schemaVersion(ctx context.Context, version int64) (v int64, recorded bool, err error) {
	err = s.DB.GetContext(ctx, &v, `SELECT version FROM `+s.T.Schema+` WHERE id = 1`)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("expandcontract: read schema version: %w", err)
	case v > version:
		return v, true, s.newerErr(v, version)
	case v < 1:
		return v, true, fmt.Errorf("%w: schema version %d in %s", ErrCorrupt, v, s.T.Schema)
	}
	return v, true, nil
}

// Check checks, creating and changing nothing, that the metadata tables,
// their columns and their indexes exist and that the schema table records
// version. Its error names everything missing and wraps [ErrSchemaMissing];
// for tables of a newer version it wraps [ErrNewerSchema].
func (s *Store) Check(ctx context.Context, version int64) error {
	var missing []string
	tables := s.tables()
	for _, t := range tables {
		if !s.readable(ctx, t.quoted, "1") {
			missing = append(missing, "table "+t.name)
			continue
		}
		var cols []string
		for _, c := range t.columns {
			if !s.readable(ctx, t.quoted, c.name) {
				cols = append(cols, c.name)
			}
		}
		if len(cols) > 0 {
			missing = append(missing, fmt.Sprintf("column %s of table %s", strings.Join(cols, ", "), t.name))
		}
	}
	for _, ix := range s.indexes() {
		if slices.Contains(missing, "table "+ix.ix.Table) {
			continue
		}
		ok, err := s.Dialect.IndexExists(ctx, s.DB, ix.ix)
		if err != nil {
			return fmt.Errorf("expandcontract: check metadata indexes: %w", err)
		}
		if !ok {
			missing = append(missing, "index "+ix.ix.Name+" on "+ix.ix.Table)
		}
	}
	if !slices.Contains(missing, "table "+tables[0].name) {
		v, recorded, err := s.schemaVersion(ctx, version)
		switch {
		case errors.Is(err, ErrNewerSchema):
			return err
		case err != nil:
			return err
		case !recorded:
			missing = append(missing, "the schema version in table "+tables[0].name)
		case v < version:
			missing = append(missing, fmt.Sprintf("schema version %d (the tables are at version %d; "+
				"run the upgrade statements from version %d)", version, v, v))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: tables %s* lack %s", ErrSchemaMissing, s.Prefix, strings.Join(missing, "; "))
	}
	return nil
}

// readable reports whether expr can be selected from the table quoted.
func (s *Store) readable(ctx context.Context, quoted, expr string) bool {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+expr+` FROM `+quoted+` WHERE 1 = 0`)
	if err != nil {
		return false
	}
	return rows.Close() == nil
}

// addColumn adds c to the table quoted unless it is there: added before,
// or by another instance at the same time.
func (s *Store) addColumn(ctx context.Context, quoted string, c column) error {
	if s.readable(ctx, quoted, c.name) {
		return nil
	}
	if _, err := s.DB.ExecContext(ctx, `ALTER TABLE `+quoted+` ADD COLUMN `+c.name+` `+c.def); err != nil &&
		!s.readable(ctx, quoted, c.name) {
		return fmt.Errorf("expandcontract: add column %s to %s: %w", c.name, quoted, err)
	}
	return nil
}
