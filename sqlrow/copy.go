package sqlrow

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
)

// CopyRange copies the rows of src whose keys are after from (nil: from the
// first key) up to and including to (nil: to the last), read from the
// database srcDB, into dst in dstDB with [Rows.Put]: each row only over a
// lower version, so that a copy never overwrites a newer write that reached
// dst since it was read. It returns the number of rows read. The range is
// read in one query and held in memory, so keep it to a batch.
//
// It is the body of a backfill batch between two tables or two databases:
// a backfill.BatchFunc calls it with the batch's key range. src and dst
// must have as many value columns, in the same order.
func CopyRange(ctx context.Context, src *Rows, srcDB sqlx.QueryerContext, dst *Rows, dstDB sqlx.ExtContext, from, to any) (int64, error) {
	if n, m := len(src.table.Columns), len(dst.table.Columns); n != m {
		return 0, fmt.Errorf("%w: copy %s to %s: %d value columns against %d", ErrInvalidInput, src.table.Name, dst.table.Name, n, m)
	}
	rows, err := src.readRange(ctx, srcDB, from, to)
	if err != nil {
		return 0, err
	}
	for _, row := range rows {
		if _, err := dst.Put(ctx, dstDB, row.key, row.Version, row.Values...); err != nil {
			return 0, err
		}
	}
	return int64(len(rows)), nil
}

type keyedRow struct {
	key any
	Row
}

func (r *Rows) readRange(ctx context.Context, db sqlx.QueryerContext, from, to any) ([]keyedRow, error) {
	q, args, key := r.scan, []any(nil), r.key
	switch {
	case from != nil && to != nil:
		q, args = q+" WHERE "+key+" > ? AND "+key+" <= ?", []any{from, to}
	case from != nil:
		q, args = q+" WHERE "+key+" > ?", []any{from}
	case to != nil:
		q, args = q+" WHERE "+key+" <= ?", []any{to}
	}
	rows, err := db.QueryxContext(ctx, r.dialect.Rebind(q+" ORDER BY "+key), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlrow: %s: read range: %w", r.table.Name, err)
	}
	defer rows.Close()
	var out []keyedRow
	for rows.Next() {
		kr := keyedRow{Row: Row{Found: true, Values: make([]any, len(r.table.Columns))}}
		var v int64
		dest := append(make([]any, 0, len(kr.Values)+2), &kr.key, &v)
		for i := range kr.Values {
			dest = append(dest, &kr.Values[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sqlrow: %s: read range: %w", r.table.Name, err)
		}
		kr.Version = cutover.Version(v)
		if b, ok := kr.key.([]byte); ok {
			kr.key = string(b)
		}
		textual(kr.Values)
		out = append(out, kr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlrow: %s: read range: %w", r.table.Name, err)
	}
	return out, nil
}
