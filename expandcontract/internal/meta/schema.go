package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Migrate creates the tables of the schema version given, or checks
// those already there. It refuses, creating nothing, tables whose schema is
// newer.
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
	done_at %[4]s
)`, s.T.Repairs, d.AutoIncrementPK(), key, big, small, text),
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
	for _, ix := range []sqldialect.Index{
		{Name: s.Prefix + "events_migration", Table: s.Prefix + "events", Columns: []string{"migration", "id"}},
		{Name: s.Prefix + "repairs_pending", Table: s.Prefix + "repairs", Columns: []string{"migration", "done_at", "next_attempt_at"}},
	} {
		if err := d.CreateIndex(ctx, s.DB, ix); err != nil {
			return fmt.Errorf("expandcontract: create metadata indexes: %w", err)
		}
	}
	// Record the schema version once; a concurrent Open may win the insert.
	var v int64
	err := s.DB.GetContext(ctx, &v, s.Q(`SELECT version FROM `+s.T.Schema+` WHERE id = 1`))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = s.DB.ExecContext(ctx, s.Q(`INSERT INTO `+s.T.Schema+` (id, version) VALUES (1, ?)`), version)
		if err != nil && !s.Dialect.IsUniqueViolation(err) {
			return fmt.Errorf("expandcontract: record schema version: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("expandcontract: read schema version: %w", err)
	case v > version:
		return fmt.Errorf("%w: tables %s* are at version %d, this library knows %d; upgrade the library",
			ErrNewerSchema, s.Prefix, v, version)
	case v < 1:
		return fmt.Errorf("%w: schema version %d in %s", ErrCorrupt, v, s.T.Schema)
	}
	return nil
}
