package backfill

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// SQLBatch is a [Batch] that runs one SQL statement on the store's
// database for each key range, such as a column copy within a table:
//
//	UPDATE customers SET phone_number = customer_phone WHERE id > :from AND id <= :to
//
// The statement names the range's bounds with the parameters :from and
// :to, the bounds of a [expandcontract.KeyRange]: the keys of the batch are those
// greater than :from and at most :to. It must use both, and no other named
// parameter. They are bound as arguments, never spliced into the text.
// Text inside string literals, quoted identifiers and comments is left
// alone, as is a PostgreSQL cast such as x::text; the statement must not
// have positional placeholders ('?' or $1) of its own. The batch's row
// count is the statement's rows affected; note that MySQL counts only the
// rows an UPDATE changed, not the rows it matched.
//
// The first batch of a backfill starts at the first key, and has no
// previous key for :from. There a [Runner] binds :from to a value
// just below the first key: that key minus one for [expandcontract.IntKeys], and the
// empty string for [expandcontract.TextKeys]. If the column holds a key that is not
// greater than that value (the smallest int64; the empty string; on
// MySQL, whose PAD SPACE collations compare the empty string as spaces, a
// key of only spaces or one that starts with a control character), the run
// stops with an error before the first batch: backfill such a table with a
// [BatchFunc], which gets a nil From for the first batch.
//
// On PostgreSQL, a statement that is a plain INSERT, UPDATE or DELETE
// (it opens with that word, has no RETURNING clause and no ';' but a
// trailing one) runs, from a run's second batch on, together with the
// checkpoint as one statement: the batch becomes a data-modifying WITH
// query whose RETURNING rows are counted, and the checkpoint an UPDATE of
// the migration's row in the same statement, which PostgreSQL commits
// whole or not at all. That saves three of the four round trips of a
// batch in a transaction of its own, and keeps what the transaction
// guarantees: the batch commits with its checkpoint, only while the
// runner holds the lease, in the phase, neither paused nor canceled. A
// batch that adds a progress sample (at most one every ten seconds) runs
// in a transaction, as on the other databases; so does a batch whose
// fused statement failed for another reason than the runner's state, so
// that the error a run returns is the statement's own.
//
// [New] checks and compiles the statement, so a mistake in
// it is reported before anything runs.
type SQLBatch string

// CopyRange runs the statement over r with tx. r.From must not be nil,
// since the statement needs a value for :from. CopyRange compiles the
// statement at each call; a [Runner] compiles it once.
func (q SQLBatch) CopyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	d, err := sqldialect.ForDriver(tx.DriverName())
	if err != nil {
		return 0, fmt.Errorf("backfill: SQL batch: %w", err)
	}
	c, err := compileSQLBatch(string(q), d)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return c.CopyRange(ctx, tx, r)
}

// compiledSQL is an [SQLBatch] with its parameters turned into the
// dialect's placeholders.
type compiledSQL struct {
	query  string
	params []bool // per placeholder in order: false for :from, true for :to
}

