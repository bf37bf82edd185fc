package sqldialect

import "time"

// MaxKeyTextLen is the most characters a [Dialect.TypeKeyText] column holds
// on every database. MySQL stores key text as VARCHAR(255), the longest
// string it can put in a unique index with utf8mb4; SQLite and PostgreSQL
// have no limit, so callers check lengths themselves to behave the same
// everywhere.
const MaxKeyTextLen = 255

// TypeKeyText returns the column type for text that is part of a primary
// key, a unique constraint or an index: TEXT on SQLite, TEXT COLLATE "C" on
// PostgreSQL, and VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin on
// MySQL. Values compare and sort by code point, case-sensitively, on all
// three; see [MaxKeyTextLen] for their length and the package
// documentation for trailing spaces on MySQL. At most three such columns
// fit in one MySQL index.
func (d Dialect) TypeKeyText() string {
	return d.pick("TEXT", `TEXT COLLATE "C"`, "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
}

// TypeText returns the column type for text of any length that is not
// indexed: TEXT on SQLite, TEXT COLLATE "C" on PostgreSQL, and LONGTEXT
// CHARACTER SET utf8mb4 COLLATE utf8mb4_bin on MySQL (which holds up to
// 4 GiB, where MySQL's TEXT would stop at 64 KiB). Values compare and sort
// by code point on all three.
func (d Dialect) TypeText() string {
	return d.pick("TEXT", `TEXT COLLATE "C"`, "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
}

// TypeBigInt returns the column type for a signed 64-bit integer: INTEGER
// on SQLite (whose integers are 64-bit) and BIGINT on PostgreSQL and MySQL.
// Scan it into an int64.
func (d Dialect) TypeBigInt() string {
	return d.pick("INTEGER", "BIGINT", "BIGINT")
}

// TypeTimestamp returns the column type for a point in time, the same as
// [Dialect.TypeBigInt]: times are stored as microseconds since the Unix
// epoch, in UTC, on every database. Write values with [EncodeTime] and
// turn scanned int64 values back into times with [DecodeTime]. The package
// documentation says why times are not stored in native timestamp columns.
func (d Dialect) TypeTimestamp() string {
	return d.TypeBigInt()
}

// TypeBool returns the column type for a boolean: SMALLINT on every
// database, holding 0 for false and 1 for true. Write the integers 0 and 1,
// for example with [EncodeBool]: the pgx driver refuses a Go bool for a
// SMALLINT parameter. A scan into a *bool turns 0 and 1 into false and
// true on every database.
func (d Dialect) TypeBool() string {
	d.must()
	return "SMALLINT"
}

// TypeFloat returns the column type for a floating-point number: REAL on
// SQLite, DOUBLE PRECISION on PostgreSQL and DOUBLE on MySQL, an IEEE 754
// binary64 value on all three, so that a float64 written comes back
// exactly. Write and scan it as a float64. NaN and the infinities are not
// stored alike (PostgreSQL keeps them, MySQL refuses them, SQLite turns NaN
// into NULL), so keep them out.
func (d Dialect) TypeFloat() string {
	return d.pick("REAL", "DOUBLE PRECISION", "DOUBLE")
}

// TypeBytes returns the column type for a byte string of any length: BLOB
// on SQLite, BYTEA on PostgreSQL and LONGBLOB on MySQL. Write and scan it as
// a []byte.
func (d Dialect) TypeBytes() string {
	return d.pick("BLOB", "BYTEA", "LONGBLOB")
}

// AutoIncrementPK returns the complete column definition, after the column
// name, of a 64-bit integer primary key that the database numbers itself:
// INTEGER PRIMARY KEY AUTOINCREMENT on SQLite, BIGSERIAL PRIMARY KEY on
// PostgreSQL and BIGINT AUTO_INCREMENT PRIMARY KEY on MySQL. On every
// database the numbers increase and a number is not reused after its row
// is deleted, but numbers can be skipped (after a rolled back insert, for
// example), so they order rows by insertion, not count them. Insert
// without the column and read the number with [Dialect.InsertReturningID].
func (d Dialect) AutoIncrementPK() string {
	return d.pick("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY", "BIGINT AUTO_INCREMENT PRIMARY KEY")
}

// EncodeTime returns t as it is stored in a [Dialect.TypeTimestamp]
// column: the number of microseconds from the Unix epoch to t, negative
// before 1970. Precision below a microsecond is dropped, rounding down
// towards the past as t.Truncate(time.Microsecond) does, and t's location
// and monotonic clock reading are not stored.
func EncodeTime(t time.Time) int64 {
	return t.UnixMicro()
}

// DecodeTime returns the time stored as us by [EncodeTime], in UTC. For
// every t, DecodeTime(EncodeTime(t)) is the same instant as
// t.Truncate(time.Microsecond), as [time.Time.Equal] reports; the zero
// time.Time comes back as a time for which IsZero reports true.
func DecodeTime(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}

// EncodeBool returns b as it is stored in a [Dialect.TypeBool] column: 1
// for true and 0 for false.
func EncodeBool(b bool) int {
	if b {
		return 1
	}
	return 0
}
