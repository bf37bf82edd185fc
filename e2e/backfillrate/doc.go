// Package backfillrate holds a test, and nothing else, that measures the
// rows per second a backfill copies on a real PostgreSQL server, against
// its floors in the same run: a hand-written keyset loop over the same
// batches (find the last key of the next batch, update the range, each
// statement committing on its own) and one UPDATE of the whole table.
//
// TestBackfillRate prints one table (t.Log): for each way of copying, its
// batch size, the seconds it took in each round (least, median, most),
// the rows per second at the median, and its ratio to the keyset loop and
// to the single statement of the same rounds. The ways run in an order
// that turns from one round to the next, each on a table of its own,
// filled and vacuumed before it and not timed. It also logs the load
// average before and after: the machine may be shared. It asserts only
// facts: every way copies every row, and the runner's backfill ends done
// with every row counted. Timings are read from the table, never checked:
// CI runs on a loaded two-core machine.
//
// The runner is a [backfill.Runner] with an [backfill.SQLBatch] (one
// statement per batch with its checkpoint on PostgreSQL), once as it
// comes, counting the rows to copy before its first batch, and once with
// [backfill.WithTotal], which skips that count; then 2 and 4 runners, in
// goroutines of one process, each with a connection pool shared with the
// others, over a backfill split into as many ranges
// ([backfill.WithRanges]). The database's pool allows every runner its
// connections.
//
// CUTOVER_BACKFILLRATE_ROWS sets the rows of the table (default 20000;
// 1000000 for the table of the CHANGELOG), CUTOVER_BACKFILLRATE_ROUNDS
// the rounds (default 1) and CUTOVER_BACKFILLRATE_BATCH the batch size
// (default 1000).
package backfillrate
