// Package expandcontract keeps the phase of each migration in metadata
// tables of the application's own database, moves it through the
// expand-contract sequence under guards, and runs the work of the phases:
// backfill, verification and repair.
//
// [Open] creates the tables (prefix "cutover_" by default) in SQLite,
// PostgreSQL or MySQL/MariaDB through sqlx, idempotently and from any
// number of instances at once. A migration's [Phase] goes
//
//	expand -> dualwrite -> backfill -> switchreads -> contract
//
// one step at a time, forward or back, with [Store.Move]. A move is a
// compare-and-swap on the migration's version, so of two instances racing
// one wins and the other gets a *[ConflictError]; reads cannot move to
// switchreads before the backfill is done and a verification after it came
// back clean; contract is final unless forced. Every move, refusal and
// conflict is appended to the migration's history ([Store.Events]) with
// who asked and why. A move may run DDL, such as adding the new column, under
// a lock timeout with retries, so that it never queues behind a long
// transaction while the application's queries queue behind it.
// [Store.Retire] runs the last DDL, such as dropping the old column, once
// every instance reports that it resolves only complete.
//
// Each phase bounds the stages that flags may select ([Phase.Clamp]). A
// [Bound] applies that to every request from a cached copy of the phase,
// refreshed in the background, and plugs into flags.WithBound.
//
// [Store.NewBackfill] copies rows in keyset batches, each batch committed
// with its checkpoint, under a lease that one runner holds at a time, with
// rate limits, a throttle hook, and pause, resume and cancel from any
// instance. [Store.Verify] compares the old and new rows by checksums over
// key ranges, drills down to the differing keys, stores the result with the
// migration and sends the keys to the repair log. [Store.RepairLog] is the
// durable [cutover.RepairLog] behind dualwrite and shadowread, and its
// [Repairer] drains it by calling a function per key, with retries and
// backoff.
//
// All of it is safe for concurrent use by any number of goroutines and
// processes sharing the database.
package expandcontract
