package verify

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/cutover-go/cutover/expandcontract"
)

// RowSource is one side of a verification: a set of rows, each a unique key
// and a value, read over key ranges. [SQLRows] is the RowSource of a table
// (or of one column expression of a table) in a SQL database; other stores
// implement the interface themselves.
//
// Keys are int64 or string values, the same type on both sides of a
// verification. Every method orders and compares them in one order on
// every store: integers by value, and text by the bytes of its UTF-8
// encoding, as Go compares strings, whatever the store's collation says,
// so that a range holds the same keys on both sides. Keys are unique: a
// source whose keys can repeat returns an error wrapping [ErrDuplicateKey]
// from Checksum for a range with a repeated key, as SQLRows does; without
// that, a repeat is found only in a range that is read row by row.
//
// A RowSource is used by several goroutines at once.
type RowSource interface {
	// Digests lists the digests the source computes checksums with, the
	// fastest first. Every source supports [DigestMD5].
	Digests() []Digest
	// Boundary returns the key of the n-th row after the key after, in key
	// order (n = 1 is the first row after it), counting from the first row
	// if after is nil. ok is false if fewer than n rows follow. A range
	// holds the keys above its From and up to its To, in the same order.
	Boundary(ctx context.Context, after any, n int) (key any, ok bool, err error)
	// Checksum returns the checksum, with digest d, of the rows whose keys
	// lie in r.
	Checksum(ctx context.Context, r expandcontract.KeyRange, d Digest) (Checksum, error)
	// Rows calls fn with every row whose key lies in r, in any order, and
	// stops at the first error fn returns, returning it. fn must not keep
	// the Row's Value after it returns.
	Rows(ctx context.Context, r expandcontract.KeyRange, fn func(Row) error) error
}

// Row is one row of a [RowSource].
type Row struct {
	Key   any    // int64 or string
	Value []byte // the value as text; empty if Null
	Null  bool   // the value is SQL NULL, which differs from the empty text
}

// Digest names the hash a [Checksum] takes of each row. A row is hashed in
// one encoding on every store, so that the same rows give the same
// checksum in any two stores that compute the same digest:
//
//	int key:  key ("=" value | "!")
//	text key: len ":" key ("=" value | "!")
//
// where an integer key is written in decimal, len is the number of
// characters of a text key in decimal, value is the value as UTF-8 text,
// and "!" stands for a NULL value. The key 42 with the value "abc" is
// "42=abc"; the text key "a=" with a NULL value is "2:a=!". No two rows
// have the same encoding.
type Digest uint8

// The digests.
const (
	// DigestMD5 is the first 8 bytes of the MD5 hash of the row, read as a
	// big-endian integer. PostgreSQL and MySQL compute it in SQL, and Go
	// computes it for SQLite and for any other store (see [Checksum.Add]),
	// so every RowSource supports it.
	DigestMD5 Digest = iota + 1
	// DigestPostgres is PostgreSQL's hashtextextended of the row with seed
	// 0 (PostgreSQL 11 and later), four to six times faster there than
	// MD5. Only PostgreSQL computes it, so it is used when both sides are
	// PostgreSQL.
	DigestPostgres
)

// String returns "md5", "postgres", or "Digest(N)" for a value that is not
// a digest.
func (d Digest) String() string {
	switch d {
	case DigestMD5:
		return "md5"
	case DigestPostgres:
		return "postgres"
	}
	return fmt.Sprintf("Digest(%d)", uint8(d))
}

// Checksum sums up the rows of a key range, independently of their order.
// Two ranges holding the same rows have the same checksum; ranges that
// differ in any row, even in a single one among millions, have different
// checksums except with a chance of about 2^-64. Its zero value is the
// checksum of no rows.
type Checksum struct {
	Rows int64  // the number of rows
	Sum  uint64 // the sum of the digests of the rows, modulo 2^64
}

// Add adds the row r to c, hashed with [DigestMD5]. A [RowSource] that
// reads its rows into Go computes its checksums with it.
func (c *Checksum) Add(r Row) {
	var buf [128]byte
	b := appendRow(buf[:0], r)
	h := md5.Sum(b)
	c.Rows++
	c.Sum += binary.BigEndian.Uint64(h[:8])
}

// appendRow appends the encoding of r that digests hash to b.
func appendRow(b []byte, r Row) []byte {
	switch k := r.Key.(type) {
	case int64:
		b = strconv.AppendInt(b, k, 10)
	case string:
		b = strconv.AppendInt(b, int64(utf8.RuneCountInString(k)), 10)
		b = append(b, ':')
		b = append(b, k...)
	default:
		t := fmt.Sprint(k)
		b = strconv.AppendInt(b, int64(utf8.RuneCountInString(t)), 10)
		b = append(b, ':')
		b = append(b, t...)
	}
	if r.Null {
		return append(b, '!')
	}
	b = append(b, '=')
	return append(b, r.Value...)
}

// keyString returns a key as text: an integer in decimal, a string as it is.
func keyString(k any) string {
	switch k := k.(type) {
	case int64:
		return strconv.FormatInt(k, 10)
	case string:
		return k
	}
	return fmt.Sprint(k)
}
