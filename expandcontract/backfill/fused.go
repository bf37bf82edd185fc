package backfill

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// checkpointWhere is the condition under which a batch's checkpoint is
// written: the runner holds the lease, in the phase, neither paused nor
// canceled, with the settings it applies. Its arguments are the
// migration's name, the runner's id, the phase and the settings number.
const checkpointWhere = `name = ? AND lease_owner = ? AND phase = ? AND backfill_paused = 0 AND backfill_canceled = 0 AND backfill_settings = ?`

// fuse returns, for an [SQLBatch] compiled as query for PostgreSQL, one
// statement that runs the batch and the checkpoint statement checkpoint,
// or "" if the batch cannot be fused: on other databases, and for a
// statement that is not a plain INSERT, UPDATE or DELETE (one that opens
// with WITH or a comment, that has its own RETURNING, or that holds a
// ';').
//
// A batch in a transaction of its own costs four round trips (BEGIN, the
// batch, the checkpoint, COMMIT); the fused statement costs one, and is as
// atomic: it runs on its own, so that PostgreSQL commits it whole or not
// at all. The batch is a data-modifying WITH query whose RETURNING rows
// count the rows it wrote (checkpoint names that count fusedRows), and
// the checkpoint an UPDATE under the condition of every checkpoint, which
// waits for the row's lock like the checkpoint of a transaction. When that
// condition does not hold, the checkpoint updates no row and the final
// SELECT divides by zero: the statement fails, and PostgreSQL undoes the
// batch with it. The runner then reads why, as it does when the
// checkpoint of a transaction matches no row.
//
// The statement's parameters are $1 and $2, the batch's :from and :to,
// then those of checkpoint, whose '?' placeholders are numbered from $3.
func fuse(d sqldialect.Dialect, query, checkpoint string) string {
	if d.Name() != sqldialect.Postgres {
		return ""
	}
	q := strings.TrimRight(strings.TrimSpace(query), "; \t\r\n")
	verb, _, _ := strings.Cut(q, " ")
	switch strings.ToUpper(strings.TrimSpace(verb)) {
	case "INSERT", "UPDATE", "DELETE":
	default:
		return ""
	}
	if strings.Contains(q, ";") || strings.Contains(strings.ToUpper(q), "RETURNING") || strings.Contains(q, "cutover_batch") {
		return ""
	}
	return `WITH cutover_batch AS (` + q + ` RETURNING 1), cutover_checkpoint AS (` + rebindFrom(checkpoint, 3) + ` RETURNING 1)
	SELECT (SELECT COUNT(*) FROM cutover_batch), 1 / (SELECT COUNT(*) FROM cutover_checkpoint)`
}

// fusedRows is the rows a fused batch wrote, in its checkpoint.
const fusedRows = `(SELECT COUNT(*) FROM cutover_batch)`

// fusedCheckpoint is the checkpoint of a fused batch of a backfill that is
// not split, in the migrations table mt. Its arguments: the checkpoint,
// the total, the start time, the lease's end and the time of the update;
// the rows this run copied before the batch, minus those of the oldest
// batch of the rate window, and one over the seconds since that batch (0
// if none passed), whose product with the rows is the rate recorded; and
// checkpointWhere's.
func fusedCheckpoint(mt string) string {
	return `UPDATE ` + mt + ` SET backfill_checkpoint = ?, backfill_rows = backfill_rows + ` + fusedRows + `,
	backfill_total = ?, backfill_started_at = COALESCE(backfill_started_at, ?), lease_until = ?, updated_at = ?,
	backfill_rate = (CAST(? AS BIGINT) + ` + fusedRows + `) * CAST(? AS DOUBLE PRECISION),
	backfill_throttled = NULL
	WHERE ` + checkpointWhere
}

// rebindFrom numbers the '?' placeholders of query $n, $n+1, and so on.
// query must hold no '?' but its placeholders.
func rebindFrom(query string, n int) string {
	var b strings.Builder
	for _, part := range strings.SplitAfter(query, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			b.WriteString(p + "$" + strconv.Itoa(n))
			n++
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

// fusedAttempts is how many times a batch is tried as one fused statement
// before it runs in a transaction of its own.
const fusedAttempts = 2

// commitFused runs the batch over batchRange, the range rng with the
// bound an SQLBatch binds to :from, as the fused statement and reports
// whether it did; if not, the caller runs it in a transaction, which also
// reports a failure of the batch's own statement with its error. It
// returns the state that forbids the commit, if the statement failed for
// that. It is used only for a run that recorded its start and whose next
// batch adds no progress sample, which the fused statement does not write.
func (b *Runner) commitFused(ctx context.Context, r *run, rng, batchRange expandcontract.KeyRange) (rows int64, halt *control, ok bool) {
	for range fusedAttempts {
		now := b.k.Now()
		base, perSecond := r.recent.rateParts(now, r.runRows)
		var one int64
		err := b.k.DB.QueryRowContext(ctx, b.qFused, batchRange.From, batchRange.To,
			encodeKey(rng.To), r.total, meta.Micros(r.startedAt), meta.Micros(now.Add(b.cfg.ttl)), meta.Micros(now),
			base, perSecond, b.name, b.cfg.owner, backfillPhase, r.settings).Scan(&rows, &one)
		if err == nil {
			r.throttled = ""
			r.recent.add(now, r.runRows+rows)
			return rows, nil, true
		}
		if ctx.Err() != nil {
			return 0, nil, false
		}
		// The batch's statement failed, or the checkpoint's condition
		// did not hold: the state tells which.
		// New settings are applied: this batch commits as it was
		// scanned, the next ones follow them.
		if halt, _, err := b.restate(ctx, b.k.DB, r, false); err != nil || halt != nil {
			return 0, halt, false
		}
	}
	return 0, nil, false
}

// sampleDue reports whether a batch ending at now adds a progress sample.
func sampleDue(samples []meta.Sample, now time.Time) bool {
	_, added := meta.AddSample(samples, now, 0, false)
	return added
}
