package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// MaxRanges is the most key ranges [WithRanges] splits a backfill into.
const MaxRanges = 1024

// WithRanges splits the backfill into n key ranges, so that runners copy
// them in parallel: each range has its own checkpoint, its own lease and
// its own fencing, and a runner copies one range at a time, then takes
// the next that no live runner holds. Run as many runners as ranges, in
// one process or in several, each with WithRanges and an owner of its own
// ([WithOwner]); a runner that dies leaves its range to be taken over
// once its lease runs out, from its checkpoint. The backfill is done once
// every range is, and only then (the guard of the move to switchreads
// reads that). n must be 1 to [MaxRanges]; 1, the default, does not split.
//
// The first run splits the key space, and records the ranges with the
// migration; later runs copy those ranges whatever n they are given. For
// [expandcontract.IntKeys], the ranges are of equal width between the
// smallest and the largest key (n ranges of keys, or fewer where there are
// fewer keys than n); for [expandcontract.TextKeys], the boundaries are
// the keys at every n-th of the keys in the column's order, read with one
// ORDER BY ... OFFSET query per boundary, which reads that much of the key
// column's index: about n/2 times the keys in all, once. The first range
// starts at the first key and the last one goes on past the last key, so
// that keys written after the split are in a range too. The ranges follow
// the column's own order, as the batches within them do (the order of
// the key column's index): for text keys, the column's collation, not the
// byte order verification compares in, which does not matter here since
// the ranges only divide the work.
//
// A backfill started without ranges cannot be split, nor one split run
// without WithRanges: either is refused with an error wrapping
// [ErrInvalidInput].
//
// Pause, resume, cancel and the rate limit and batch size an operator
// sets ([Pause], [SetRate], ...) apply to every runner at once: the rate
// limit, like [WithRate], applies to each runner, so that N runners copy
// up to N times the rate in all; divide it by N for a limit over all. The
// throttle hooks, [WithLagThrottle] and [WithBatchPause] apply to each
// runner on its own. Each batch commits with its range's checkpoint
// (on PostgreSQL, for a plain [SQLBatch], as one statement; see
// [SQLBatch]), which reads the migration's row, for the pause, the
// cancellation, the phase and the settings, without locking it, so that
// the runners do not wait for each other: a pause or a new setting is
// acted on from each runner's next batch. The runners add up the ranges'
// rows into the migration's row, with the progress samples and the rate
// over all of them, at most every ten seconds each, and when the backfill
// is done; [expandcontract.Migration.Status] counts the ranges' rows at
// once. [Progress] is the runner's own view: Rows are those of the whole
// backfill as of when it took its range, plus those it copied since, and
// Checkpoint and Batches those of the range it copies.
//
// [Runner.Run] returns nil once every range is done, waiting, while the
// ranges left are held by other live runners, for them to finish or for
// their leases to run out.
func WithRanges(n int) Option {
	return optionFunc(func(c *config) { c.ranges = n })
}

// part is one key range of a partitioned backfill, as a run copies it.
type part struct {
	no       int64
	from, to any // its bounds, decoded: from exclusive, to inclusive; nil where open
}

// rangeRow is the scanned form of a row of the ranges table.
type rangeRow struct {
	No         int64          `db:"range_no"`
	From       sql.NullString `db:"range_from"`
	To         sql.NullString `db:"range_to"`
	Checkpoint sql.NullString `db:"range_checkpoint"`
	Rows       int64          `db:"range_rows"`
	Owner      sql.NullString `db:"lease_owner"`
	Until      sql.NullInt64  `db:"lease_until"`
	Done       sql.NullInt64  `db:"done_at"`
}

// rangeColumns lists the columns of a rangeRow, for a SELECT.
const rangeColumns = `range_no, range_from, range_to, range_checkpoint, range_rows, lease_owner, lease_until, done_at`

// rangeQueries are the statements on the ranges table and those on the
// migrations table that a partitioned backfill makes, rebound for the
// store's dialect.
type rangeQueries struct {
	count, insert, split, pick, take, get, getLock, checkpoint, progress, samples, rows,
	renew, release, done, undone, finish, throttled string
}

// rangeCheckpointSet is the assignments of a range's checkpoint but the
// rows added, which follow it; its arguments are the checkpoint and the
// lease's end.
const rangeCheckpointSet = `range_checkpoint = ?, lease_until = ?, range_rows = range_rows + `

