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
// When the new store degrades, [Migration.Demote] sets a fleet-wide
// ceiling, such as "no stage above shadow", for a cool-down: every Bound
// reads it with the phase and applies it within its TTL. Of instances
// demoting at once, one sets it. [Migration.Lift], or an operator's move,
// clears it, and a quiet period after a lift keeps a trigger from
// demoting again at once.
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
// # Tracing
//
// The store and its sub-packages start their spans with the tracer
// provider of [WithTracerProvider], or the global one, under the import
// path of the package that starts them. [Migration.Move] is a span named
// cutover.expandcontract.move, and [Migration.Retire] one named
// cutover.expandcontract.retire, with the attributes cutover.migration,
// cutover.phase.from, cutover.phase.to, cutover.forced,
// cutover.statements (how many statements it was given) and
// cutover.outcome: "ok", "refused" (an illegal move, a guard, or a
// lock-safety rule of package lockcheck), "conflict" (the version was not
// the one the move applied to) or "error" (bad input, a failed statement
// or read). Each statement a move or retire runs is a child span,
// cutover.expandcontract.statement, with cutover.statement (the statement
// as it ran, abbreviated to 80 characters), cutover.statement.index (from
// 0), cutover.phase.to and cutover.outcome: "ok", "error", "timeout" (a
// lock timeout; the statements are tried again, see [WithDDLAttempts]) or
// "canceled"; the DROP INDEX CONCURRENTLY of an INVALID index left by a
// failed build is one too, under the index of the build's statement. A
// statement skipped because the history records it done, or because its
// index is built, is an event of the move's span ("statement skipped:
// recorded done"), as is each new try after a lock timeout.
//
// The sub-packages add cutover.expandcontract.backfill.run with a child per
// batch, cutover.expandcontract.verify.run with a child per key range, and
// cutover.expandcontract.repair.round with a child per call of the repair
// function; their package documentation lists their attributes. A span
// whose work fails records the error (span.RecordError) and ends with the
// status Error and the error's text; refusals and conflicts are errors
// too. Child spans are started only under a span that is recording, so
// that work that is not traced (no SDK installed, or a trace the sampler
// dropped) builds none: a backfill batch then costs one look-up of the
// context and no allocation. No attribute holds a key of the migrated
// rows; an error's text, recorded as it is, may (that of a failed batch
// names its key range).
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
// parameter to add. github.com/mattn/go-sqlite3, registered as "sqlite3",
// works too: its parameters are _busy_timeout=5000&_journal_mode=WAL. A
// program that registers modernc.org/sqlite under the name "sqlite3" keeps
// modernc's parameters. The DSN needs no _txlock=immediate: every transaction
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
