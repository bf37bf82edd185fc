package verify

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// SQLRows is the [RowSource] of a table in a SQL database: SQLite,
// PostgreSQL or MySQL/MariaDB, opened as for [expandcontract.Open]. Its rows are the
// table's rows, keyed by the Key column, with the Value expression as their
// value. Two SQLRows over the same table with two Value expressions compare
// an old column with a new one; SQLRows over two tables, or two databases,
// compare two copies of the data.
//
// Checksums are computed by the database where it can hash (PostgreSQL,
// MySQL), so that only a count and a sum per key range travel; SQLite
// streams the rows of each range to Go, which hashes them. Each checksum
// also counts the range's distinct keys (in the database, a sort of the
// range's keys: about a tenth more time per query on PostgreSQL), so that
// a key in more than one row fails the verification with
// [ErrDuplicateKey], even where both sides hold the same rows. When [Verifier.Run]
// compares two SQLRows that differ only in Value (the same DB, Table, Key,
// Kind and Where), one query per range reads both values.
//
// Queries select key ranges with the Key column, which should be indexed
// (a primary key is). Text keys are compared and sorted in byte order
// whatever the column's collation: as Key COLLATE BINARY on SQLite,
// CAST(Key AS TEXT) COLLATE "C" on PostgreSQL, and CAST(CONVERT(Key USING
// utf8mb4) AS BINARY) on MySQL. The index serves those queries where the
// column already sorts in byte order: a column of SQLite's default BINARY
// collation, or a PostgreSQL column declared COLLATE "C" (for another
// collation, an index on (Key COLLATE "C") serves them). Elsewhere, and on
// MySQL and MariaDB always, even for a utf8mb4_bin column (whose PAD SPACE
// comparisons are not byte order), every range query reads the whole
// table, and a verification of n rows reads the table about 2n/chunk
// times: use a large [WithChunkSize] there. Integer keys are compared as they are and
// always use the index.
type SQLRows struct {
	// DB is the database. Required.
	DB *sqlx.DB
	// Table is the table, as "name" or "schema.name". It is validated and
	// quoted, never spliced raw. Required.
	Table string
	// Key is the key column: unique in the table, usually its primary key.
	// It is validated and quoted. Required.
	Key string
	// Kind says how keys are read: int64 for [expandcontract.IntKeys], string for
	// [expandcontract.TextKeys], compared in byte order.
	Kind expandcontract.KeyKind
	// Value is the SQL expression compared, such as "phone_number" or
	// "COALESCE(first_name, '') || ' ' || last_name", evaluated for each row
	// and compared as text (CAST AS TEXT, or AS CHAR on MySQL). It is
	// spliced into the queries as it is: it is code of the program, like a
	// query, and must never come from users. When the two sides are in
	// different databases, write both expressions so that equal values give
	// equal text on both (numbers and times are formatted differently by
	// each database). Required.
	Value string
	// Where, if not empty, is a SQL condition that limits the rows compared,
	// such as "deleted_at IS NULL". Like Value it is program code, spliced
	// as it is.
	Where string
}

// sqlPlan holds what the queries of a SQLRows are built from, checked and
// quoted.
type sqlPlan struct {
	db    *sqlx.DB
	d     sqldialect.Dialect
	kind  expandcontract.KeyKind
	table string // quoted
	key   string // quoted
	ord   string // the key as compared and sorted: in byte order for text keys
	where string // "(cond)" or ""
	enc   string // the value encoded: '=' || value, or '!' for NULL
}

