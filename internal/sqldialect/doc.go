// Package sqldialect hides the differences between the three SQL databases
// that hold cutover's expand-contract metadata: SQLite (the pure-Go
// modernc.org/sqlite driver, registered as "sqlite", or a driver
// registered as "sqlite3": github.com/mattn/go-sqlite3, or modernc.org/sqlite
// registered under that name), PostgreSQL (the pgx/v5
// database/sql driver, registered as "pgx") and MySQL or MariaDB (the
// go-sql-driver/mysql driver, registered as "mysql"), all used through sqlx.
//
// A [Dialect] is obtained once with [For] (from an open *sqlx.DB) or
// [ForDriver] (from a driver name) and is then an immutable value, safe for
// concurrent use. It supplies the pieces that differ between the databases:
//
//   - placeholders: queries are written with '?' and passed through
//     [Dialect.Rebind], which turns them into $1, $2, ... for PostgreSQL;
//   - identifiers: [ValidIdentifier] accepts only plain ASCII names and
//     [Dialect.QuoteIdent] validates and quotes them, so a table or column
//     name that comes from configuration is never spliced into SQL raw;
//   - column types for portable DDL ([Dialect.TypeKeyText],
//     [Dialect.TypeText], [Dialect.TypeBigInt], [Dialect.TypeTimestamp],
//     [Dialect.TypeBool], [Dialect.TypeFloat], [Dialect.TypeBytes],
//     [Dialect.AutoIncrementPK]),
//     chosen so that the same statements store, compare and sort values the
//     same way on all three;
//   - an index helper that works where CREATE INDEX IF NOT EXISTS does not
//     exist ([Dialect.CreateIndex]), with the plain statement for a schema
//     tool ([Dialect.CreateIndexSQL]) and a look-up ([Dialect.IndexExists]),
//     and inserting a row and getting its generated key back
//     ([Dialect.InsertReturningID]);
//   - byte order for text of any collation, to compare and sort keys alike
//     on every database ([Dialect.ByteOrder]);
//   - locking: [Dialect.ForUpdate] and [Dialect.SetLockTimeout];
//   - error classification: [Dialect.IsLockTimeout],
//     [Dialect.IsUniqueViolation] and [Dialect.IsSerializationFailure].
//
// # Same behaviour on all three databases
//
// Text columns compare and sort by Unicode code point, case-sensitively, on
// every database: SQLite's default BINARY collation does so, PostgreSQL
// columns are declared COLLATE "C", and MySQL columns are declared
// CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, whatever the defaults of the
// database they are created in. Two differences remain and are the caller's
// to respect:
//
//   - key text (a [Dialect.TypeKeyText] column) holds at most [MaxKeyTextLen]
//     characters, because MySQL can only index bounded VARCHAR columns; a
//     longer value is an error on MySQL in strict mode and silently accepted
//     elsewhere, so check lengths before writing;
//   - MySQL's binary collations ignore trailing spaces when comparing, so
//     "a" and "a " are equal there (and collide in a unique index) but differ
//     on SQLite and PostgreSQL. Keys should not end in spaces.
//
// Times are stored as BIGINT microseconds since the Unix epoch, in UTC, on
// all three databases ([Dialect.TypeTimestamp], [EncodeTime],
// [DecodeTime]): the three native timestamp types differ in range,
// precision, time-zone handling and in how their drivers scan them, while a
// 64-bit integer behaves identically everywhere, sorts correctly and is
// exact to the microsecond. Booleans are stored as SMALLINT 0 or 1.
//
// # Locking
//
// PostgreSQL and MySQL lock rows: SELECT ... FOR UPDATE ([Dialect.ForUpdate])
// inside a transaction locks the rows read until commit, and
// [Dialect.SetLockTimeout] bounds how long a statement waits for a lock.
// SQLite has no row locks: a transaction that writes holds the one write
// lock of the whole database until it commits, and waits for that lock as
// long as the connection's busy_timeout allows. A transaction that reads
// first and writes later can fail with SQLITE_BUSY when another connection
// wrote in between, which [Dialect.IsSerializationFailure] reports so that
// the caller retries. To take the write lock when the transaction starts,
// where FOR UPDATE would take its row locks, begin it with BEGIN IMMEDIATE
// (the DSN parameter _txlock=immediate makes every transaction do so), or
// make its first statement a write, even one that matches no row: the
// expand-contract metadata does the latter, whatever the DSN.
//
// # Drivers
//
// The package imports the MySQL driver package for its error type. It does
// not import the PostgreSQL or SQLite drivers: their errors are recognised
// through the SQLState() string and Code() int methods their error types
// have, and github.com/mattn/go-sqlite3's, which has no such method, by
// its shape (a struct named Error with the integer fields Code and
// ExtendedCode), so a program that uses one database does not link the
// others.
package sqldialect
