// Package backfill copies the rows that existed before dual writes began,
// for a migration of package expandcontract: in keyset batches over a key
// column, each batch committed together with its checkpoint, under a lease
// that one runner holds at a time.
//
// [New] returns a [Runner] for a migration, a [Keyset] to walk and a
// [Batch] to copy each key range: a [SQLBatch] statement run in the
// metadata database, or a [BatchFunc] written in Go. [Runner.Run] copies
// until no key is left and records the backfill as done, which the move
// to switchreads requires. A crash anywhere resumes from the last
// checkpoint, with nothing copied twice or skipped; a runner that stops
// renewing its lease is replaced by another instance's, and one that ends
// however it ends, by an error or by a panic in a [BatchFunc] or hook that
// goes on up to its caller, gives the lease back first; rate limits, a
// pause between batches, a throttle hook and [WithLagThrottle], which
// holds the batches while PostgreSQL or MySQL replicas lag, keep the copy
// gentle, and progress comes as a callback and as metrics. While a
// throttle holds the runner, the migration's state says why
// ([expandcontract.BackfillState].Throttled), for the status, its gauges,
// the command cutover and the status page to show.
//
// [WithRanges] splits a backfill into key ranges, each with its own
// checkpoint, lease and fencing, so that runners in any number of
// instances copy them in parallel; the backfill is done once every range
// is. [expandcontract.BackfillProgress].Ranges counts them in the status.
//
// [Pause], [Resume], [Cancel] and [ResetCancel] steer a running backfill
// from any instance through the metadata, [SetRate] and [SetBatchSize]
// change its rate limit and batch size while it runs, overriding the
// runner's options while set, and [MarkDone] records a backfill made by
// other means. Every one of them is recorded in the migration's history,
// with who, why, and the value before and after. The runner picks a change
// up when its next batch commits, and at once while it waits between
// batches for longer than its poll interval.
//
// With each batch, the runner records in the metadata the rate it measured
// over its recent batches, and, at most every ten seconds, a sample of its
// progress, for [expandcontract.Migration.Status] to show on any instance.
//
// # Tracing
//
// With a tracer provider ([expandcontract.WithTracerProvider], or the
// global one), each [Runner.Run] is a span named
// cutover.expandcontract.backfill.run, with the attributes
// cutover.migration and cutover.backfill.owner, and, when it ends,
// cutover.rows and cutover.batches (the rows this run copied and the
// batches it committed) and cutover.outcome: "ok", "refused" (another
// runner holds the lease, or the migration is not in backfill), "canceled"
// ([Cancel], or the context), "lease_lost", "panic" (a panic or
// runtime.Goexit went on up) or "error". When that span is recording, each
// batch is a child span, cutover.expandcontract.backfill.batch, from the
// read of its keys to its commit, with cutover.migration, cutover.rows and
// cutover.outcome: "ok", "halted" (rolled back for a pause, a
// cancellation, a lost lease or a phase left), "error", "panic", or "done"
// for the last, which finds no key left and records the backfill done. A
// [BatchFunc] gets the batch's span in its context, for spans of its own.
// A batch under a run span that is not recording starts no span and
// allocates nothing for one. Errors are recorded on their spans, with the
// status Error.
//
// # Cost per batch
//
// A batch costs its copy, a read of its keys (made on another connection
// while the batch before it runs) and its commit with the checkpoint: on
// PostgreSQL, for a plain [SQLBatch], one statement (see [SQLBatch]);
// otherwise a transaction of BEGIN, the batch, the checkpoint and COMMIT.
// The lease is renewed by the checkpoint of each batch, and in the
// background every third of its TTL, at no cost of its own.
// BenchmarkBackfillPostgres measures a runner against a hand-written
// keyset loop, and BenchmarkBackfillBatchCost what a batch costs beyond
// its copy.
//
// Everything here is safe for concurrent use, by any number of goroutines
// and processes sharing the database.
package backfill
