package recipe

import (
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Unique returns the statements that add a unique constraint named
// constraint on columns of table without blocking writes while the index
// is built. They fit one move: the move once the existing rows are unique
// and every writer keeps them so (for a new column, the move after the
// backfill and verification). A duplicate fails the build, and the move
// with it; the phase stays.
//
// On PostgreSQL:
//
//  1. CREATE UNIQUE INDEX CONCURRENTLY constraint ON table (columns): it
//     builds the index under a SHARE UPDATE EXCLUSIVE lock, which blocks no
//     reads or writes, waiting for the transactions that use the table to
//     end, twice. It runs outside any transaction, before the phase
//     changes. A failed build leaves an INVALID index, which the same move
//     tried again drops and builds again ([expandcontract.Move]).
//  2. ALTER TABLE table ADD CONSTRAINT constraint UNIQUE USING INDEX
//     constraint: a catalog change under a brief ACCESS EXCLUSIVE lock,
//     in the transaction that changes the phase. The index becomes the
//     constraint's and keeps its name.
//
// On MySQL and MariaDB: ALTER TABLE table ADD UNIQUE INDEX constraint
// (columns), to which [lockcheck.Check] adds ALGORITHM=INPLACE, LOCK=NONE:
// InnoDB builds the index in place while reads and writes go on, taking
// the table's metadata lock exclusively only briefly at the start and the
// end. A write of a duplicate during the build fails the build.
//
// On SQLite: CREATE UNIQUE INDEX constraint ON table (columns), in the
// transaction that changes the phase. It holds SQLite's one write lock,
// which every write takes anyway, for the whole build.
func Unique(dialect, table, constraint string, columns ...string) ([]string, error) {
	d, err := dialectOf(dialect)
	if err != nil {
		return nil, err
	}
	n := names{d: d}
	t := n.table("table", table)
	c := n.ident("constraint", constraint)
	cols := n.list("column", columns)
	if n.err != nil {
		return nil, fmt.Errorf("recipe: unique: %w", n.err)
	}
	switch d.Name() {
	case sqldialect.MySQL:
		return []string{fmt.Sprintf("ALTER TABLE %s ADD UNIQUE INDEX %s (%s)", t, c, cols)}, nil
	case sqldialect.SQLite:
		// SQLite names the schema on the index, never on its table.
		if schema, name, ok := strings.Cut(table, "."); ok {
			c, t = d.Quote(schema)+"."+c, d.Quote(name)
		}
		return []string{fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", c, t, cols)}, nil
	}
	return []string{
		fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)", c, t, cols),
		fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s", t, c, c),
	}, nil
}
