package verify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// WithResume makes [Verifier.Run] record the key ranges it compares with
// the migration, so that a run that stops, on an error, its context or a
// crash, is resumed by the next run, of this instance or another, which
// compares only the ranges not done yet; and so that runs of several
// instances at once share them. The first run cuts the key space into
// ranges, as a run without the option does, and records them all before
// it compares any (one Boundary call per range, as such a run makes); each
// run then takes one range at a time per worker ([WithConcurrency]) under a
// lease of [RangeLease], compares it and records what it found with the
// range. A range whose lease ran out, its run having died, is taken by
// another; one compared twice so (its first run too slow, or dying after
// the comparison) counts once: the record of a run that lost the lease is
// refused. Differing keys are recorded in the repair log as they are
// found, so a range compared twice records them twice, which the
// migration's repair log keeps as one open entry.
//
// Once every range is done, each run adds up the ranges' findings into the
// [Result], and the first to mark the ranges as stored stores it with the
// migration, as a verification that started when the first run did; the
// ranges stay until the next verification starts. A run that ends while
// other instances' runs still compare ranges waits for them, taking over
// ranges whose leases run out. Every run of the verification returns that
// Result; only one stores it (a crash between its mark and its store
// loses the result: the next verification starts anew). The Result's
// Duration is that of the run that returns it.
//
// The ranges' owners are the verifier's owner ([WithOwner]) and its worker's
// number; a run under the same owner takes back at once the ranges its
// predecessor held, as a process restarted under a stable id does. A
// migration has at most one verification recorded so at a time: every
// verifier of it with WithResume joins it until it ends.
func WithResume() Option {
	return optionFunc(func(c *config) { c.resume = true })
}

// RangeLease is how long a run of a verification with [WithResume] holds
// a key range before another run may take it, measured on the store's
// clock. A range is compared in one lease, so a range must take less
// than that; 10,000 rows take milliseconds.
const RangeLease = 2 * time.Minute

// sharedWait is how often a run that has no range left to take looks
// whether the other runs finished theirs, or left them.
const sharedWait = 100 * time.Millisecond

// shared is the statements of a verification with WithResume.
type shared struct {
	run, stored, insert, pick, take, release, record, undone, sums, keys, remove, store string
}

func (v *Verifier) sharedQueries() shared {
	k := v.k
	vt := k.T.VerifyRanges
	return shared{
		run:    k.Q(`SELECT MIN(run_at) FROM ` + vt + ` WHERE migration = ?`),
		stored: k.Q(`SELECT COUNT(*) FROM ` + vt + ` WHERE migration = ? AND run_at = ? AND stored_at IS NOT NULL`),
		store:  k.Q(`UPDATE ` + vt + ` SET stored_at = ? WHERE migration = ? AND run_at = ? AND range_no = 0 AND stored_at IS NULL`),
		insert: k.Q(`INSERT INTO ` + vt + ` (migration, run_at, range_no, range_from, range_to) VALUES (?, ?, ?, ?, ?)`),
		pick: k.Q(`SELECT range_no, range_from, range_to FROM ` + vt + ` WHERE migration = ? AND run_at = ? AND done_at IS NULL
		AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?) ORDER BY range_no LIMIT 1` + k.Dialect.ForUpdate()),
		take: k.Q(`UPDATE ` + vt + ` SET lease_owner = ?, lease_until = ? WHERE migration = ? AND run_at = ? AND range_no = ?`),
		release: k.Q(`UPDATE ` + vt + ` SET lease_owner = NULL, lease_until = NULL
		WHERE migration = ? AND run_at = ? AND range_no = ? AND lease_owner = ?`),
		record: k.Q(`UPDATE ` + vt + ` SET done_at = ?, old_rows = ?, new_rows = ?, drilled = ?, missing = ?, extra = ?, changed = ?,
		sample_keys = ?, lease_owner = NULL, lease_until = NULL
		WHERE migration = ? AND run_at = ? AND range_no = ? AND lease_owner = ? AND done_at IS NULL`),
		undone: k.Q(`SELECT COUNT(*) FROM ` + vt + ` WHERE migration = ? AND run_at = ? AND done_at IS NULL`),
		sums: k.Q(`SELECT COUNT(*), COALESCE(SUM(old_rows), 0), COALESCE(SUM(new_rows), 0), COALESCE(SUM(drilled), 0),
		COALESCE(SUM(missing), 0), COALESCE(SUM(extra), 0), COALESCE(SUM(changed), 0)
		FROM ` + vt + ` WHERE migration = ? AND run_at = ?`),
		keys:   k.Q(`SELECT sample_keys FROM ` + vt + ` WHERE migration = ? AND run_at = ? AND sample_keys IS NOT NULL ORDER BY range_no`),
		remove: k.Q(`DELETE FROM ` + vt + ` WHERE migration = ? AND run_at = ?`),
	}
}