// CopyRange runs the statement over r with tx.
func (c *compiledSQL) CopyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	if r.From == nil || r.To == nil {
		return 0, fmt.Errorf("%w: SQL batch over a range without a bound (From %v, To %v); :from and :to need values",
			ErrInvalidInput, r.From, r.To)
	}
	args := make([]any, len(c.params))
	for i, to := range c.params {
		if to {
			args[i] = r.To
		} else {
			args[i] = r.From
		}
	}
	res, err := tx.ExecContext(ctx, c.query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// compileSQLBatch finds the parameters of stmt outside literals and
// comments and replaces them with d's placeholders. On PostgreSQL every
// :from becomes $1 and every :to $2; elsewhere each becomes '?', with its
// argument in order.
func compileSQLBatch(stmt string, d sqldialect.Dialect) (*compiledSQL, error) {
	if strings.TrimSpace(stmt) == "" {
		return nil, fmt.Errorf("empty SQL batch statement")
	}
	pg, my := d.Name() == sqldialect.Postgres, d.Name() == sqldialect.MySQL
	var out strings.Builder
	c := &compiledSQL{}
	var seenFrom, seenTo bool
	n := len(stmt)
	for i := 0; i < n; {
		ch := stmt[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			// A string literal or quoted identifier. Backslash escapes in
			// MySQL strings and in PostgreSQL E'' strings.
			backslash := my && ch != '`' || pg && ch == '\'' && i > 0 && (stmt[i-1] == 'E' || stmt[i-1] == 'e') &&
				(i == 1 || !identByte(stmt[i-2]))
			j := i + 1
			for j < n {
				if backslash && stmt[j] == '\\' {
					j += 2
					continue
				}
				if stmt[j] == ch {
					if j+1 < n && stmt[j+1] == ch { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= n {
				return nil, fmt.Errorf("SQL batch statement: unterminated %c quote at byte %d", ch, i)
			}
			out.WriteString(stmt[i : j+1])
			i = j + 1
		case ch == '-' && i+1 < n && stmt[i+1] == '-', my && ch == '#':
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = n - i
			}
			out.WriteString(stmt[i : i+j])
			i += j
		case ch == '/' && i+1 < n && stmt[i+1] == '*':
			j := strings.Index(stmt[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("SQL batch statement: unterminated comment at byte %d", i)
			}
			out.WriteString(stmt[i : i+2+j+2])
			i += 2 + j + 2
		case pg && ch == '$' && (i == 0 || !identByte(stmt[i-1])):
			// $1 is a placeholder; $tag$ or $$ opens a dollar-quoted string.
			j := i + 1
			for j < n && identByte(stmt[j]) {
				j++
			}
			if j > i+1 && isDigit(stmt[i+1]) {
				return nil, fmt.Errorf("SQL batch statement: positional placeholder %s at byte %d; use :from and :to", stmt[i:j], i)
			}
			if j >= n || stmt[j] != '$' {
				out.WriteByte(ch)
				i++
				continue
			}
			tag := stmt[i : j+1]
			k := strings.Index(stmt[j+1:], tag)
			if k < 0 {
				return nil, fmt.Errorf("SQL batch statement: unterminated %s string at byte %d", tag, i)
			}
			end := j + 1 + k + len(tag)
			out.WriteString(stmt[i:end])
			i = end
		case ch == '?':
			return nil, fmt.Errorf("SQL batch statement: positional placeholder ? at byte %d; use :from and :to", i)
		case ch == ':' && i+1 < n && stmt[i+1] == ':':
			out.WriteString("::") // a PostgreSQL cast
			i += 2
		case ch == ':' && i+1 < n && identStart(stmt[i+1]) && (i == 0 || !identByte(stmt[i-1])):
			j := i + 1
			for j < n && identByte(stmt[j]) {
				j++
			}
			var to bool
			switch name := stmt[i+1 : j]; name {
			case "from":
				seenFrom = true
			case "to":
				seenTo, to = true, true
			default:
				return nil, fmt.Errorf("SQL batch statement: unknown parameter :%s at byte %d; the parameters are :from and :to", name, i)
			}
			switch {
			case pg && to:
				out.WriteString("$2")
			case pg:
				out.WriteString("$1")
			default:
				out.WriteByte('?')
				c.params = append(c.params, to)
			}
			i = j
		default:
			out.WriteByte(ch)
			i++
		}
	}
	if !seenFrom || !seenTo {
		return nil, fmt.Errorf("SQL batch statement must bound its range with both :from and :to, as in WHERE id > :from AND id <= :to")
	}
	if pg {
		c.params = []bool{false, true}
	}
	c.query = out.String()
	return c, nil
}

func identStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func identByte(c byte) bool { return identStart(c) || isDigit(c) || c >= 0x80 }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
