package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/sqlrow"
)

// backfill copies to dst every row of src that dst lacks or holds an older
// version of, walking src in key order a batch at a time, and returns how
// many rows it copied.
func backfill(ctx context.Context, src, dst *sqlRepo, batch int) (int, error) {
	copied, after := 0, ""
	for {
		var rows []User
		err := src.db.SelectContext(ctx, &rows, `SELECT id, name, email, version FROM users
			WHERE id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return copied, fmt.Errorf("backfill: read after %q: %w", after, err)
		}
		if len(rows) == 0 {
			return copied, nil
		}
		for _, u := range rows {
			ok, err := dst.putIfNewer(ctx, u)
			if err != nil {
				return copied, fmt.Errorf("backfill: copy %q: %w", u.ID, err)
			}
			if ok {
				copied++
			}
		}
		after = rows[len(rows)-1].ID
	}
}

// repair empties the repair log with the repair that package sqlrow
// writes: for each recorded key it reads both copies and copies the one
// with the higher version over the other, only over an older version, so
// that a save landing meanwhile is never overwritten. It returns the
// entries and the keys repaired.
func repair(ctx context.Context, log *cutover.MemoryRepairLog, stores [2]*sqlRepo) (entries, keys int, err error) {
	pair := &sqlrow.Pair{
		Old: sqlrow.Store{DB: stores[cutover.Old].db, Rows: stores[cutover.Old].rows},
		New: sqlrow.Store{DB: stores[cutover.New].db, Rows: stores[cutover.New].rows},
	}
	seen := map[string]bool{}
	all := log.Drain()
	for _, e := range all {
		if seen[e.Key] {
			continue // one repair brings both copies of a key together
		}
		seen[e.Key] = true
		if err := pair.Repair(ctx, e); err != nil {
			return len(all), len(seen), fmt.Errorf("repair %q: %w", e.Key, err)
		}
	}
	return len(all), len(seen), nil
}

// identical reports whether both stores hold exactly the same rows, and
// how many rows the old one holds.
func identical(ctx context.Context, stores [2]*sqlRepo) (bool, int, error) {
	var rows [2][]User
	for side, s := range stores {
		var err error
		if rows[side], err = s.all(ctx); err != nil {
			return false, 0, fmt.Errorf("read %s store: %w", cutover.Side(side), err)
		}
	}
	return slices.Equal(rows[cutover.Old], rows[cutover.New]), len(rows[cutover.Old]), nil
}

// lostWrites compares the store with the last acknowledged save of every
// key and returns the keys where that save is missing: the row is absent,
// older, or differs at the same version.
func lostWrites(ctx context.Context, s *sqlRepo, acked map[string]User) ([]string, error) {
	rows, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	have := make(map[string]User, len(rows))
	for _, u := range rows {
		have[u.ID] = u
	}
	var lost []string
	for id, want := range acked {
		got, ok := have[id]
		if !ok || got.Version < want.Version || (got.Version == want.Version && got != want) {
			lost = append(lost, id)
		}
	}
	slices.Sort(lost)
	return lost, nil
}
