package recipe

import (
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// NotNull returns the statements that make column of table NOT NULL
// without a scan under a lock that blocks reads or writes. They fit one
// move: the move once every writer writes the column and the existing rows
// are filled, typically the move to contract (for a new column: added in
// the expand move, written from dualwrite on, filled by the backfill).
//
// On PostgreSQL (12 and later), with c named <table>_<column>_not_null:
//
//  1. ALTER TABLE table ADD CONSTRAINT c CHECK (column IS NOT NULL) NOT
//     VALID: a catalog change under a brief ACCESS EXCLUSIVE lock. From
//     then on, writes of NULL fail.
//  2. ALTER TABLE table VALIDATE CONSTRAINT c: it scans the table under a
//     SHARE UPDATE EXCLUSIVE lock, which blocks no reads or writes. It runs
//     on its own, in a transaction of its own, after the first has
//     committed ([lockcheck.Statement].Outside). A row holding NULL fails
//     it, and the move with it; the phase stays, the NOT VALID constraint
//     stays, and the same move, tried again once the rows are filled, skips
//     the statement recorded done.
//  3. ALTER TABLE table ALTER COLUMN column SET NOT NULL: a brief ACCESS
//     EXCLUSIVE lock, no scan, since the validated constraint proves that
//     no row holds NULL.
//  4. ALTER TABLE table DROP CONSTRAINT c: a brief ACCESS EXCLUSIVE lock.
//
// The last two run in the transaction that changes the phase.
//
// MySQL and MariaDB change a column's nullability only through MODIFY,
// which restates the column's whole definition: use [MySQLNotNull]; NotNull
// refuses them with an error wrapping [ErrUnsupported]. SQLite cannot
// change a column (it has no ALTER COLUMN): refused the same way.
func NotNull(dialect, table, column string) ([]string, error) {
	d, err := dialectOf(dialect)
	if err != nil {
		return nil, err
	}
	n := names{d: d}
	t := n.table("table", table)
	col := n.ident("column", column)
	c := n.ident("constraint", unqualified(table)+"_"+column+"_not_null")
	if n.err != nil {
		return nil, fmt.Errorf("recipe: not null: %w", n.err)
	}
	switch d.Name() {
	case sqldialect.MySQL:
		return nil, unsupported("NotNull", d, "MODIFY needs the column's whole definition; use MySQLNotNull")
	case sqldialect.SQLite:
		return nil, unsupported("NotNull", d, "SQLite cannot alter a column; rebuild the table through the expand-contract phases")
	}
	return []string{
		fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID", t, c, col),
		fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", t, c),
		fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", t, col),
		fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", t, c),
	}, nil
}

// MySQLNotNull returns the statement that makes column of table NOT NULL
// on MySQL and MariaDB: ALTER TABLE table MODIFY column definition NOT
// NULL, to which [lockcheck.Check] adds ALGORITHM=INPLACE, LOCK=NONE. It
// belongs to the same move as [NotNull].
//
// definition is the column's type and every attribute it keeps, without
// NULL or NOT NULL, as SHOW CREATE TABLE prints them (for example
// "varchar(255) DEFAULT 'none' COMMENT 'login'"): MODIFY replaces the whole
// definition, so an attribute left out is dropped. It is SQL, not a name,
// and must come from the program, never from input; it is refused if the
// statement does not read as one.
//
// InnoDB rebuilds the table in place for the change: reads and writes go
// on throughout, and the table's metadata lock is taken exclusively only
// briefly at the start and the end. It needs a strict sql_mode
// (STRICT_TRANS_TABLES, the default); without one the server refuses
// LOCK=NONE. A row holding NULL fails the statement and the move, which
// changes nothing.
func MySQLNotNull(table, column, definition string) ([]string, error) {
	d, err := dialectOf(sqldialect.MySQL)
	if err != nil {
		return nil, err
	}
	n := names{d: d}
	t := n.table("table", table)
	col := n.ident("column", column)
	if n.err == nil && strings.TrimSpace(definition) == "" {
		n.err = fmt.Errorf("%w: no column definition given", ErrInvalidInput)
	}
	if n.err != nil {
		return nil, fmt.Errorf("recipe: not null: %w", n.err)
	}
	stmts := []string{fmt.Sprintf("ALTER TABLE %s MODIFY %s %s NOT NULL", t, col, strings.TrimSpace(definition))}
	if err := checkFragment(d, stmts); err != nil {
		return nil, fmt.Errorf("recipe: not null: definition %q: %w", definition, err)
	}
	return stmts, nil
}
