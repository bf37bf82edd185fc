// Package crashtest checks what the backfill and phase machinery of package
// expandcontract promise when processes die or race, which tests inside one
// process cannot show: a cancelled context still runs the deferred
// rollbacks and lease releases, a SIGKILL does not.
//
// The package has no code of its own, only tests. They start the test
// binary again as child processes (TestChildProcess, which does nothing
// unless CUTOVER_CRASH_ROLE names a role), give each one the DSN of the
// database the parent test created, on the servers the parent started, and
// talk to it with one JSON message per line on its stdout and commands on
// its stdin. Each test runs on SQLite (a file both processes open),
// PostgreSQL and MariaDB:
//
//   - TestKillMidBatchThenResume kills a backfilling child with SIGKILL while
//     a batch's transaction is open and has changed rows: inside the batch
//     function, and after it returned, just before the runner writes the
//     checkpoint in that transaction. The rows it changed are shown to be
//     locked before the kill and free after it, the committed state to
//     hold exactly the batches before it (the checkpoint, the row
//     counters, and a verification that finds exactly the keys past the
//     checkpoint differing), and the dead runner's lease to be still
//     honored. A new runner then takes the lease over once it runs out,
//     which the history records, and finishes: every row was copied
//     exactly once, the verification is clean, and reads may move.
//   - TestRacingMovesHaveOneWinner has two children move the phase at the
//     same moment, round after round, with the same expected version or
//     with the current one. In some rounds on PostgreSQL and MariaDB both
//     moves are held inside their transactions, past the version check,
//     until both are there, so that the compare-and-swap alone decides.
//     Each round exactly one move wins and the other gets a conflict (or,
//     asking for the current version, finds the phase already moved), and
//     the history holds exactly one move per version.
//   - TestRacingBackfillLeases has two children start the same backfill at
//     once. One takes the lease and keeps it by its heartbeat well past
//     the lease's time to live while the other is refused again and
//     again; the holder is then killed, and the other takes the lease
//     over only after it ran out, and finishes. Every row was copied
//     exactly once and the verification is clean.
//
// The invariants are read from the database: the rows, the migration's
// state and history, and [verify.Verifier.Run], never from logs.
// Every child is killed and waited for when its test ends. A child whose
// parent dies does not linger: on Linux the kernel kills it, a child
// waiting for a command exits when its stdin reaches end of file, and every
// child runs under a test timeout of two minutes.
package crashtest
