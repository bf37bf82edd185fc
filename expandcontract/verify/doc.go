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
// lets the migration move to switchreads; after a move back into backfill,
// only one that started after that move does.
//
// With [WithResume], the key ranges are recorded with the migration as
// they are compared: a run that stops is resumed by the next, which
// compares only the ranges left, and the runs of several instances at
// once share the ranges, each taken under a lease; the result, added up
// over the ranges, is the same as that of one run.
//
// # Key order
//
// Key ranges are cut and compared in one order on both sides: integers by
// value, and text by its UTF-8 bytes, as Go compares strings, whatever the
// collation of either store. Two stores that sort text differently, such
// as PostgreSQL's "C" and MariaDB's utf8mb4_general_ci, or an ICU
// collation, or SQLite's NOCASE, then put every row in the same range on
// both sides. Byte order is case-sensitive and pads nothing: "a" and "a "
// are two keys, though MariaDB's PAD SPACE collations (utf8mb4_bin and
// utf8mb4_general_ci among them) hold only one of them in a unique column.
// The cost is the index: where the key column does not already sort in
// byte order (any MySQL or MariaDB text column, a PostgreSQL column of
// another collation than "C", a SQLite column of another collation than
// BINARY), each range query reads the whole table; see [SQLRows].
//
// A key must be unique on each side: a key found in two rows of a side
// fails the verification with [ErrDuplicateKey], never a clean result.
//
// # Tracing
//
// With a tracer provider ([expandcontract.WithTracerProvider], or the
// global one), each [Verifier.Run] is a span named
// cutover.expandcontract.verify.run, with the attribute cutover.migration
// and, when it ends, those of its [Result]: cutover.rows,
// cutover.verify.new_rows, cutover.verify.differences,
// cutover.verify.ranges, cutover.verify.drilled and cutover.verify.clean,
// and cutover.outcome, "ok" or "error" (differences are a result, not an
// error; a failed run records its error, with the status Error). When that
// span is recording, each key range is a child span,
// cutover.expandcontract.verify.range, with cutover.verify.range (its
// number in key order, from 0), cutover.rows, cutover.verify.new_rows,
// cutover.verify.drilled (1 if its checksums differed and its rows were
// read), cutover.verify.differences and cutover.outcome; a range costs a
// few queries, beside which its span is little. No attribute holds a key;
// an error's text may.
//
// Everything here is safe for concurrent use.
package verify