// rangeCheckpointWhere returns the condition under which a batch's
// checkpoint is written to its range: the runner holds the range's lease,
// the range is not done, and the migration, of the migrations table mt,
// is in the phase, neither paused nor canceled, with the settings the
// runner applies. Its arguments are the migration's name, the range's
// number, the runner's id, the migration's name again, the phase and the
// settings number. The migration's row is read, not locked, so that
// runners do not wait for each other; a pause or a new setting is acted
// on from the next batch on.
func rangeCheckpointWhere(mt string) string {
	return ` WHERE migration = ? AND range_no = ? AND lease_owner = ? AND done_at IS NULL AND EXISTS (SELECT 1 FROM ` + mt +
		` WHERE ` + checkpointWhere2 + `)`
}

// checkpointWhere2 is checkpointWhere without the lease.
const checkpointWhere2 = `name = ? AND phase = ? AND backfill_paused = 0 AND backfill_canceled = 0 AND backfill_settings = ?`

func compileRanges(s *meta.Store) rangeQueries {
	rt, mt := s.T.Ranges, s.T.Migrations
	lock := s.Dialect.ForUpdate()
	get := `SELECT ` + rangeColumns + ` FROM ` + rt + ` WHERE migration = ? AND range_no = ?`
	return rangeQueries{
		count:  s.Q(`SELECT COUNT(*) FROM ` + rt + ` WHERE migration = ?`),
		insert: s.Q(`INSERT INTO ` + rt + ` (migration, range_no, range_from, range_to) VALUES (?, ?, ?, ?)`),
		split: s.Q(`UPDATE ` + mt + ` SET backfill_total = ?, backfill_started_at = COALESCE(backfill_started_at, ?), updated_at = ?
		WHERE name = ?`),
		// The first range left that no live runner holds, or that this
		// runner held, locked until the claim commits.
		pick: s.Q(`SELECT ` + rangeColumns + ` FROM ` + rt + ` WHERE migration = ? AND done_at IS NULL
		AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?) ORDER BY range_no LIMIT 1` + lock),
		take:       s.Q(`UPDATE ` + rt + ` SET lease_owner = ?, lease_until = ? WHERE migration = ? AND range_no = ?`),
		get:        s.Q(get),
		getLock:    s.Q(get + lock),
		checkpoint: s.Q(`UPDATE ` + rt + ` SET ` + rangeCheckpointSet + `?` + rangeCheckpointWhere(mt)),
		progress: s.Q(`UPDATE ` + mt + ` SET backfill_rows = (SELECT SUM(range_rows) FROM ` + rt + ` WHERE migration = ?),
		updated_at = ?, backfill_throttled = NULL, backfill_rate = ?, backfill_samples = ? WHERE name = ?`),
		samples: s.Q(`SELECT backfill_samples FROM ` + mt + ` WHERE name = ?` + lock),
		rows:    s.Q(`SELECT COALESCE(SUM(range_rows), 0) FROM ` + rt + ` WHERE migration = ?`),
		renew:   s.Q(`UPDATE ` + rt + ` SET lease_until = ? WHERE migration = ? AND range_no = ? AND lease_owner = ?`),
		release: s.Q(`UPDATE ` + rt + ` SET lease_owner = NULL, lease_until = NULL WHERE migration = ? AND range_no = ? AND lease_owner = ?`),
		done: s.Q(`UPDATE ` + rt + ` SET done_at = ?, lease_owner = NULL, lease_until = NULL
		WHERE migration = ? AND range_no = ? AND lease_owner = ? AND done_at IS NULL`),
		undone: s.Q(`SELECT COUNT(*) FROM ` + rt + ` WHERE migration = ? AND done_at IS NULL`),
		finish: s.Q(`UPDATE ` + mt + ` SET backfill_done_at = ?, updated_at = ?, backfill_samples = COALESCE(?, backfill_samples),
		backfill_rows = (SELECT SUM(range_rows) FROM ` + rt + ` WHERE migration = ?), backfill_throttled = NULL
		WHERE name = ? AND phase = ? AND backfill_paused = 0 AND backfill_canceled = 0 AND backfill_done_at IS NULL`),
		throttled: s.Q(`UPDATE ` + mt + ` SET backfill_throttled = ? WHERE name = ?`),
	}
}

