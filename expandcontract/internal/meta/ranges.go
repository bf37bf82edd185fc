package meta

import "context"

// RangeCount is how far the ranges of a partitioned backfill are.
type RangeCount struct {
	Migration string `db:"migration"`
	Total     int64  `db:"total"`       // ranges
	Done      int64  `db:"done"`        // ranges done
	Leased    int64  `db:"leased"`      // ranges not done whose lease runs past the time asked about
	Rows      int64  `db:"rows_copied"` // rows the ranges' batches copied
}

// RangeCounts returns the range counts of the migration name, or of every
// migration if name is "", by name, with one statement, the leases as of
// at (microseconds of the store's clock). A migration whose backfill was
// not split into ranges has none.
func (s *Store) RangeCounts(ctx context.Context, name string, at int64) ([]RangeCount, error) {
	where, args := s.ofMigration(name, at)
	var out []RangeCount
	err := s.DB.SelectContext(ctx, &out, s.Q(`SELECT migration, COUNT(*) AS total,
		COALESCE(SUM(CASE WHEN done_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS done,
		COALESCE(SUM(CASE WHEN done_at IS NULL AND lease_until > ? THEN 1 ELSE 0 END), 0) AS leased,
		COALESCE(SUM(range_rows), 0) AS rows_copied
		FROM `+s.T.Ranges+` WHERE 1 = 1`+where+` GROUP BY migration ORDER BY migration`), args...)
	return out, err
}
