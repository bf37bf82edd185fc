package cdc

import (
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// LSN is a position in PostgreSQL's write-ahead log.
type LSN uint64

// String formats l as PostgreSQL does, such as "16/B374D848".
func (l LSN) String() string { return pglogrepl.LSN(l).String() }

// Op is the kind of a [Change].
type Op uint8

// The kinds of changes.
const (
	Insert   Op = iota + 1 // a row was inserted: New holds it
	Update                 // a row was updated: New holds it, Old its old key if that changed
	Delete                 // a row was deleted: Old holds its key
	Truncate               // the table was truncated: no row
	Copy                   // a row of the watermark backfill, as the old database had it: New holds it
)

// String returns "insert", "update", "delete", "truncate", "copy", or
// "Op(N)".
func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	case Copy:
		return "copy"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Column is a column of a captured table, as the log describes it.
type Column struct {
	Name string
	OID  uint32 // the OID of its type, such as pgtype.Int8OID
	Key  bool   // part of the table's replica identity (usually its primary key)
}

// unchanged is the type of [Unchanged].
type unchanged struct{}

func (unchanged) String() string { return "cdc.Unchanged" }

// Unchanged stands, in [Change].New, for the value of a column that an
// update left unchanged and that PostgreSQL stores out of line (TOAST):
// the log does not carry it. The SQL helpers leave such a column as the
// new store has it.
var Unchanged any = unchanged{}

// Change is one row change of a committed transaction, with its values
// decoded.
type Change struct {
	Op Op
	// Table is the captured table, as "schema.table" ("public.users").
	Table string
	// Columns describes the table's columns, in order, as the log last
	// described them. It is shared by the changes of the table and must
	// not be modified.
	Columns []Column
	// New holds the row's values after an insert or an update, one per
	// column, decoded by pgx's types as pgx would return them (int64 for
	// bigint, int32 for integer, string for text, time.Time for
	// timestamps, pgtype.Numeric for numeric, []byte for bytea), except
	// that json and jsonb values and those of types pgx does not know are
	// their text. NULL is nil, and [Unchanged] an out-of-line value the
	// update did not change. Nil for a delete or a truncate.
	New []any
	// Old holds, for a delete, the key of the deleted row; for an update
	// that changed the key, the old key. Columns that are not part of the
	// key are nil, unless the table's REPLICA IDENTITY is FULL, when Old
	// holds the whole old row. Nil otherwise.
	Old []any
}

// Get returns the value of the column name: from New if the change has a
// new row, from Old otherwise. It reports false for a column the table
// does not have.
func (c *Change) Get(name string) (any, bool) {
	for i, col := range c.Columns {
		if col.Name == name {
			row := c.New
			if row == nil {
				row = c.Old
			}
			if i < len(row) {
				return row[i], true
			}
			return nil, true
		}
	}
	return nil, false
}

// Txn is a committed transaction of the old database, or part of one, as
// the apply function gets it. Transactions come in the order they
// committed.
type Txn struct {
	XID        uint32    // the transaction's id on the old database
	CommitLSN  LSN       // the position of its commit record
	EndLSN     LSN       // the position just past its commit record; 0 until the last part
	CommitTime time.Time // when it committed on the old database
	// Changes are its changes to the captured tables, in the order it
	// made them.
	Changes []Change
	// Part numbers the calls of one transaction: a transaction of more
	// changes than [WithMaxChanges] comes in several calls, Part 0, 1, 2
	// and so on, all in the same transaction of the new store. Last is
	// true on the last call.
	Part int
	Last bool
}

// relation is a table as the log's relation message described it.
type relation struct {
	table   string
	columns []Column
}

func newRelation(m *pglogrepl.RelationMessage) *relation {
	r := &relation{table: m.Namespace + "." + m.RelationName, columns: make([]Column, len(m.Columns))}
	for i, c := range m.Columns {
		r.columns[i] = Column{Name: c.Name, OID: c.DataType, Key: c.Flags&1 != 0}
	}
	return r
}

// decoder turns the text values of the log into Go values.
type decoder struct{ types *pgtype.Map }

func newDecoder() *decoder { return &decoder{types: pgtype.NewMap()} }

// tuple decodes the values of a tuple of rel.
func (d *decoder) tuple(rel *relation, t *pglogrepl.TupleData) ([]any, error) {
	if t == nil {
		return nil, nil
	}
	if len(t.Columns) != len(rel.columns) {
		return nil, fmt.Errorf("cdc: %s: a tuple of %d values for %d columns", rel.table, len(t.Columns), len(rel.columns))
	}
	out := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			out[i] = nil
		case pglogrepl.TupleDataTypeToast:
			out[i] = Unchanged
		case pglogrepl.TupleDataTypeText:
			v, err := d.value(rel.columns[i].OID, c.Data)
			if err != nil {
				return nil, fmt.Errorf("cdc: %s.%s: %w", rel.table, rel.columns[i].Name, err)
			}
			out[i] = v
		default:
			return nil, fmt.Errorf("cdc: %s.%s: value of unknown format %q", rel.table, rel.columns[i].Name, c.DataType)
		}
	}
	return out, nil
}

// value decodes one text value of the type oid.
func (d *decoder) value(oid uint32, data []byte) (any, error) {
	switch oid {
	case pgtype.JSONOID, pgtype.JSONBOID:
		return string(data), nil
	}
	t, ok := d.types.TypeForOID(oid)
	if !ok {
		return string(data), nil
	}
	return t.Codec.DecodeValue(d.types, oid, pgtype.TextFormatCode, data)
}
