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
// it. [Migration.Retire] runs the last DDL, such as dropping the old
// column, once every instance reports that it resolves only complete.
//
// Each phase bounds the stages that flags may select ([Phase.Clamp]). A
// [Bound] applies that to every request from a cached copy of the phase,
// refreshed in the background, and plugs into flags.WithBound.
//
// All of it is safe for concurrent use by any number of goroutines and
// processes sharing the database.
package expandcontract
