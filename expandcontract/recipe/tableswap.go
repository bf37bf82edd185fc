package recipe

import (
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// TableSwap is a change of a table's definition that no server makes
// online, such as a column's type from INT to VARCHAR on MySQL and
// MariaDB (refused with LOCK=NONE), made by filling a new table through
// the expand-contract phases and swapping it in for the old one. Only
// MySQL and MariaDB are supported; on PostgreSQL, add a column of the new
// type instead.
//
// Its methods give the statements per step, and say what the application
// does in each:
//
//   - [TableSwap.Expand], for the move to dualwrite, creates the new table
//     (CREATE TABLE New LIKE Table), then applies Changes to it while it
//     is empty and unused (lockcheck leaves a table of the same call
//     alone). From dualwrite to rampdown the application writes both
//     tables through package dualwrite: the old store is Table, the new
//     store is New. The backfill copies the rows from Table to New, and
//     the verification compares them.
//   - [TableSwap.Contract], for the move to contract, swaps the tables in
//     one atomic RENAME TABLE: Table becomes Old, New becomes Table, and a
//     view over Table, created just before, becomes New. The view is
//     updatable (one table, every column), so an instance that still
//     writes and reads New keeps working, on the table now named Table,
//     until it is redeployed. The RENAME takes the metadata locks of the
//     tables only for the moment of the swap, under the lock timeout.
//     Move to contract only once [expandcontract.Migration.Instances]
//     shows every instance at complete (the move warns otherwise): after
//     the swap, an instance that still writes the old store writes to
//     Table, which is the new table.
//   - After the contract move, the application's code uses Table for the
//     new store and drops the old store. Once every instance runs that
//     code, [TableSwap.Retire], for [expandcontract.Migration.Retire],
//     drops the view New and the table Old.
//
// A forced move back out of contract does not undo the swap: run RENAME
// TABLE New TO <view>, Table TO New, Old TO Table and drop the view first.
type TableSwap struct {
	Table string // the table to change, table or db.table; required
	// Changes are the alter specifications applied to the new table, as
	// ALTER TABLE takes them: "MODIFY code VARCHAR(20) NOT NULL", "ADD
	// INDEX (code)". They are SQL, to come from the program, never from
	// input; each must read as part of one statement. At least one.
	Changes []string
	New     string // the new table's name; "" means Table with _new added
	Old     string // the name the old table takes at the swap; "" means Table with _old added
}

// quoted is a TableSwap's names, validated and quoted.
type quoted struct{ table, new, old, view string }

func (s TableSwap) names(dialect string) (sqldialect.Dialect, quoted, error) {
	d, err := dialectOf(dialect)
	if err != nil {
		return d, quoted{}, err
	}
	if d.Name() != sqldialect.MySQL {
		return d, quoted{}, unsupported("TableSwap", d,
			"only MySQL and MariaDB are supported; add a column of the new type and switch to it through the expand-contract phases")
	}
	newName, oldName := s.New, s.Old
	if newName == "" {
		newName = s.Table + "_new"
	}
	if oldName == "" {
		oldName = s.Table + "_old"
	}
	n := names{d: d}
	q := quoted{
		table: n.table("table", s.Table),
		new:   n.table("new table", newName),
		old:   n.table("old table", oldName),
		view:  n.table("swap view", newName+"_swap"),
	}
	if n.err == nil && (newName == s.Table || oldName == s.Table || newName == oldName) {
		n.err = fmt.Errorf("%w: table %q, new %q and old %q must differ", ErrInvalidInput, s.Table, newName, oldName)
	}
	if n.err != nil {
		return d, quoted{}, fmt.Errorf("recipe: table swap: %w", n.err)
	}
	return d, q, nil
}

// Expand returns the statements of the move to dualwrite: CREATE TABLE
// New LIKE Table, which copies the definition and indexes of Table and
// takes no lock on its rows, and ALTER TABLE New with Changes, on the new,
// empty table, as given.
func (s TableSwap) Expand(dialect string) ([]string, error) {
	d, q, err := s.names(dialect)
	if err != nil {
		return nil, err
	}
	if len(s.Changes) == 0 {
		return nil, fmt.Errorf("recipe: table swap: %w: no changes given", ErrInvalidInput)
	}
	for i, c := range s.Changes {
		if strings.TrimSpace(c) == "" {
			return nil, fmt.Errorf("recipe: table swap: %w: change %d is empty", ErrInvalidInput, i)
		}
	}
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s LIKE %s", q.new, q.table),
		fmt.Sprintf("ALTER TABLE %s %s", q.new, strings.Join(s.Changes, ", ")),
	}
	if err := checkFragment(d, stmts); err != nil {
		return nil, fmt.Errorf("recipe: table swap: changes: %w", err)
	}
	return stmts, nil
}

// Contract returns the statements of the move to contract: CREATE OR
// REPLACE VIEW <New>_swap AS SELECT * FROM Table, and RENAME TABLE Table
// TO Old, New TO Table, <New>_swap TO New, which swaps all three at once.
// A view names its table, so once the swap is done the view reads and
// writes the table then named Table: the new one.
func (s TableSwap) Contract(dialect string) ([]string, error) {
	_, q, err := s.names(dialect)
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM %s", q.view, q.table),
		fmt.Sprintf("RENAME TABLE %s TO %s, %s TO %s, %s TO %s", q.table, q.old, q.new, q.table, q.view, q.new),
	}, nil
}

// Retire returns the statements of the retire after the contract move,
// once no instance uses New or the old store: DROP VIEW IF EXISTS New and
// DROP TABLE IF EXISTS Old.
func (s TableSwap) Retire(dialect string) ([]string, error) {
	_, q, err := s.names(dialect)
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("DROP VIEW IF EXISTS %s", q.new),
		fmt.Sprintf("DROP TABLE IF EXISTS %s", q.old),
	}, nil
}