// plan validates s and returns its query parts.
func (s *SQLRows) plan() (*sqlPlan, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil *SQLRows", ErrInvalidInput)
	}
	if s.DB == nil {
		return nil, fmt.Errorf("%w: SQLRows of table %q: nil DB", ErrInvalidInput, s.Table)
	}
	d, err := sqldialect.For(s.DB)
	if err != nil {
		return nil, fmt.Errorf("%w: SQLRows of table %q: %w", ErrInvalidInput, s.Table, err)
	}
	p := &sqlPlan{db: s.DB, d: d, kind: s.Kind}
	if p.table, err = d.QuoteIdent(s.Table); err != nil {
		return nil, fmt.Errorf("%w: SQLRows table: %w", ErrInvalidInput, err)
	}
	if strings.Contains(s.Key, ".") {
		return nil, fmt.Errorf("%w: SQLRows key column %q: a column name has no dot", ErrInvalidInput, s.Key)
	}
	if p.key, err = d.QuoteIdent(s.Key); err != nil {
		return nil, fmt.Errorf("%w: SQLRows key column: %w", ErrInvalidInput, err)
	}
	switch s.Kind {
	case expandcontract.IntKeys:
		p.ord = p.key
	case expandcontract.TextKeys:
		p.ord = d.ByteOrder(p.key)
	default:
		return nil, fmt.Errorf("%w: SQLRows of table %q: unknown key kind %d", ErrInvalidInput, s.Table, s.Kind)
	}
	if strings.TrimSpace(s.Value) == "" {
		return nil, fmt.Errorf("%w: SQLRows of table %q: empty Value expression", ErrInvalidInput, s.Table)
	}
	if strings.TrimSpace(s.Where) != "" {
		p.where = "(" + s.Where + ")"
	}
	if d.Name() == sqldialect.MySQL {
		p.enc = "COALESCE(CONCAT('=', CAST((" + s.Value + ") AS CHAR)), '!')"
	} else {
		p.enc = "COALESCE('=' || CAST((" + s.Value + ") AS TEXT), '!')"
	}
	return p, nil
}

// validate reports whether s is usable, so that [Verifier.Run] refuses bad
// input before it starts.
func (s *SQLRows) validate() error {
	_, err := s.plan()
	return err
}

// Digests returns [DigestPostgres] and [DigestMD5] on PostgreSQL, and
// [DigestMD5] elsewhere.
func (s *SQLRows) Digests() []Digest {
	if s != nil && s.DB != nil {
		if d, err := sqldialect.For(s.DB); err == nil && d.Name() == sqldialect.Postgres {
			return []Digest{DigestPostgres, DigestMD5}
		}
	}
	return []Digest{DigestMD5}
}

// cond returns the WHERE clause that selects the rows of r, with its
// arguments.
func (p *sqlPlan) cond(r expandcontract.KeyRange) (string, []any, error) {
	var parts []string
	var args []any
	if p.where != "" {
		parts = append(parts, p.where)
	}
	for _, b := range []struct {
		v  any
		op string
	}{{r.From, " > ?"}, {r.To, " <= ?"}} {
		if b.v == nil {
			continue
		}
		if err := p.checkKey(b.v); err != nil {
			return "", nil, err
		}
		parts = append(parts, p.ord+b.op)
		args = append(args, b.v)
	}
	if len(parts) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(parts, " AND "), args, nil
}

// checkKey reports an error if k is not a key of p's kind.
func (p *sqlPlan) checkKey(k any) error {
	switch k.(type) {
	case int64:
		if p.kind == expandcontract.IntKeys {
			return nil
		}
	case string:
		if p.kind == expandcontract.TextKeys {
			return nil
		}
	}
	return fmt.Errorf("%w: key %v of type %T where %v keys are expected", ErrInvalidInput, k, k, p.kind)
}

// newKey returns a pointer to scan a key of p's kind into, and a function
// that returns the scanned key.
func (p *sqlPlan) newKey() (any, func() any) {
	if p.kind == expandcontract.TextKeys {
		var k string
		return &k, func() any { return k }
	}
	var k int64
	return &k, func() any { return k }
}

// Boundary returns the key of the n-th row after the key after, in key
// order: byte order for text keys.
func (s *SQLRows) Boundary(ctx context.Context, after any, n int) (any, bool, error) {
	p, err := s.plan()
	if err != nil {
		return nil, false, err
	}
	if n < 1 {
		return nil, false, fmt.Errorf("%w: boundary after %d rows", ErrInvalidInput, n)
	}
	where, args, err := p.cond(expandcontract.KeyRange{From: after})
	if err != nil {
		return nil, false, err
	}
	q := "SELECT " + p.key + " FROM " + p.table + where + " ORDER BY " + p.ord + " LIMIT 1 OFFSET " + strconv.Itoa(n-1)
	dst, key := p.newKey()
	if err := p.db.QueryRowContext(ctx, p.d.Rebind(q), args...).Scan(dst); errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("verify: boundary of %s: %w", p.table, err)
	}
	return key(), true, nil
}

// Checksum returns the checksum of the rows whose keys lie in r.
// PostgreSQL computes both digests and MySQL computes [DigestMD5] in SQL;
// on SQLite the rows are read and hashed in Go. A key in more than one of
// the rows is an error wrapping [ErrDuplicateKey] that names it.
func (s *SQLRows) Checksum(ctx context.Context, r expandcontract.KeyRange, d Digest) (Checksum, error) {
	p, err := s.plan()
	if err != nil {
		return Checksum{}, err
	}
	cs, err := p.checksums(ctx, r, d, []string{p.enc})
	if err != nil {
		return Checksum{}, err
	}
	return cs[0], nil
}

