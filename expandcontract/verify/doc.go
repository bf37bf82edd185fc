// Package verify compares the two stores of a migration of package
// expandcontract, stores the result with the migration, and sends every
// differing key to the repair log.
//
// A [RowSource] is one side: [SQLRows] reads a table (or a column of it)
// of SQLite, PostgreSQL or MySQL/MariaDB, and computes the checksums of
// key ranges in the database where it can. [New] returns a [Verifier] for a
// migration and its two sides; [Verifier.Run] checksums both sides range by
// range, drills down to the differing keys only where checksums differ,
// and returns a [Result]. A clean result newer than the backfill's end
// lets the migration move to switchreads.
//
// Everything here is safe for concurrent use.
package verify
