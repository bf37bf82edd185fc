// Package keyset holds the hand-written keyset loop that the backfill
// runner's benchmarks and e2e/backfillrate measure the runner against. It
// is imported by tests only, and imports nothing but the standard library,
// so that the proof suites' module gains no dependency by it.
package keyset

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
)

// Querier is what [Loop] needs of a database: a *sql.DB or a
// *sqlx.DB.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Loop copies a column of table on PostgreSQL in batches of n keys
// of its integer column id, as one would by hand: find the last key of the
// next batch, run set over the range with "UPDATE table SET set WHERE id >
// $1 AND id <= $2" (each statement commits on its own), repeat. It starts
// below key 0, so the keys must be positive. It is the floor the backfill
// runner's benchmarks measure it against.
func Loop(ctx context.Context, db Querier, table, set string, n int) error {
	next := `SELECT id FROM ` + table + ` WHERE id > $1 ORDER BY id LIMIT 1 OFFSET ` + strconv.Itoa(n-1)
	rest := `SELECT MAX(id) FROM ` + table + ` WHERE id > $1`
	update := `UPDATE ` + table + ` SET ` + set + ` WHERE id > $1 AND id <= $2`
	last := int64(0) // below every key
	for {
		var to sql.NullInt64
		err := db.QueryRowContext(ctx, next, last).Scan(&to)
		if errors.Is(err, sql.ErrNoRows) {
			err = db.QueryRowContext(ctx, rest, last).Scan(&to)
		}
		if err != nil {
			return err
		}
		if !to.Valid {
			return nil
		}
		if _, err := db.ExecContext(ctx, update, last, to.Int64); err != nil {
			return err
		}
		last = to.Int64
	}
}
