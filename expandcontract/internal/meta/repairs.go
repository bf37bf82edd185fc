package meta

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// RepairStuckAt is the next_attempt_at of a repair-log entry that used up
// its attempts: later than any clock, so that no repairer claims it until
// it is made due again.
const RepairStuckAt = math.MaxInt64

// RepairCount is the backlog of the repair log of one migration.
type RepairCount struct {
	Migration string        `db:"migration"`
	Pending   int64         `db:"pending"` // entries not repaired, the stuck ones included
	Stuck     int64         `db:"stuck"`   // entries that used up their attempts
	Oldest    sql.NullInt64 `db:"oldest"`  // when the oldest pending entry was first recorded
}

// RepairCounts counts the pending and the stuck entries of the repair log
// of the migration name, or of every migration if name is "", with one
// statement, one count a migration. A migration without pending entries
// has none.
func (s *Store) RepairCounts(ctx context.Context, name string) ([]RepairCount, error) {
	where, args := s.ofMigration(name, int64(RepairStuckAt))
	var out []RepairCount
	err := s.DB.SelectContext(ctx, &out, s.Q(`SELECT migration, COUNT(*) AS pending,
		COALESCE(SUM(CASE WHEN next_attempt_at = ? THEN 1 ELSE 0 END), 0) AS stuck, MIN(created_at) AS oldest
		FROM `+s.T.Repairs+` WHERE done_at IS NULL`+where+` GROUP BY migration ORDER BY migration`), args...)
	return out, err
}

// RepairHistory returns how many entries of the repair log of the
// migration name, or of every migration if name is "", were pending at
// each of the times at, in microseconds of the store's clock in ascending
// order: entries first recorded by then and not repaired by then, the
// stuck ones included. It reads the entries with one statement, and gives
// one count for each time a migration, of the migrations with such
// entries. Entries deleted since, and the times an entry repaired was
// recorded again, are not known: the counts are those the table holds now.
func (s *Store) RepairHistory(ctx context.Context, name string, at []int64) (map[string][]int64, error) {
	if len(at) == 0 {
		return nil, nil
	}
	var cols strings.Builder
	var args []any
	for i, t := range at {
		fmt.Fprintf(&cols, ",\n\tSUM(CASE WHEN created_at <= ? AND (done_at IS NULL OR done_at > ?) THEN 1 ELSE 0 END) AS b%d", i)
		args = append(args, t, t)
	}
	where, margs := s.ofMigration(name, at[0], at[len(at)-1])
	rows, err := s.DB.QueryContext(ctx, s.Q(`SELECT migration`+cols.String()+` FROM `+s.T.Repairs+
		` WHERE (done_at IS NULL OR done_at > ?) AND created_at <= ?`+where+` GROUP BY migration`), append(args, margs...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var migration string
		counts := make([]sql.NullInt64, len(at))
		dst := []any{&migration}
		for i := range counts {
			dst = append(dst, &counts[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		n := make([]int64, len(at))
		for i, c := range counts {
			n[i] = c.Int64
		}
		out[migration] = n
	}
	return out, rows.Err()
}

// ofMigration returns the condition " AND migration = ?" for name, or ""
// for "" (every migration), and the arguments args followed by its own.
func (s *Store) ofMigration(name string, args ...any) (string, []any) {
	if name == "" {
		return "", args
	}
	return " AND migration = ?", append(args, name)
}