// checksums returns, from one query, the checksums of the rows of r with
// each of the value encodings encs.
func (p *sqlPlan) checksums(ctx context.Context, r expandcontract.KeyRange, d Digest, encs []string) ([]Checksum, error) {
	cs := make([]Checksum, len(encs))
	var hash func(enc string) string
	switch name := p.d.Name(); {
	case d == DigestMD5 && name == sqldialect.SQLite:
		var prev any
		err := p.scan(ctx, r, true, encs, func(rows []Row) error {
			if cs[0].Rows > 0 && rows[0].Key == prev {
				return ErrDuplicateKey // named below, once the rows are closed
			}
			prev = rows[0].Key
			for i, row := range rows {
				cs[i].Add(row)
			}
			return nil
		})
		if errors.Is(err, ErrDuplicateKey) {
			where, args, _ := p.cond(r)
			return nil, p.duplicate(ctx, where, args)
		}
		return cs, err
	case d == DigestMD5 && name == sqldialect.Postgres:
		hash = func(enc string) string {
			return "('x' || left(md5(convert_to(" + p.encRow(enc) + ", 'UTF8')), 16))::bit(64)::bigint"
		}
	case d == DigestPostgres && name == sqldialect.Postgres:
		hash = func(enc string) string { return "hashtextextended((" + p.encRow(enc) + ") COLLATE \"C\", 0)" }
	case d == DigestMD5 && name == sqldialect.MySQL:
		hash = func(enc string) string {
			return "CAST(CONV(LEFT(MD5(CONVERT(" + p.encRow(enc) + " USING utf8mb4)), 16), 16, 10) AS UNSIGNED)"
		}
	default:
		return nil, fmt.Errorf("%w: digest %v on %s", ErrInvalidInput, d, name)
	}
	where, args, err := p.cond(r)
	if err != nil {
		return nil, err
	}
	text := "TEXT"
	if p.d.Name() == sqldialect.MySQL {
		text = "CHAR"
	}
	q := "SELECT COUNT(*), COUNT(" + p.ord + "), COUNT(DISTINCT " + p.ord + ")"
	for _, enc := range encs {
		q += ", CAST(SUM(" + hash(enc) + ") AS " + text + ")"
	}
	q += " FROM " + p.table + where
	var n, keys, distinct int64
	sums := make([]sql.NullString, len(encs))
	dst := []any{&n, &keys, &distinct}
	for i := range sums {
		dst = append(dst, &sums[i])
	}
	if err := p.db.QueryRowContext(ctx, p.d.Rebind(q), args...).Scan(dst...); err != nil {
		return nil, fmt.Errorf("verify: checksum of %s: %w", p.table, err)
	}
	if distinct != keys {
		return nil, p.duplicate(ctx, where, args)
	}
	for i := range cs {
		cs[i].Rows = n
		if cs[i].Sum, err = sumMod64(sums[i].String); err != nil {
			return nil, fmt.Errorf("verify: checksum of %s: %w", p.table, err)
		}
	}
	return cs, nil
}

// duplicate returns the error that names the first key, in key order,
// that more than one row of the rows selected by where holds.
func (p *sqlPlan) duplicate(ctx context.Context, where string, args []any) error {
	q := "SELECT " + p.ord + ", COUNT(*) FROM " + p.table + where + " GROUP BY " + p.ord +
		" HAVING COUNT(*) > 1 ORDER BY " + p.ord + " LIMIT 1"
	dst, key := p.newKey()
	var n int64
	if err := p.db.QueryRowContext(ctx, p.d.Rebind(q), args...).Scan(dst, &n); err != nil {
		return fmt.Errorf("%w in %s; reading which: %w", ErrDuplicateKey, p.table, err)
	}
	return fmt.Errorf("%w: key %q in %d rows of %s", ErrDuplicateKey, keyString(key()), n, p.table)
}

// encRow returns the SQL expression of the encoding of a row (see
// [Digest]) with the value encoding enc, on PostgreSQL and MySQL.
func (p *sqlPlan) encRow(enc string) string {
	if p.d.Name() == sqldialect.MySQL {
		kt := "CAST(" + p.key + " AS CHAR)"
		if p.kind == expandcontract.IntKeys {
			return "CONCAT(" + kt + ", " + enc + ")"
		}
		return "CONCAT(CHAR_LENGTH(" + kt + "), ':', " + kt + ", " + enc + ")"
	}
	kt := "CAST(" + p.key + " AS TEXT)"
	if p.kind == expandcontract.IntKeys {
		return kt + " || " + enc
	}
	return "length(" + kt + ") || ':' || " + kt + " || " + enc
}