// releaseQuery returns the statement, and its arguments, that gives back
// the lease of r: the migration's, or that of r's range.
func (b *Runner) releaseQuery(r *run) (string, []any) {
	if r.part != nil {
		return b.ranges.release, []any{b.name, r.part.no, b.cfg.owner}
	}
	return b.qRelease, []any{b.name, b.cfg.owner}
}

// hasRanges reports whether the backfill was split into ranges.
func (b *Runner) hasRanges(ctx context.Context, q sqlx.QueryerContext) (bool, error) {
	var n int64
	if err := sqlx.GetContext(ctx, q, &n, b.ranges.count, b.name); err != nil {
		return false, fmt.Errorf("backfill: %q: read the ranges: %w", b.name, err)
	}
	return n > 0, nil
}

// runRanges is Run for a partitioned backfill.
func (b *Runner) runRanges(ctx context.Context, span trace.Span) error {
	if done, err := b.split(ctx); err != nil || done {
		return err
	}
	var rows, batches int64 // over the ranges this run copied
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(telemetry.KeyRows.Int64(rows), keyBatches.Int64(batches))
		}
	}()
	for {
		r, c, err := b.claim(ctx)
		if err != nil {
			return err
		}
		if r != nil {
			err := b.runOne(ctx, span, r, c)
			rows, batches = rows+r.runRows, batches+r.batches
			if err != nil {
				return err
			}
			continue
		}
		done, err := b.finishRanges(ctx)
		if err != nil || done {
			return err
		}
		// The ranges left are held by other runners: wait for them to
		// finish, or for their leases to run out.
		c, ok, err := b.poll(ctx, "waiting")
		switch {
		case err != nil:
			return err
		case !ok:
		case c.Phase != backfillPhase:
			return b.phaseErr(c)
		case c.Canceled != 0:
			return b.cancelErr(c)
		}
	}
}

// cancelErr is the error of a run refused or stopped by a cancellation
// that c records.
func (b *Runner) cancelErr(c control) error {
	return fmt.Errorf("%w: backfill of %q with %d rows copied; lift the cancellation with backfill.ResetCancel to run it",
		ErrCanceled, b.name, c.Rows)
}

// refuse returns the error of a run that c does not allow, or nil, and
// whether the backfill is done.
func (b *Runner) refuse(c control) (done bool, err error) {
	switch {
	case c.Phase != backfillPhase:
		return false, b.phaseErr(c)
	case c.DoneAt.Valid:
		return true, nil
	case c.Canceled != 0:
		return false, b.cancelErr(c)
	}
	return false, nil
}

// split splits the backfill into ranges, unless it was split already. It
// reports whether the backfill is done.
func (b *Runner) split(ctx context.Context) (bool, error) {
	c, err := b.control(ctx, b.k.DB, false)
	if err != nil {
		return false, err
	}
	if done, err := b.refuse(c); err != nil || done {
		return done, err
	}
	if ok, err := b.hasRanges(ctx, b.k.DB); err != nil || ok {
		return false, err
	}
	if err := b.unsplit(c); err != nil {
		return false, err
	}
	bounds, total, err := b.bounds(ctx)
	if err != nil {
		return false, err
	}
	var done bool
	err = b.retry(ctx, "split", func() error {
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			c, err := b.control(ctx, tx, true)
			if err != nil {
				return err
			}
			if done, err = b.refuse(c); err != nil || done {
				return err
			}
			if ok, err := b.hasRanges(ctx, tx); err != nil || ok {
				return err // split by another runner meanwhile
			}
			if err := b.unsplit(c); err != nil {
				return err
			}
			from := any(nil)
			for i := 0; i <= len(bounds); i++ {
				to := any(nil)
				if i < len(bounds) {
					to = encodeKey(bounds[i])
				}
				if _, err := tx.ExecContext(ctx, b.ranges.insert, b.name, i, from, to); err != nil {
					return fmt.Errorf("backfill: %q: record range %d: %w", b.name, i, err)
				}
				from = to
			}
			now := b.k.Now()
			if _, err := tx.ExecContext(ctx, b.ranges.split, total, meta.Micros(now), meta.Micros(now), b.name); err != nil {
				return fmt.Errorf("backfill: %q: record the split: %w", b.name, err)
			}
			v, err := b.version(ctx, tx)
			if err != nil {
				return err
			}
			return b.k.AddEvent(ctx, tx, meta.Event{Migration: b.name, Actor: b.cfg.owner, Kind: "backfill",
				From: backfillPhase, To: backfillPhase, Version: v,
				Detail: fmt.Sprintf("split into %d ranges of %s keys, about %d rows", len(bounds)+1, b.keys.kind, total)})
		})
	})
	if err != nil && ctx.Err() != nil {
		err = b.ctxErr(ctx)
	}
	return done, err
}

