package sqldialect

// ByteOrder returns a SQL expression of the text expression expr that
// compares and sorts by the bytes of its UTF-8 encoding, the order of Go's
// string comparison, whatever collation expr has: case-sensitively, with
// no padding (so "a" sorts before "a "), and equal only when the bytes are.
// It is
//
//	SQLite:     (expr) COLLATE BINARY
//	PostgreSQL: CAST((expr) AS TEXT) COLLATE "C"
//	MySQL:      CAST(CONVERT((expr) USING utf8mb4) AS BINARY)
//
// Compare it with text arguments, such as "ByteOrder(col) > ?", and sort
// by it in ORDER BY. An index on the column serves those comparisons and
// sorts only where the column already sorts that way: on SQLite a column
// of the default BINARY collation, on PostgreSQL one declared COLLATE "C"
// (or an index on (col COLLATE "C")). On MySQL and MariaDB no index
// serves them, not even one on a utf8mb4_bin column, whose PAD SPACE
// comparisons differ from byte order ("a" equals "a ", and sorts after
// "a\t"): a query with such a condition reads every row of the table.
//
// expr is spliced as it is; pass a quoted identifier (see
// [Dialect.QuoteIdent]) or other program text, never user input.
func (d Dialect) ByteOrder(expr string) string {
	return d.pick("("+expr+") COLLATE BINARY",
		`CAST((`+expr+`) AS TEXT) COLLATE "C"`,
		"CAST(CONVERT(("+expr+") USING utf8mb4) AS BINARY)")
}