// Rows calls fn with every row whose key lies in r, in key order (byte
// order for text keys).
func (s *SQLRows) Rows(ctx context.Context, r expandcontract.KeyRange, fn func(Row) error) error {
	p, err := s.plan()
	if err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil row function", ErrInvalidInput)
	}
	return p.scan(ctx, r, true, []string{p.enc}, func(rows []Row) error { return fn(rows[0]) })
}

// scan reads the rows of r, with one value for each of the value encodings
// encs, and calls fn with them: rows[i] has the key and the value of
// encs[i]. The Values are valid only until fn returns.
func (p *sqlPlan) scan(ctx context.Context, r expandcontract.KeyRange, ordered bool, encs []string, fn func(rows []Row) error) error {
	where, args, err := p.cond(r)
	if err != nil {
		return err
	}
	q := "SELECT " + p.key + ", " + strings.Join(encs, ", ") + " FROM " + p.table + where
	if ordered {
		q += " ORDER BY " + p.ord
	}
	rows, err := p.db.QueryContext(ctx, p.d.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("verify: read %s: %w", p.table, err)
	}
	defer rows.Close()
	k, key := p.newKey()
	vals := make([]sql.RawBytes, len(encs))
	dst := []any{k}
	for i := range vals {
		dst = append(dst, &vals[i])
	}
	out := make([]Row, len(encs))
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("verify: read %s: %w", p.table, err)
		}
		kv := key()
		for i, v := range vals {
			out[i] = Row{Key: kv}
			switch {
			case len(v) > 0 && v[0] == '=':
				out[i].Value = v[1:]
			case len(v) == 1 && v[0] == '!':
				out[i].Null = true
			default:
				return fmt.Errorf("%w: read %s: malformed value encoding %q", expandcontract.ErrCorrupt, p.table, v)
			}
		}
		if err := fn(out); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify: read %s: %w", p.table, err)
	}
	return nil
}

// sqlPair is two SQLRows that read the same rows of one table with two
// Value expressions, an old column and a new one: one query reads both.
type sqlPair struct {
	p    *sqlPlan
	encs []string // old, new
}

// newSQLPair returns the pair of old and new, or nil if they are not two
// SQLRows over the same rows.
func newSQLPair(old, new RowSource) *sqlPair {
	o, ok1 := old.(*SQLRows)
	n, ok2 := new.(*SQLRows)
	if !ok1 || !ok2 || o.DB != n.DB || o.Table != n.Table || o.Key != n.Key || o.Kind != n.Kind || o.Where != n.Where {
		return nil
	}
	po, err1 := o.plan()
	pn, err2 := n.plan()
	if err1 != nil || err2 != nil {
		return nil
	}
	return &sqlPair{p: po, encs: []string{po.enc, pn.enc}}
}

// checksums returns the checksums of the old and the new side over r.
func (sp *sqlPair) checksums(ctx context.Context, r expandcontract.KeyRange, d Digest) (old, new Checksum, err error) {
	cs, err := sp.p.checksums(ctx, r, d, sp.encs)
	if err != nil {
		return Checksum{}, Checksum{}, err
	}
	return cs[0], cs[1], nil
}

// drill returns the keys of r whose old and new values differ, in key
// order.
func (sp *sqlPair) drill(ctx context.Context, r expandcontract.KeyRange) ([]diff, error) {
	var diffs []diff
	err := sp.p.scan(ctx, r, true, sp.encs, func(rows []Row) error {
		if rows[0].Null != rows[1].Null || !bytes.Equal(rows[0].Value, rows[1].Value) {
			diffs = append(diffs, diff{rows[0].Key, ErrValueDiffers})
		}
		return nil
	})
	return diffs, err
}

var mask64 = new(big.Int).SetUint64(^uint64(0))

// sumMod64 parses a decimal sum, as SQL computes it without overflow, and
// returns it modulo 2^64. An empty string, the sum of no rows, is 0.
func sumMod64(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return uint64(v), nil
	}
	var b big.Int
	if _, ok := b.SetString(s, 10); !ok {
		return 0, fmt.Errorf("%w: checksum sum %q is not an integer", expandcontract.ErrCorrupt, s)
	}
	return b.And(&b, mask64).Uint64(), nil
}
