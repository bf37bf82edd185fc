package cdc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Table maps a captured table of the old database to a table of the new
// store, for [SQLApply].
type Table struct {
	// Source is the captured table, "table" (schema public) or
	// "schema.table", as in [Source].Tables. Required.
	Source string
	// Target is the table of the new store, validated and quoted. Empty
	// means the name of Source without its schema.
	Target string
	// Columns maps the source's columns to the target's: source name to
	// target name. Nil copies every column under its own name; otherwise
	// only the columns it names are copied.
	Columns map[string]string
	// Key lists the target's key columns, which must be a primary key or
	// a unique key of the target: the upsert's conflict target, and what
	// deletes match. Nil means the columns of the source's replica
	// identity (its primary key), mapped by Columns.
	Key []string
}

// SQLApply returns an apply function that writes each change of the
// tables given to the new store's database target with one statement: an
// insert or an update becomes an upsert of the row (INSERT ... ON
// CONFLICT ... DO UPDATE on PostgreSQL and SQLite, INSERT ... ON
// DUPLICATE KEY UPDATE on MySQL), as is a row of the watermark backfill
// ([Copy]), an update that changed the key deletes
// the old key first, a delete deletes the key, and a truncate deletes
// every row of the target. A column the update left [Unchanged] keeps its
// value in the new store (and is NULL, or its default, in a row the new
// store did not have yet, which a verification then finds). Changes of a
// table not given are an error, which stops the applier. Names are
// validated and quoted; bad input is an error wrapping
// [ErrInvalidInput]. The function is safe for concurrent use.
func SQLApply(target *sqlx.DB, tables ...Table) (ApplyFunc, error) {
	if target == nil {
		return nil, fmt.Errorf("%w: SQLApply: nil target database", ErrInvalidInput)
	}
	d, err := sqldialect.For(target)
	if err != nil {
		return nil, fmt.Errorf("%w: SQLApply: %w", ErrInvalidInput, err)
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("%w: SQLApply: no table", ErrInvalidInput)
	}
	sa := &sqlApply{d: d, tables: map[string]*mapped{}, stmts: map[string]string{}}
	for i, t := range tables {
		m, err := newMapped(d, t)
		if err != nil {
			return nil, fmt.Errorf("%w: SQLApply: table %d: %w", ErrInvalidInput, i, err)
		}
		if sa.tables[m.source] != nil {
			return nil, fmt.Errorf("%w: SQLApply: table %q given twice", ErrInvalidInput, m.source)
		}
		sa.tables[m.source] = m
	}
	return sa.apply, nil
}

// mapped is a [Table], checked and quoted.
type mapped struct {
	source  string            // "schema.table"
	target  string            // quoted
	columns map[string]string // source name -> quoted target name; nil: all, quoted as they come
	key     []string          // quoted target key columns; nil: the replica identity
}

func newMapped(d sqldialect.Dialect, t Table) (*mapped, error) {
	if _, err := d.QuoteIdent(t.Source); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	m := &mapped{source: t.Source}
	if !strings.Contains(t.Source, ".") {
		m.source = "public." + t.Source
	}
	target := t.Target
	if target == "" {
		_, target, _ = strings.Cut(m.source, ".")
	}
	var err error
	if m.target, err = d.QuoteIdent(target); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if t.Columns != nil {
		if len(t.Columns) == 0 {
			return nil, fmt.Errorf("%s: an empty column map copies nothing", t.Source)
		}
		m.columns = map[string]string{}
		for from, to := range t.Columns {
			q, err := quoteColumn(d, to)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", from, err)
			}
			m.columns[from] = q
		}
	}
	for _, k := range t.Key {
		q, err := quoteColumn(d, k)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		m.key = append(m.key, q)
	}
	return m, nil
}

func quoteColumn(d sqldialect.Dialect, c string) (string, error) {
	if strings.Contains(c, ".") {
		return "", fmt.Errorf("%q: a column name cannot have a dot", c)
	}
	return d.QuoteIdent(c)
}

type sqlApply struct {
	d      sqldialect.Dialect
	tables map[string]*mapped
	mu     sync.Mutex
	stmts  map[string]string // statements by table, operation and columns
}

func (sa *sqlApply) apply(ctx context.Context, tx *sqlx.Tx, t *Txn) error {
	for i := range t.Changes {
		c := &t.Changes[i]
		m := sa.tables[c.Table]
		if m == nil {
			return fmt.Errorf("cdc: SQLApply: a change of %s, which no Table maps", c.Table)
		}
		if err := sa.one(ctx, tx, m, c); err != nil {
			return fmt.Errorf("cdc: SQLApply: %s of %s: %w", c.Op, c.Table, err)
		}
	}
	return nil
}