// unsplit returns the error for a backfill that c shows started or
// running without ranges, or nil.
func (b *Runner) unsplit(c control) error {
	if c.Checkpoint.Valid || b.heldBy(c, b.k.Now()) != nil {
		return fmt.Errorf("%w: %q: the backfill started without ranges (checkpoint %q, lease %q); "+
			"run it without backfill.WithRanges", ErrInvalidInput, b.name, c.Checkpoint.String, c.LeaseOwner.String)
	}
	return nil
}

// bounds reads the keys and returns the last keys of every range but the
// last, in order, and the rows to copy in all: the total given, or the
// keys counted.
func (b *Runner) bounds(ctx context.Context) ([]any, int64, error) {
	n := int64(b.cfg.ranges)
	kq := b.keys
	read := func(what string, err error) error {
		if ctx.Err() != nil {
			return b.ctxErr(ctx)
		}
		return fmt.Errorf("backfill: %q: split: %s: %w", b.name, what, err)
	}
	total := b.cfg.total
	if !b.cfg.totalSet || kq.kind == expandcontract.TextKeys {
		var count int64
		if err := kq.db.GetContext(ctx, &count, kq.countAll); err != nil {
			return nil, 0, read("count the keys", err)
		}
		if !b.cfg.totalSet {
			total = count
		}
		if kq.kind == expandcontract.TextKeys {
			return b.textBounds(ctx, n, count, read)
		}
	}
	var lo, hi sql.NullInt64
	if err := kq.db.QueryRowxContext(ctx, `SELECT MIN(`+kq.col+`), MAX(`+kq.col+`) FROM `+kq.table).Scan(&lo, &hi); err != nil {
		return nil, 0, read("read the smallest and largest keys", err)
	}
	if !lo.Valid {
		return nil, total, nil
	}
	// The last key of range i is lo + (i+1)*width/n - 1, in big integers
	// since width may not fit in an int64.
	width := new(big.Int).Sub(big.NewInt(hi.Int64), big.NewInt(lo.Int64))
	width.Add(width, big.NewInt(1))
	var out []any
	for i := int64(1); i < n; i++ {
		top := new(big.Int).Mul(width, big.NewInt(i))
		top.Quo(top, big.NewInt(n))
		top.Add(top, big.NewInt(lo.Int64-1))
		if top.Cmp(big.NewInt(lo.Int64)) < 0 || !top.IsInt64() {
			continue
		}
		if k := top.Int64(); len(out) == 0 || out[len(out)-1].(int64) < k {
			out = append(out, k)
		}
	}
	return out, total, nil
}

// textBounds returns, of count text keys, the key at every n-th of them
// in the column's order, the last key of each range but the last.
func (b *Runner) textBounds(ctx context.Context, n, count int64, read func(string, error) error) ([]any, int64, error) {
	kq := b.keys
	q := kq.dialect.Rebind(`SELECT ` + kq.col + ` FROM ` + kq.table + ` WHERE ` + kq.col + ` IS NOT NULL ORDER BY ` +
		kq.col + ` LIMIT 1 OFFSET ?`)
	var out []any
	for i := int64(1); i < n; i++ {
		offset := i*count/n - 1
		if offset < 0 {
			continue
		}
		var k string
		err := kq.db.GetContext(ctx, &k, q, offset)
		if errors.Is(err, sql.ErrNoRows) {
			break // keys deleted meanwhile
		}
		if err != nil {
			return nil, 0, read("read the key at "+fmt.Sprint(offset), err)
		}
		if len(out) == 0 || out[len(out)-1].(string) != k {
			out = append(out, k)
		}
	}
	total := count
	if b.cfg.totalSet {
		total = b.cfg.total
	}
	return out, total, nil
}

