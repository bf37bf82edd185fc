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

// indexSQL is the parts of the statement that creates ix: "UNIQUE " or "",
// the quoted index name (schema-qualified on SQLite), and " ON table
// (columns)". It validates every name.
type indexSQL struct {
	unique, name, on string
	schema, table    string // the table's schema ("" if not qualified) and name, unquoted
}

func (d Dialect) indexSQL(ix Index) (indexSQL, error) {
	d.must()
	if err := checkSimple(ix.Name, "an index name"); err != nil {
		return indexSQL{}, fmt.Errorf("sqldialect: create index: %w", err)
	}
	if err := checkIdent(ix.Table); err != nil {
		return indexSQL{}, fmt.Errorf("sqldialect: create index %s: table: %w", ix.Name, err)
	}
	if len(ix.Columns) == 0 {
		return indexSQL{}, fmt.Errorf("sqldialect: create index %s: no columns", ix.Name)
	}
	cols := make([]string, len(ix.Columns))
	for i, c := range ix.Columns {
		if err := checkSimple(c, "a column name"); err != nil {
			return indexSQL{}, fmt.Errorf("sqldialect: create index %s: column: %w", ix.Name, err)
		}
		cols[i] = d.Quote(c)
	}
	p := indexSQL{name: d.Quote(ix.Name)}
	var qualified bool
	p.schema, p.table, qualified = strings.Cut(ix.Table, ".")
	if !qualified {
		p.table, p.schema = p.schema, ""
	}
	if ix.Unique {
		p.unique = "UNIQUE "
	}
	p.on = " ON "
	switch {
	case d.k == kindSQLite && qualified:
		// SQLite names the schema on the index, never on the table.
		p.name = d.Quote(p.schema) + "." + p.name
		p.on += d.Quote(p.table)
	case qualified:
		p.on += d.Quote(p.schema) + "." + d.Quote(p.table)
	default:
		p.on += d.Quote(p.table)
	}
	p.on += " (" + strings.Join(cols, ", ") + ")"
	return p, nil
}

// CreateIndexSQL returns the plain statement that creates ix, CREATE
// [UNIQUE] INDEX name ON table (columns), with every name validated as
// [Dialect.CreateIndex] does and quoted, for a schema tool to run once. It
// fails where the index exists; [Dialect.CreateIndex] does not.
func (d Dialect) CreateIndexSQL(ix Index) (string, error) {
	p, err := d.indexSQL(ix)
	if err != nil {
		return "", err
	}
	return "CREATE " + p.unique + "INDEX " + p.name + p.on, nil
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
	p, err := d.indexSQL(ix)
	if err != nil {
		return err
	}
	if d.k != kindMySQL {
		_, err := ex.ExecContext(ctx, "CREATE "+p.unique+"INDEX IF NOT EXISTS "+p.name+p.on)
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
	exists, err := d.indexExists(ctx, ex, p.schema, p.table, ix.Name)
	if err != nil {
		return fmt.Errorf("sqldialect: create index %s: look up existing index: %w", ix.Name, err)
	}
	if exists {
		return nil
	}
	if _, err := ex.ExecContext(ctx, "CREATE "+p.unique+"INDEX "+p.name+p.on); err != nil {
		if myNumber(err) == myDupKeyName {
			return nil // created concurrently
		}
		return fmt.Errorf("sqldialect: create index %s: %w", ix.Name, err)
	}
	return nil
}

// IndexExists reports whether the table ix.Table has an index named
// ix.Name, whatever its columns, looking it up in the database's catalog:
// sqlite_master on SQLite, pg_indexes on PostgreSQL (in the table's schema,
// or the current one) and information_schema on MySQL (in the table's
// database, or the current one). Names are validated as
// [Dialect.CreateIndex] does; ix.Columns is not looked at.
func (d Dialect) IndexExists(ctx context.Context, q sqlx.QueryerContext, ix Index) (bool, error) {
	if len(ix.Columns) == 0 {
		ix.Columns = []string{"x"} // only names are checked
	}
	p, err := d.indexSQL(ix)
	if err != nil {
		return false, err
	}
	ok, err := d.indexExists(ctx, q, p.schema, p.table, ix.Name)
	if err != nil {
		return false, fmt.Errorf("sqldialect: look up index %s: %w", ix.Name, err)
	}
	return ok, nil
}

// indexExists looks the index name of schema.table up; an empty schema
// means the current one.
func (d Dialect) indexExists(ctx context.Context, q sqlx.QueryerContext, schema, table, name string) (bool, error) {
	var (
		query string
		args  = []any{table, name}
	)
	switch d.k {
	case kindSQLite:
		master := "sqlite_master"
		if schema != "" {
			master = d.Quote(schema) + "." + master
		}
		query = `SELECT COUNT(*) FROM ` + master + ` WHERE type = 'index' AND tbl_name = ? AND name = ?`
	case kindPostgres:
		query = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2`
		if schema != "" {
			query = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = $3 AND tablename = $1 AND indexname = $2`
			args = append(args, schema)
		}
	default:
		query = `SELECT COUNT(*) FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?`
		if schema != "" {
			query = `SELECT COUNT(*) FROM information_schema.STATISTICS
		WHERE TABLE_NAME = ? AND INDEX_NAME = ? AND TABLE_SCHEMA = ?`
			args = append(args, schema)
		}
	}
	var n int
	if err := q.QueryRowxContext(ctx, query, args...).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
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
