package recipe

import (
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// ForeignKeyDef describes a foreign key for [ForeignKey].
type ForeignKeyDef struct {
	Table      string   // the referencing table, table or schema.table; required
	Name       string   // the constraint's name; required
	Columns    []string // the referencing columns, in order; required
	RefTable   string   // the referenced table; required
	RefColumns []string // the referenced columns, as many as Columns; required
	// OnDelete is what deleting a referenced row does: "" (the default, NO
	// ACTION), "NO ACTION", "RESTRICT", "CASCADE", "SET NULL" or "SET
	// DEFAULT", in any case.
	OnDelete string
}

// onDelete lists the actions ForeignKeyDef.OnDelete accepts.
var onDelete = map[string]bool{"NO ACTION": true, "RESTRICT": true, "CASCADE": true, "SET NULL": true, "SET DEFAULT": true}

// ForeignKey returns the statements that add the foreign key fk without
// blocking writes while the existing rows are checked. They fit one move:
// the move once every writer writes only rows that satisfy the key and the
// existing rows do (for a new column, the move after the backfill).
//
// On PostgreSQL:
//
//  1. ALTER TABLE t ADD CONSTRAINT name FOREIGN KEY (...) REFERENCES r
//     (...) [ON DELETE ...] NOT VALID: a catalog change under a brief SHARE
//     ROW EXCLUSIVE lock on both tables, which blocks writes to them only
//     for that moment. From then on, new and changed rows are checked.
//  2. ALTER TABLE t VALIDATE CONSTRAINT name: it checks the existing rows
//     under a SHARE UPDATE EXCLUSIVE lock on t and a ROW SHARE lock on r,
//     which block no reads or writes. It runs on its own, in a transaction
//     of its own, after the first has committed
//     ([lockcheck.Statement].Outside), and both run before the phase
//     changes. A row without its referenced row fails it, and the move
//     with it; the phase and the NOT VALID constraint stay, and the same
//     move, tried again once the rows are fixed, skips the first
//     statement, recorded done.
//
// MySQL and MariaDB refuse to add a foreign key online (ALGORITHM=INPLACE,
// LOCK=NONE) unless foreign_key_checks is off for the session, and then
// never check the existing rows, and offer no later validation: ForeignKey
// refuses them with an error wrapping [ErrUnsupported]. Create the key on
// a new table instead ([TableSwap]), where the backfill's inserts are
// checked. SQLite cannot add a constraint to a table: refused the same
// way.
func ForeignKey(dialect string, fk ForeignKeyDef) ([]string, error) {
	d, err := dialectOf(dialect)
	if err != nil {
		return nil, err
	}
	n := names{d: d}
	t := n.table("table", fk.Table)
	name := n.ident("constraint", fk.Name)
	cols := n.list("column", fk.Columns)
	ref := n.table("referenced table", fk.RefTable)
	refCols := n.list("referenced column", fk.RefColumns)
	action := strings.ToUpper(strings.Join(strings.Fields(fk.OnDelete), " "))
	switch {
	case n.err != nil:
	case len(fk.Columns) != len(fk.RefColumns):
		n.err = fmt.Errorf("%w: %d columns reference %d columns", ErrInvalidInput, len(fk.Columns), len(fk.RefColumns))
	case action != "" && !onDelete[action]:
		n.err = fmt.Errorf("%w: ON DELETE %q (want NO ACTION, RESTRICT, CASCADE, SET NULL or SET DEFAULT)", ErrInvalidInput, fk.OnDelete)
	}
	if n.err != nil {
		return nil, fmt.Errorf("recipe: foreign key: %w", n.err)
	}
	switch d.Name() {
	case sqldialect.MySQL:
		return nil, unsupported("ForeignKey", d, "the server adds a foreign key online only with foreign_key_checks off, "+
			"which leaves the existing rows unchecked for good; create the key on a new table (TableSwap) instead")
	case sqldialect.SQLite:
		return nil, unsupported("ForeignKey", d, "SQLite cannot add a constraint to a table; rebuild the table through the expand-contract phases")
	}
	add := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)", t, name, cols, ref, refCols)
	if action != "" {
		add += " ON DELETE " + action
	}
	return []string{
		add + " NOT VALID",
		fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", t, name),
	}, nil
}