// one applies change c to the table m.
func (sa *sqlApply) one(ctx context.Context, tx *sqlx.Tx, m *mapped, c *Change) error {
	switch c.Op {
	case Truncate:
		_, err := tx.ExecContext(ctx, `DELETE FROM `+m.target)
		return err
	case Delete:
		return sa.delete(ctx, tx, m, c, c.Old)
	case Update:
		if c.Old != nil && keyChanged(m, c) {
			if err := sa.delete(ctx, tx, m, c, c.Old); err != nil {
				return err
			}
		}
		fallthrough
	case Insert, Copy:
		return sa.upsert(ctx, tx, m, c)
	}
	return fmt.Errorf("unknown operation %v", c.Op)
}

// target returns the quoted target column of source column i of c, and
// whether it is copied.
func (m *mapped) targetCol(d sqldialect.Dialect, col Column) (string, bool) {
	if m.columns == nil {
		return d.Quote(col.Name), true
	}
	q, ok := m.columns[col.Name]
	return q, ok
}

// keyCols returns the target key columns and, for each, the index of the
// source column that feeds it.
func (sa *sqlApply) keyCols(m *mapped, c *Change) ([]string, []int, error) {
	var names []string
	var idx []int
	for i, col := range c.Columns {
		q, ok := m.targetCol(sa.d, col)
		if !ok {
			continue
		}
		if m.key == nil && col.Key || m.key != nil && slices.Contains(m.key, q) {
			names, idx = append(names, q), append(idx, i)
		}
	}
	if len(names) == 0 || m.key != nil && len(names) != len(m.key) {
		return nil, nil, fmt.Errorf("the key columns of %s are not all among its copied columns", m.target)
	}
	return names, idx, nil
}

func keyChanged(m *mapped, c *Change) bool {
	for i, col := range c.Columns {
		if col.Key && i < len(c.Old) && c.Old[i] != nil && fmt.Sprint(c.Old[i]) != fmt.Sprint(c.New[i]) {
			return true
		}
	}
	return false
}

func (sa *sqlApply) delete(ctx context.Context, tx *sqlx.Tx, m *mapped, c *Change, row []any) error {
	names, idx, err := sa.keyCols(m, c)
	if err != nil {
		return err
	}
	args := make([]any, len(idx))
	for i, j := range idx {
		if j >= len(row) {
			return fmt.Errorf("no value of key column %s", names[i])
		}
		args[i] = row[j]
	}
	key := "d\x00" + m.source + "\x00" + strings.Join(names, ",")
	q := sa.stmt(key, func() string {
		conds := make([]string, len(names))
		for i, n := range names {
			conds[i] = n + " = ?"
		}
		return sa.d.Rebind(`DELETE FROM ` + m.target + ` WHERE ` + strings.Join(conds, " AND "))
	})
	_, err = tx.ExecContext(ctx, q, args...)
	return err
}

func (sa *sqlApply) upsert(ctx context.Context, tx *sqlx.Tx, m *mapped, c *Change) error {
	keys, _, err := sa.keyCols(m, c)
	if err != nil {
		return err
	}
	var cols []string
	var args []any
	for i, col := range c.Columns {
		q, ok := m.targetCol(sa.d, col)
		if !ok || i >= len(c.New) || c.New[i] == Unchanged {
			continue
		}
		cols, args = append(cols, q), append(args, c.New[i])
	}
	key := "u\x00" + m.source + "\x00" + strings.Join(cols, ",")
	q := sa.stmt(key, func() string {
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + m.target + ` (` + strings.Join(cols, ", ") + `) VALUES (`)
		for i := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?")
		}
		b.WriteString(")")
		var set []string
		for _, col := range cols {
			if slices.Contains(keys, col) {
				continue
			}
			if sa.d.Name() == sqldialect.MySQL {
				set = append(set, col+" = VALUES("+col+")")
			} else {
				set = append(set, col+" = excluded."+col)
			}
		}
		switch {
		case sa.d.Name() == sqldialect.MySQL && len(set) == 0:
			b.WriteString(" ON DUPLICATE KEY UPDATE " + keys[0] + " = " + keys[0])
		case sa.d.Name() == sqldialect.MySQL:
			b.WriteString(" ON DUPLICATE KEY UPDATE " + strings.Join(set, ", "))
		case len(set) == 0:
			b.WriteString(" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO NOTHING")
		default:
			b.WriteString(" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + strings.Join(set, ", "))
		}
		return sa.d.Rebind(b.String())
	})
	_, err = tx.ExecContext(ctx, q, args...)
	return err
}

// stmt returns the statement cached under key, building it the first
// time.
func (sa *sqlApply) stmt(key string, build func() string) string {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	q, ok := sa.stmts[key]
	if !ok {
		q = build()
		sa.stmts[key] = q
	}
	return q
}
