// Package expandcontract keeps the phase of each migration in metadata
// tables of the application's own database and moves it through the
// expand-contract sequence under guards. Its sub-packages do the work of the
// phases on the same tables: [github.com/cutover-go/cutover/expandcontract/backfill]
// copies the rows, [github.com/cutover-go/cutover/expandcontract/verify]
// compares the stores, and [github.com/cutover-go/cutover/expandcontract/repair]
// keeps the durable repair log and drains it.
//
// [Open] creates the tables (prefix "cutover_" by default) in SQLite,
// PostgreSQL or MySQL/MariaDB through sqlx, idempotently and from any
// number of instances at once. [Store.Migration] returns the handle of one
// migration, by name; the sub-packages take that handle. A migration's
// [Phase] goes
//
//	expand -> dualwrite -> backfill -> switchreads -> contract
//
// one step at a time, forward or back, with [Migration.Move]. A move is a
// compare-and-swap on the migration's version, so of two instances racing
// one wins and the other gets a *[ConflictError]; reads cannot move to
// switchreads before the backfill is done and a verification after it, and
// after the last move into backfill, came back clean; contract is final
// unless forced. Every move, refusal and
// conflict is appended to the migration's history ([Migration.Events])
// with who asked and why. A move may run DDL, such as adding the new
// column, under a lock timeout with retries, so that it never queues
// behind a long transaction while the application's queries queue behind
// it. The statements are checked first by package lockcheck, which refuses
// one that would lock or rewrite a busy table unless an override lets it
// through; on PostgreSQL those that must run on their own, such as
// CREATE INDEX CONCURRENTLY and VALIDATE CONSTRAINT, run before the phase changes,
// and each statement run that way is recorded, so that a move tried again
// after a failure skips what is done (see Move.SQL). [Migration.Retire]
// runs the last DDL, such as dropping the old column, once every instance
// reports that it resolves only complete.
//
// Each phase bounds the stages that flags may select ([Phase.Clamp]). A
// [Bound] applies that to every request from a cached copy of the phase,
// refreshed in the background, and plugs into flags.WithBound.
//
// [Migration.Status] reads what an operator needs to see of a migration at
// one moment: its state and the backfill's settings, the stages its phase
// allows, the backfill's rate, ETA and recent progress as its runner
// recorded them, the age of the last verification, the repair log's
// backlog and its last hour, the instances and the stage each resolves,
// and the recent history. [Store.Statuses] reads that of every migration
// in a few statements, and a store opened with [WithMeterProvider]
// reports the same figures as gauges, from every instance, until
// [Store.Close].
//
// # Schema
//
// The metadata tables are at [SchemaVersion]; [Open] creates them, and
// brings those of an older version up in place. A service whose own
// migration tool owns its DDL runs the statements of [SchemaDDL] (and of
// [SchemaUpgradeDDL] for an upgrade) with that tool instead, and opens the
// store [WithoutSchemaChanges], which only checks the tables and names
// what is missing.
//
// All of it is safe for concurrent use by any number of goroutines and
// processes sharing the database.
//
// # SQLite
//
// Open a SQLite database (modernc.org/sqlite) that more than one
// connection writes with a busy timeout, so that a writer waits for
// another instead of failing, and best in WAL mode, so that readers do not
// hold up the writer's commits:
//
//	file:app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)
//
// [Open] refuses a database file without a busy timeout, naming the
// parameter to add. The DSN needs no _txlock=immediate: every transaction
// of this package and its sub-packages that writes (a move, a backfill
// batch with its checkpoint, the take-over of a lease, a pause) takes the
// database's write lock when it begins, so that one that reads before it
// writes waits out the busy timeout like any writer, instead of failing
// at once with "database is locked (517)" (SQLITE_BUSY_SNAPSHOT) when
// another connection wrote after its read. A BatchFunc's transaction is
// one of them. The application's own transactions are not: without
// _txlock=immediate, one of them that reads and then writes can still
// fail that way.
package expandcontract