// claim takes the lease of the first range that no live runner holds,
// and returns the run that copies it, or nil if there is none.
func (b *Runner) claim(ctx context.Context) (*run, control, error) {
	var (
		c     control
		row   rangeRow
		found bool
		now   time.Time
	)
	err := b.retry(ctx, "take a range", func() error {
		found = false
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			if c, err = b.control(ctx, tx, false); err != nil {
				return err
			}
			if done, err := b.refuse(c); err != nil || done {
				return err
			}
			now = b.k.Now()
			err = tx.GetContext(ctx, &row, b.ranges.pick, b.name, b.cfg.owner, meta.Micros(now))
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("backfill: %q: find a range: %w", b.name, err)
			}
			if _, err := tx.ExecContext(ctx, b.ranges.take, b.cfg.owner, meta.Micros(now.Add(b.cfg.ttl)), b.name, row.No); err != nil {
				return fmt.Errorf("backfill: %q: take the lease of range %d: %w", b.name, row.No, err)
			}
			if err := tx.GetContext(ctx, &c.Rows, b.ranges.rows, b.name); err != nil {
				return fmt.Errorf("backfill: %q: add up the ranges' rows: %w", b.name, err)
			}
			found = true
			return nil
		})
	})
	if err != nil || !found {
		if err != nil && ctx.Err() != nil {
			err = b.ctxErr(ctx)
		}
		return nil, c, err
	}
	if row.Owner.Valid && row.Owner.String != b.cfg.owner {
		b.k.Logger.WarnContext(ctx, "cutover: backfill range lease taken over from a runner that stopped renewing it",
			"migration", b.name, "owner", b.cfg.owner, "range", row.No, "previous", row.Owner.String)
	}
	p := &part{no: row.No}
	r := &run{part: p, rows: c.Rows, total: c.Total, start: time.Now(), startedAt: now, started: true}
	r.next = r.start
	for _, kv := range []struct {
		dst *any
		s   sql.NullString
	}{{&p.from, row.From}, {&p.to, row.To}, {&r.after, row.Checkpoint}} {
		if !kv.s.Valid {
			continue
		}
		if *kv.dst, err = decodeKey(b.keys.kind, kv.s.String); err != nil {
			b.release(ctx, r)
			return nil, c, fmt.Errorf("%w: %q: range %d: %w", expandcontract.ErrCorrupt, b.name, row.No, err)
		}
	}
	if r.after == nil {
		r.after = p.from
	}
	if r.after != nil {
		r.checkpoint = encodeKey(r.after)
	}
	b.apply(ctx, r, c)
	if r.samples, err = meta.DecodeSamples(c.Samples.String); err != nil {
		r.samples = nil
	}
	b.k.Logger.InfoContext(ctx, "cutover: backfill range started", "migration", b.name, "owner", b.cfg.owner,
		"range", row.No, "checkpoint", r.checkpoint, "rows", row.Rows)
	return r, c, nil
}

// readPart reads the row of range no through q, locking it if lock is set
// and q is a transaction.
func (b *Runner) readPart(ctx context.Context, q sqlx.QueryerContext, no int64, lock bool) (rangeRow, error) {
	var row rangeRow
	query := b.ranges.get
	if lock {
		query = b.ranges.getLock
	}
	if err := sqlx.GetContext(ctx, q, &row, query, b.name, no); err != nil {
		return row, fmt.Errorf("backfill: %q: read range %d: %w", b.name, no, err)
	}
	return row, nil
}

// lostPartErr is the error of a runner whose lease of range no is held by
// holder now ("" if by none).
func (b *Runner) lostPartErr(no int64, holder string) error {
	if holder != "" {
		return fmt.Errorf("%w: %q: the lease of range %d is now held by %q", ErrLeaseLost, b.name, no, holder)
	}
	return fmt.Errorf("%w: %q: the lease of range %d was given back by another runner", ErrLeaseLost, b.name, no)
}

