package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

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
//     open_entry: they are repaired as before, and records join a new one.
//
// Each step only adds, and is safe to run from any number of instances at
// once.
func (s *Store) Migrate(ctx context.Context, version int64) error {
	// A newer library's tables are refused before anything is created.
	var existing int64
	if err := s.DB.GetContext(ctx, &existing, `SELECT version FROM `+s.T.Schema+` WHERE id = 1`); err == nil && existing > version {
		return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
			ErrNewerSchema, s.Prefix, existing, version)
	}
	d := s.Dialect
	key, text, big, small := d.TypeKeyText(), d.TypeText(), d.TypeBigInt(), d.TypeBool()
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (id %s PRIMARY KEY, version %s NOT NULL)`, s.T.Schema, small, big),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	name %[2]s PRIMARY KEY,
	phase %[2]s NOT NULL,
	version %[3]s NOT NULL,
	created_at %[3]s NOT NULL,
	updated_at %[3]s NOT NULL,
	backfill_checkpoint %[4]s,
	backfill_rows %[3]s NOT NULL DEFAULT 0,
	backfill_total %[3]s NOT NULL DEFAULT 0,
	backfill_started_at %[3]s,
	backfill_done_at %[3]s,
	backfill_paused %[5]s NOT NULL DEFAULT 0,
	backfill_canceled %[5]s NOT NULL DEFAULT 0,
	lease_owner %[4]s,
	lease_until %[3]s,
	verified_at %[3]s,
	verify_clean %[5]s,
	verify_rows %[3]s,
	verify_diffs %[3]s,
	verify_detail %[4]s
)`, s.T.Migrations, key, big, text, small),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id %s,
	migration %s NOT NULL,
	at %s NOT NULL,
	actor %s NOT NULL,
	kind %s NOT NULL,
	from_phase %[6]s NOT NULL,
	to_phase %[6]s NOT NULL,
	version %[4]s NOT NULL,
	reason %[5]s NOT NULL,
	detail %[5]s NOT NULL
)`, s.T.Events, d.AutoIncrementPK(), key, big, text, key),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	id %s,
	migration %s NOT NULL,
	op %[3]s NOT NULL,
	entity_key %[3]s NOT NULL,
	target %[5]s NOT NULL,
	stage %[3]s NOT NULL,
	reason %[3]s NOT NULL,
	error %[6]s NOT NULL,
	created_at %[4]s NOT NULL,
	attempts %[4]s NOT NULL DEFAULT 0,
	next_attempt_at %[4]s NOT NULL,
	last_error %[6]s NOT NULL,
	done_at %[4]s,
	%[7]s
)`, s.T.Repairs, d.AutoIncrementPK(), key, big, small, text, strings.Join(repairsV2Columns(d), ",\n\t")),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	migration %[2]s NOT NULL,
	instance %[2]s NOT NULL,
	stage %[2]s NOT NULL,
	seen_at %[3]s NOT NULL,
	PRIMARY KEY (migration, instance)
)`, s.T.Instances, key, big),
	}
	for _, q := range stmts {
		if _, err := s.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("expandcontract: create metadata tables: %w", err)
		}
	}
	var v int64
	err := s.DB.GetContext(ctx, &v, s.Q(`SELECT version FROM `+s.T.Schema+` WHERE id = 1`))
	recorded := err == nil
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// New tables, or tables whose first Open stopped short: each step
		// below finds done what is done.
	case err != nil:
		return fmt.Errorf("expandcontract: read schema version: %w", err)
	case v > version:
		return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
			ErrNewerSchema, s.Prefix, v, version)
	case v < 1:
		return fmt.Errorf("%w: schema version %d in %s", ErrCorrupt, v, s.T.Schema)
	}
	if !recorded || v < 2 {
		for _, col := range repairsV2Columns(d) {
			if err := s.addColumn(ctx, s.T.Repairs, col); err != nil {
				return err
			}
		}
	}
	for _, ix := range []sqldialect.Index{
		{Name: s.Prefix + "events_migration", Table: s.Prefix + "events", Columns: []string{"migration", "id"}},
		{Name: s.Prefix + "repairs_pending", Table: s.Prefix + "repairs", Columns: []string{"migration", "done_at", "next_attempt_at"}},
		{Name: s.Prefix + "repairs_open", Table: s.Prefix + "repairs", Unique: true,
			Columns: []string{"migration", "op", "entity_key", "target", "open_entry"}},
	} {
		if err := d.CreateIndex(ctx, s.DB, ix); err != nil {
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

// repairsV2Columns are the definitions of the columns that version 2 adds
// to the repairs table.
func repairsV2Columns(d sqldialect.Dialect) []string {
	return []string{
		"recorded_at " + d.TypeBigInt(),
		"records " + d.TypeBigInt() + " NOT NULL DEFAULT 1",
		"open_entry " + d.TypeBool(),
	}
}

// addColumn adds the column def ("name type ...") to table unless it is
// there: added before, or by another instance at the same time.
func (s *Store) addColumn(ctx context.Context, table, def string) error {
	name, _, _ := strings.Cut(def, " ")
	has := func() bool {
		rows, err := s.DB.QueryContext(ctx, `SELECT `+name+` FROM `+table+` WHERE 1 = 0`)
		if err != nil {
			return false
		}
		return rows.Close() == nil
	}
	if has() {
		return nil
	}
	if _, err := s.DB.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+def); err != nil && !has() {
		return fmt.Errorf("expandcontract: add column %s to %s: %w", name, table, err)
	}
	return nil
}
