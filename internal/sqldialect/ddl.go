package sqldialect

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Index describes an index for [Dialect.CreateIndex].
type Index struct {
	// Name is the index's name, one identifier without a schema. Index
	// names are per schema on SQLite and PostgreSQL but per table on
	// MySQL, so make them unique in the schema, for example by starting
	// them with the table's name.
	Name string
	// Table is the indexed table, "table" or "schema.table".
	Table string
	// Columns are the indexed columns, in order; at least one.
	Columns []string
	// Unique makes it a unique index. If false, the index allows
	// duplicates.
	Unique bool
}

// CreateIndex creates the index ix unless an index of that name already
// exists (in the table's schema on SQLite and PostgreSQL, on the table on
// MySQL), leaving an existing one unchanged even if it is defined
// differently. All names are validated with [ValidIdentifier] and quoted;
// an invalid one is an error that wraps [ErrInvalidIdentifier]. SQLite,
// PostgreSQL and MariaDB have CREATE INDEX IF NOT EXISTS, which MySQL
// lacks; on the mysql dialect CreateIndex therefore
// looks the index up in information_schema first, and takes an index
// created by someone else between the look-up and the CREATE INDEX as
// existing, so it works on both MySQL and MariaDB. Sessions creating the
// same index at the same time all succeed on every database. On MySQL and MariaDB a
// CREATE INDEX commits any open transaction, as all DDL does there.
func (d Dialect) CreateIndex(ctx context.Context, ex sqlx.ExtContext, ix Index) error {
	d.must()
	if err := checkSimple(ix.Name, "an index name"); err != nil {
		return fmt.Errorf("sqldialect: create index: %w", err)
	}
	name := d.Quote(ix.Name)
	if err := checkIdent(ix.Table); err != nil {
		return fmt.Errorf("sqldialect: create index %s: table: %w", ix.Name, err)
	}
	if len(ix.Columns) == 0 {
		return fmt.Errorf("sqldialect: create index %s: no columns", ix.Name)
	}
	cols := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		if err := checkSimple(c, "a column name"); err != nil {
			return fmt.Errorf("sqldialect: create index %s: column: %w", ix.Name, err)
		}
		cols[i] = d.Quote(c)
	}
	schema, table, qualified := strings.Cut(ix.Table, ".")
	if !qualified {
		table, schema = schema, ""
	}

	unique := ""
	if ix.Unique {
		unique = "UNIQUE "
	}
	on := " ON "
	switch {
	case d.k == kindSQLite && qualified:
		// SQLite names the schema on the index, never on the table.
		name = d.Quote(schema) + "." + name
		on += d.Quote(table)
	case qualified:
		on += d.Quote(schema) + "." + d.Quote(table)
	default:
		on += d.Quote(table)
	}
	columns := " (" + strings.Join(cols, ", ") + ")"

	if d.k != kindMySQL {
		_, err := ex.ExecContext(ctx, "CREATE "+unique+"INDEX IF NOT EXISTS "+name+on+columns)
		if err != nil && d.k == kindPostgres {
			// Two sessions creating the same index at once can both pass
			// the IF NOT EXISTS check; the loser fails on the catalog's
			// unique index or finds the relation there.
			if s := pgState(err); s == pgUniqueViolation || s == pgDuplicateTable {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("sqldialect: create index %s: %w", ix.Name, err)
		}
		return nil
	}

	var schemaArg any // nil: the connection's current database
	if qualified {
		schemaArg = schema
	}
	var n int
	if err := ex.QueryRowxContext(ctx, `SELECT COUNT(*) FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND INDEX_NAME = ?`,
		schemaArg, table, ix.Name).Scan(&n); err != nil {
		return fmt.Errorf("sqldialect: create index %s: look up existing index: %w", ix.Name, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := ex.ExecContext(ctx, "CREATE "+unique+"INDEX "+name+on+columns); err != nil {
		if myNumber(err) == myDupKeyName {
			return nil // created concurrently
		}
		return fmt.Errorf("sqldialect: create index %s: %w", ix.Name, err)
	}
	return nil
}

// InsertReturningID runs query, an INSERT of one row into a table whose key
// column idColumn is an [Dialect.AutoIncrementPK], and returns the key the
// database gave the row. query uses the dialect's placeholders (see
// [Dialect.Rebind]) and must not end in a semicolon. On PostgreSQL, whose
// pgx driver has no LastInsertId, it appends RETURNING idColumn (quoted) to
// the query and reads the key from the result; on SQLite and MySQL it runs
// the query and returns the result's LastInsertId. idColumn is validated
// with [ValidIdentifier].
func (d Dialect) InsertReturningID(ctx context.Context, ex sqlx.ExtContext, query, idColumn string, args ...any) (int64, error) {
	d.must()
	if err := checkSimple(idColumn, "a column name"); err != nil {
		return 0, fmt.Errorf("sqldialect: insert returning id: %w", err)
	}
	col := d.Quote(idColumn)
	if d.k == kindPostgres {
		var id int64
		if err := ex.QueryRowxContext(ctx, query+" RETURNING "+col, args...).Scan(&id); err != nil {
			return 0, fmt.Errorf("sqldialect: insert returning id: %w", err)
		}
		return id, nil
	}
	res, err := ex.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqldialect: insert returning id: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("sqldialect: insert returning id: last insert id: %w", err)
	}
	return id, nil
}
