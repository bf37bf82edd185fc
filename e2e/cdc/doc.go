// Package cdc checks what package expandcontract/cdc promises when the
// process that applies the log dies: every change of the old PostgreSQL
// database reaches the new store exactly once and in commit order, the
// stores end equal, and no replication slot outlives the migration.
//
// The package has no code of its own, only tests. TestKilledApplierResumes
// starts the test binary again as a child process (TestChildProcess, which
// does nothing unless CUTOVER_CDC_ROLE is set) that runs an applier from
// the old database to the new one, while writers change the old database
// concurrently: inserts, updates and deletes of accounts, each
// transaction also bumping the key's sequence number in a table the log
// carries too. The apply function writes the accounts with the statements
// of cdc.SQLApply and appends each sequence number, with its
// transaction's commit position, to a log table of the new store, in the
// same transaction. The parent kills the child with SIGKILL several times
// mid-stream, once while it holds a transaction half applied and
// uncommitted, and starts a new one each time. At the end, the log holds,
// for every key, each sequence number from 1 to the old database's
// exactly once and in order, with commit positions that never go back; a
// verification (expandcontract/verify) finds the accounts equal; and once
// the migration reaches contract the last applier has dropped its slot
// and publication, which pg_replication_slots and pg_publication show.
// A slot left behind by a failing test is dropped by its cleanup, and
// fails it.
package cdc