// encodeBound returns a range's bound as verify_ranges holds it: NULL for
// nil, "i" and the decimal of an int64, "s" and a string.
func encodeBound(k any) (any, error) {
	switch x := k.(type) {
	case nil:
		return nil, nil
	case int64:
		return "i" + strconv.FormatInt(x, 10), nil
	case string:
		return "s" + x, nil
	}
	return nil, fmt.Errorf("key %v of type %T: keys are int64 or string", k, k)
}

// decodeBound reads a bound written by encodeBound.
func decodeBound(s sql.NullString) (any, error) {
	switch {
	case !s.Valid:
		return nil, nil
	case strings.HasPrefix(s.String, "s"):
		return s.String[1:], nil
	case strings.HasPrefix(s.String, "i"):
		return strconv.ParseInt(s.String[1:], 10, 64)
	}
	return nil, fmt.Errorf("%w: verification range bound %q", expandcontract.ErrCorrupt, s.String)
}

// plan returns when the verification of the migration recorded with its
// ranges started, recording it with its ranges first if none is.
func (v *Verifier) plan(ctx context.Context, q shared) (time.Time, error) {
	var at sql.NullInt64
	if err := v.k.DB.GetContext(ctx, &at, q.run, v.name); err != nil {
		return time.Time{}, fmt.Errorf("read the recorded verification: %w", err)
	}
	if at.Valid {
		var stored int64
		if err := v.k.DB.GetContext(ctx, &stored, q.stored, v.name, at.Int64); err != nil {
			return time.Time{}, fmt.Errorf("read the recorded verification: %w", err)
		}
		if stored == 0 {
			return meta.FromMicros(at), nil // join it
		}
		// Done and stored: a new verification starts.
		if _, err := v.k.DB.ExecContext(ctx, q.remove, v.name, at.Int64); err != nil {
			return time.Time{}, fmt.Errorf("remove the ranges of the verification stored: %w", err)
		}
	}
	started := v.k.Now()
	var bounds []any
	ranges := make(chan job)
	var walkErr error
	go func() {
		defer close(ranges)
		walkErr = (&session{Verifier: v}).walk(ctx, ranges)
	}()
	for j := range ranges {
		bounds = append(bounds, j.r.To)
	}
	if walkErr != nil {
		return time.Time{}, walkErr
	}
	err := v.k.InTx(ctx, func(tx *sqlx.Tx) error {
		var from any
		for i, to := range bounds {
			f, err := encodeBound(from)
			if err != nil {
				return err
			}
			t, err := encodeBound(to)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, q.insert, v.name, meta.Micros(started), i, f, t); err != nil {
				return err
			}
			from = to
		}
		return nil
	})
	if err != nil {
		if !v.k.Dialect.IsUniqueViolation(err) {
			return time.Time{}, fmt.Errorf("record the ranges: %w", err)
		}
		// Another instance recorded its ranges meanwhile: join them.
		if err := v.k.DB.GetContext(ctx, &at, q.run, v.name); err != nil || !at.Valid {
			return time.Time{}, fmt.Errorf("read the recorded verification: %w", errors.Join(err, sql.ErrNoRows))
		}
		return meta.FromMicros(at), nil
	}
	return started, nil
}

