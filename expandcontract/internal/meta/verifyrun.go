package meta

import (
	"context"
	"time"
)

// VerifyRun is the progress of a running verification, as the migrations
// table records it.
type VerifyRun struct {
	Started time.Time // when it started, by the store's clock
	Owner   string    // who runs it
	Rows    int64     // rows of the old side compared so far
	Total   int64     // the rows it expects to compare; 0 if unknown
}

// StartVerifyRun marks a verification of the migration name as running,
// with one UPDATE, replacing the mark of any other: the one that started
// last shows.
func (s *Store) StartVerifyRun(ctx context.Context, name string, r VerifyRun) error {
	_, err := s.DB.ExecContext(ctx, s.Q(`UPDATE `+s.T.Migrations+` SET verify_run_started_at = ?, verify_run_owner = ?,
	verify_run_rows = ?, verify_run_total = ?, verify_run_at = ? WHERE name = ?`),
		Micros(r.Started), r.Owner, r.Rows, r.Total, Micros(s.Now()), name)
	return err
}

// UpdateVerifyRun records the rows r compared so far, with one UPDATE,
// while r's mark is the one recorded; if end, it also clears the mark.
func (s *Store) UpdateVerifyRun(ctx context.Context, name string, r VerifyRun, end bool) error {
	started := "verify_run_started_at"
	if end {
		started = "NULL"
	}
	_, err := s.DB.ExecContext(ctx, s.Q(`UPDATE `+s.T.Migrations+` SET verify_run_started_at = `+started+`,
	verify_run_rows = ?, verify_run_at = ? WHERE name = ? AND verify_run_started_at = ? AND verify_run_owner = ?`),
		r.Rows, Micros(s.Now()), name, Micros(r.Started), r.Owner)
	return err
}