// commitPart is commit for a run of one range: the batch and the range's
// checkpoint in one transaction, or, for a fused batch, one statement
// (see fuse). With a batch that makes a progress sample due, the
// transaction also records the migration's rows, the sum of its ranges',
// with the sample and the rate over the recent samples.
func (b *Runner) commitPart(ctx context.Context, r *run, rng, batchRange expandcontract.KeyRange) (rows int64, halt *control, err error) {
	no := r.part.no
	due := sampleDue(r.samples, b.k.Now())
	if b.qFusedRange != "" && !due {
		for range fusedAttempts {
			now := b.k.Now()
			var one int64
			err := b.k.DB.QueryRowContext(ctx, b.qFusedRange, batchRange.From, batchRange.To, encodeKey(rng.To),
				meta.Micros(now.Add(b.cfg.ttl)), b.name, no, b.cfg.owner, b.name, backfillPhase, r.settings).Scan(&rows, &one)
			if err == nil {
				r.throttled = ""
				r.recent.add(now, r.runRows+rows)
				return rows, nil, nil
			}
			if ctx.Err() != nil {
				return 0, nil, b.ctxErr(ctx)
			}
			if halt, err := b.partMissed(ctx, b.k.DB, r, false); err != nil || halt != nil {
				return 0, halt, err
			}
		}
		// Run it in a transaction, which reports the statement's own error.
	}
	var samples []meta.Sample
	err = b.retry(ctx, "batch", func() error {
		rows, halt, samples = 0, nil, nil
		tx, err := b.k.BeginTx(ctx)
		if err != nil {
			return fmt.Errorf("backfill: %q: begin batch: %w", b.name, err)
		}
		defer func() { _ = tx.Rollback() }()
		if rows, err = b.batch.CopyRange(ctx, tx, batchRange); err != nil {
			return fmt.Errorf("backfill: %q: range %d: batch %s: %w", b.name, no, rangeString(rng), err)
		}
		if rows < 0 {
			return fmt.Errorf("backfill: %q: range %d: batch %s reported %d rows", b.name, no, rangeString(rng), rows)
		}
		now := b.k.Now()
		args := []any{encodeKey(rng.To), meta.Micros(now.Add(b.cfg.ttl)), rows, b.name, no, b.cfg.owner, b.name, backfillPhase, r.settings}
		res, err := tx.ExecContext(ctx, b.ranges.checkpoint, args...)
		if err != nil {
			return fmt.Errorf("backfill: %q: range %d: write checkpoint: %w", b.name, no, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if halt, err = b.partMissed(ctx, tx, r, true); err != nil || halt != nil {
				return err // rolled back by the deferred call
			}
			args[len(args)-1] = r.settings // new settings: this batch commits as it was scanned
			if _, err := tx.ExecContext(ctx, b.ranges.checkpoint, args...); err != nil {
				return fmt.Errorf("backfill: %q: range %d: write checkpoint: %w", b.name, no, err)
			}
		}
		if due {
			var cur sql.NullString
			if err := tx.GetContext(ctx, &cur, b.ranges.samples, b.name); err != nil {
				return fmt.Errorf("backfill: %q: read the progress samples: %w", b.name, err)
			}
			var sum int64
			if err := tx.GetContext(ctx, &sum, b.ranges.rows, b.name); err != nil {
				return fmt.Errorf("backfill: %q: add up the ranges' rows: %w", b.name, err)
			}
			samples, _ = meta.DecodeSamples(cur.String) // unreadable ones start anew
			if s, added := meta.AddSample(samples, now, sum, false); added {
				samples = s
				if _, err := tx.ExecContext(ctx, b.ranges.progress, b.name, meta.Micros(now), sampleRate(s), meta.EncodeSamples(s),
					b.name); err != nil {
					return fmt.Errorf("backfill: %q: write progress: %w", b.name, err)
				}
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("backfill: %q: commit batch: %w", b.name, err)
		}
		if samples != nil {
			r.samples = samples
		}
		r.throttled = ""
		r.recent.add(now, r.runRows+rows)
		return nil
	})
	if err != nil && ctx.Err() != nil {
		err = b.ctxErr(ctx)
	}
	return rows, halt, err
}

// partMissed finds out why the checkpoint of a batch of r's range matched
// no row, reading through q, with locks if lock is set and q is a
// transaction: it returns ErrLeaseLost if the runner no longer holds the
// range, and the state that forbids the commit if there is one; otherwise
// it applies the settings if they changed, and the checkpoint may be
// written again (or, on MySQL, which counts changed rows only, the row
// matched but was left unchanged).
func (b *Runner) partMissed(ctx context.Context, q sqlx.QueryerContext, r *run, lock bool) (*control, error) {
	p, err := b.readPart(ctx, q, r.part.no, lock)
	if err != nil {
		return nil, err
	}
	if p.Owner.String != b.cfg.owner || p.Done.Valid {
		return nil, b.lostPartErr(r.part.no, p.Owner.String)
	}
	halt, _, err := b.restate(ctx, q, r, lock)
	return halt, err
}

// sampleRate returns the rows per second over the last samples, up to a
// minute's worth at one sample every meta.SampleEvery; 0 if no time
// passed.
func sampleRate(samples []meta.Sample) float64 {
	n := len(samples)
	if n < 2 {
		return 0
	}
	first, last := samples[max(0, n-1-int(time.Minute/meta.SampleEvery))], samples[n-1]
	secs := float64(last.At-first.At) / 1e6
	if secs <= 0 || last.Rows < first.Rows {
		return 0
	}
	return float64(last.Rows-first.Rows) / secs
}

// finishPart records that the range of r is done and gives back its
// lease, or returns the state that forbids it.
func (b *Runner) finishPart(ctx context.Context, r *run) (*control, error) {
	no := r.part.no
	var halt *control
	err := b.retry(ctx, "finish range", func() error {
		halt = nil
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			c, err := b.control(ctx, tx, false)
			if err != nil {
				return err
			}
			if b.mustHalt(c) {
				halt = &c
				return errHalt
			}
			res, err := tx.ExecContext(ctx, b.ranges.done, meta.Micros(b.k.Now()), b.name, no, b.cfg.owner)
			if err != nil {
				return fmt.Errorf("backfill: %q: record range %d done: %w", b.name, no, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				p, err := b.readPart(ctx, tx, no, true)
				if err != nil {
					return err
				}
				if !p.Done.Valid {
					return b.lostPartErr(no, p.Owner.String)
				}
			}
			return nil
		})
	})
	if errors.Is(err, errHalt) {
		return halt, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = b.ctxErr(ctx)
		}
		return nil, err
	}
	r.released = true
	b.k.Logger.InfoContext(ctx, "cutover: backfill range done", "migration", b.name, "owner", b.cfg.owner,
		"range", no, "batches", r.batches)
	return nil, nil
}