// runShared is session.run for a verification with WithResume, whose
// ranges were recorded at ses.res.Started. It reports whether this run
// removed the ranges, and so must store the result, which it leaves in
// ses.res.
func (v *session) runShared(ctx context.Context, q shared) (last bool, err error) {
	runAt := meta.Micros(v.res.Started)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range v.c.concurrency {
		owner := v.c.owner + "#" + strconv.Itoa(i)
		wg.Go(func() {
			for ctx.Err() == nil {
				took, err := v.compareNext(ctx, q, runAt, owner)
				if err != nil {
					cancel(err)
				}
				if !took {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return false, err
	}
	for {
		var undone int64
		if err := v.k.DB.GetContext(ctx, &undone, q.undone, v.name, runAt); err != nil {
			return false, fmt.Errorf("count the ranges left: %w", err)
		}
		if undone == 0 {
			break
		}
		// Other runs hold the ranges left: wait for them, or take over
		// those whose leases run out.
		t := time.NewTimer(sharedWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, context.Cause(ctx)
		case <-t.C:
		}
		if took, err := v.compareNext(ctx, q, runAt, v.c.owner+"#0"); err != nil {
			return false, err
		} else if took {
			continue
		}
	}
	res, err := v.sums(ctx, q, runAt)
	if err != nil {
		return false, err
	}
	v.mu.Lock()
	v.res, v.sample, v.held = res, nil, 0
	v.mu.Unlock()
	marked, err := v.k.DB.ExecContext(ctx, q.store, meta.Micros(v.k.Now()), v.name, runAt)
	if err != nil {
		return false, fmt.Errorf("mark the verification stored: %w", err)
	}
	n, err := marked.RowsAffected()
	return err == nil && n == 1, err
}

// compareNext takes the first range of the run at runAt that no live run
// holds, as owner, compares it and records what it found, and reports
// whether there was such a range.
func (v *session) compareNext(ctx context.Context, q shared, runAt int64, owner string) (bool, error) {
	var (
		row struct {
			No   int64          `db:"range_no"`
			From sql.NullString `db:"range_from"`
			To   sql.NullString `db:"range_to"`
		}
		found bool
	)
	err := v.k.InTx(ctx, func(tx *sqlx.Tx) error {
		now := v.k.Now()
		err := tx.GetContext(ctx, &row, q.pick, v.name, runAt, owner, meta.Micros(now))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		_, err = tx.ExecContext(ctx, q.take, owner, meta.Micros(now.Add(RangeLease)), v.name, runAt, row.No)
		return err
	})
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("take a range: %w", err)
		}
		return false, err
	}
	var r expandcontract.KeyRange
	if r.From, err = decodeBound(row.From); err != nil {
		return false, err
	}
	if r.To, err = decodeBound(row.To); err != nil {
		return false, err
	}
	one := &session{Verifier: v.Verifier, stage: v.stage}
	if err := one.compare(ctx, job{seq: row.No, r: r}); err != nil {
		// Give the range back, so that the next run need not wait for
		// its lease to run out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		if _, rerr := v.k.DB.ExecContext(rctx, q.release, v.name, runAt, row.No, owner); rerr != nil {
			v.k.Logger.WarnContext(ctx, "cutover: verification range not given back; its lease runs out by itself",
				"migration", v.name, "range", row.No, "err", rerr)
		}
		return false, err
	}
	got := one.result()
	var keys any // NULL for none
	if len(got.Keys) > 0 {
		b, _ := json.Marshal(got.Keys) // strings always encode
		keys = string(b)
	}
	res, err := v.k.DB.ExecContext(ctx, q.record, meta.Micros(v.k.Now()), got.Rows, got.NewRows, got.Drilled,
		got.Missing, got.Extra, got.Changed, keys, v.name, runAt, row.No, owner)
	if err != nil {
		return false, fmt.Errorf("record range %d: %w", row.No, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		v.mu.Lock()
		v.res.Rows += got.Rows // the progress this run records
		v.mu.Unlock()
	}
	// Otherwise another run took the range over and records it.
	return true, nil
}

// sums adds up what the ranges of the run at runAt found.
func (v *session) sums(ctx context.Context, q shared, runAt int64) (Result, error) {
	res := Result{Digest: v.d, Started: v.res.Started}
	if err := v.k.DB.QueryRowxContext(ctx, q.sums, v.name, runAt).Scan(&res.Chunks, &res.Rows, &res.NewRows,
		&res.Drilled, &res.Missing, &res.Extra, &res.Changed); err != nil {
		return res, fmt.Errorf("add up the ranges: %w", err)
	}
	res.Differences = res.Missing + res.Extra + res.Changed
	var samples []string
	if err := v.k.DB.SelectContext(ctx, &samples, q.keys, v.name, runAt); err != nil {
		return res, fmt.Errorf("read the ranges' keys: %w", err)
	}
	for _, s := range samples {
		var keys []string
		if err := json.Unmarshal([]byte(s), &keys); err != nil {
			return res, fmt.Errorf("%w: a verification range's keys: %w", expandcontract.ErrCorrupt, err)
		}
		res.Keys = append(res.Keys, keys...)
		if len(res.Keys) >= v.c.maxKeys {
			res.Keys = res.Keys[:v.c.maxKeys]
			break
		}
	}
	return res, nil
}