// finishRanges records that the backfill is done if every range is, and
// reports whether it is.
func (b *Runner) finishRanges(ctx context.Context) (bool, error) {
	var (
		done bool
		c    control
	)
	err := b.retry(ctx, "finish", func() error {
		done = false
		return b.k.InTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			if c, err = b.control(ctx, tx, true); err != nil {
				return err
			}
			if done, err = b.refuse(c); err != nil || done || c.Paused != 0 {
				return err
			}
			var undone int64
			if err := tx.GetContext(ctx, &undone, b.ranges.undone, b.name); err != nil {
				return fmt.Errorf("backfill: %q: count the ranges left: %w", b.name, err)
			}
			if undone > 0 {
				return nil
			}
			if err := tx.GetContext(ctx, &c.Rows, b.ranges.rows, b.name); err != nil {
				return fmt.Errorf("backfill: %q: add up the ranges' rows: %w", b.name, err)
			}
			now := b.k.Now()
			var encoded any
			samples, _ := meta.DecodeSamples(c.Samples.String)
			if s, added := meta.AddSample(samples, now, c.Rows, true); added {
				encoded = meta.EncodeSamples(s)
			}
			if _, err := tx.ExecContext(ctx, b.ranges.finish, meta.Micros(now), meta.Micros(now), encoded, b.name, b.name,
				backfillPhase); err != nil {
				return fmt.Errorf("backfill: %q: record done: %w", b.name, err)
			}
			v, err := b.version(ctx, tx)
			if err != nil {
				return err
			}
			done = true
			return b.k.AddEvent(ctx, tx, meta.Event{Migration: b.name, Actor: b.cfg.owner, Kind: "backfill", From: backfillPhase,
				To: backfillPhase, Version: v, Detail: fmt.Sprintf("done: every range copied, %d rows", c.Rows)})
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			err = b.ctxErr(ctx)
		}
		return false, err
	}
	if done {
		b.gaugeTotal.Store(max(c.Total, c.Rows))
		b.report(&run{rows: c.Rows, total: c.Total, start: time.Now(), checkpoint: c.Checkpoint.String}, true)
		b.k.Logger.InfoContext(ctx, "cutover: backfill done", "migration", b.name, "owner", b.cfg.owner, "rows", c.Rows)
	}
	return done, nil
}
