package lockcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	pgquery "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/wasilibs/go-pgquery"

	"github.com/cutover-go/cutover/internal/sqltext"
)

// relation names a table as a statement wrote it, after the parser folded
// unquoted names to lower case. Two names match only if both give the same
// schema or both give none: lockcheck does not resolve search_path.
type relation struct{ schema, name string }

func (r relation) String() string { return qualified(r.schema, r.name) }

func relationOf(rv *pgquery.RangeVar) relation {
	return relation{rv.GetSchemaname(), rv.GetRelname()}
}

// postgresChecker checks the PostgreSQL statements of one call.
type postgresChecker struct {
	cat catalog
	// created holds the tables that earlier statements of the call create.
	// No other session can use such a table before the call's statements
	// commit, so its locks and rewrites harm no one.
	created map[relation]bool
	// notValid holds, for each table, the CHECK constraints that earlier
	// statements of the call add NOT VALID, by name, with the expression
	// of each; validated holds those that a later statement, one that only
	// validates and so runs in a transaction of its own, has validated
	// since. A validated one that proves a column NOT NULL lets a SET NOT
	// NULL of a later statement through: by then it has committed.
	notValid, validated map[relation]map[string]*pgquery.Node
}

func newPostgresChecker(db sqlx.QueryerContext) *postgresChecker {
	return &postgresChecker{cat: catalog{db: db}, created: map[relation]bool{},
		notValid: map[relation]map[string]*pgquery.Node{}, validated: map[relation]map[string]*pgquery.Node{}}
}

// parseOne parses sql, which must hold exactly one statement.
func parseOne(i int, sql string) (*pgquery.Node, error) {
	tree, err := pgparser.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("%w: statement %d (%s): %w", ErrParse, i, sqltext.Abbreviate(sql), err)
	}
	if n := len(tree.GetStmts()); n != 1 {
		return nil, fmt.Errorf("%w: statement %d holds %d statements; give one per entry", ErrInvalidInput, i, n)
	}
	return tree.GetStmts()[0].GetStmt(), nil
}

// check parses one PostgreSQL statement, says how it runs, and applies the
// rules to it.
func (c *postgresChecker) check(ctx context.Context, i int, sql string) (Statement, []finding, error) {
	node, err := parseOne(i, sql)
	if err != nil {
		return Statement{}, nil, err
	}
	st := Statement{SQL: sql}
	var found []finding
	switch {
	case node.GetCreateStmt() != nil:
		cs := node.GetCreateStmt()
		if !cs.GetIfNotExists() {
			c.created[relationOf(cs.GetRelation())] = true
		}
	case node.GetCreateTableAsStmt() != nil:
		cs := node.GetCreateTableAsStmt()
		if !cs.GetIfNotExists() {
			c.created[relationOf(cs.GetInto().GetRel())] = true
		}
	case node.GetIndexStmt() != nil:
		ix := node.GetIndexStmt()
		if ix.GetConcurrent() {
			st.Outside = true
			st.Index = qualified(ix.GetRelation().GetSchemaname(), ix.GetIdxname())
		} else if rel := relationOf(ix.GetRelation()); !c.created[rel] {
			found = append(found, finding{RuleCreateIndexConcurrently,
				fmt.Sprintf("CREATE INDEX without CONCURRENTLY holds a SHARE lock on %s, blocking every write to it, for the whole build", rel),
				"CREATE INDEX CONCURRENTLY, which blocks no writes (it runs outside the transaction; a failed build leaves an INVALID index to drop before a retry)"})
		}
	case node.GetDropStmt() != nil:
		// DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on
		// the table only for as long as it takes to remove the index from
		// the catalog; the lock timeout and retries of package
		// expandcontract bound its wait (docs/lock-safety.md).
		st.Outside = node.GetDropStmt().GetConcurrent()
	case node.GetReindexStmt() != nil:
		rx := node.GetReindexStmt()
		st.Outside = hasOption(rx.GetParams(), "concurrently")
		if !st.Outside {
			found = append(found, finding{RuleReindexConcurrently,
				"REINDEX without CONCURRENTLY blocks writes to the table, and reads that would use the index, while it rebuilds",
				"REINDEX ... CONCURRENTLY, which builds a new index beside the old one and swaps them"})
		}
	case node.GetAlterEnumStmt() != nil:
		// ALTER TYPE ... ADD VALUE; PostgreSQL 12 and later run it in a
		// transaction but refuse to use the new value before it commits.
		e := node.GetAlterEnumStmt()
		st.Outside = e.GetNewVal() != "" && e.GetOldVal() == "" // not RENAME VALUE
	case node.GetVacuumStmt() != nil:
		vs := node.GetVacuumStmt()
		st.Outside = true
		if vs.GetIsVacuumcmd() && optionOn(vs.GetOptions(), "full") {
			found = append(found, finding{RuleRewriteTable,
				"VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock, which blocks reads and writes",
				"a plain VACUUM, which takes no lock that blocks reads or writes; to give space back to the operating system, an online tool such as pg_repack"})
		}
	case node.GetClusterStmt() != nil:
		cl := node.GetClusterStmt()
		if cl.GetRelation() == nil || !c.created[relationOf(cl.GetRelation())] {
			found = append(found, finding{RuleRewriteTable,
				"CLUSTER rewrites the table in index order under an ACCESS EXCLUSIVE lock, which blocks reads and writes",
				"an online tool such as pg_repack, or a new table filled through the expand-contract phases"})
		}
	case node.GetCreatedbStmt() != nil, node.GetDropdbStmt() != nil,
		node.GetCreateTableSpaceStmt() != nil, node.GetDropTableSpaceStmt() != nil:
		st.Outside = true
	case node.GetAlterTableStmt() != nil:
		at := node.GetAlterTableStmt()
		rel := relationOf(at.GetRelation())
		if c.created[rel] {
			break
		}
		st.Outside = onlyValidates(at.GetCmds())
		for _, cmd := range at.GetCmds() {
			f, err := c.alterTable(ctx, at.GetObjtype(), rel, cmd.GetAlterTableCmd())
			if err != nil {
				return Statement{}, nil, fmt.Errorf("lockcheck: statement %d (%s): %w", i, sqltext.Abbreviate(sql), err)
			}
			found = append(found, f...)
		}
		if !st.Outside {
			found = append(found, validateUnderLock(rel, at.GetCmds())...)
		}
		c.track(rel, at.GetCmds(), st.Outside)
	}
	return st, found, nil
}

// alterTable applies the rules to one command of an ALTER TABLE (or ALTER
// INDEX, ALTER MATERIALIZED VIEW) of rel.
func (c *postgresChecker) alterTable(ctx context.Context, obj pgquery.ObjectType, rel relation, cmd *pgquery.AlterTableCmd) ([]finding, error) {
	switch cmd.GetSubtype() {
	case pgquery.AlterTableType_AT_AddColumn:
		return c.addColumn(ctx, rel, cmd.GetDef().GetColumnDef())
	case pgquery.AlterTableType_AT_AlterColumnType:
		f, err := c.alterColumnType(ctx, rel, cmd.GetName(), cmd.GetDef().GetColumnDef())
		return one(f), err
	case pgquery.AlterTableType_AT_SetNotNull:
		f, err := c.setNotNull(ctx, rel, cmd.GetName())
		return one(f), err
	case pgquery.AlterTableType_AT_AddConstraint:
		return one(addConstraint(rel, cmd.GetDef().GetConstraint())), nil
	case pgquery.AlterTableType_AT_SetTableSpace:
		what := "the table and its indexes"
		if obj == pgquery.ObjectType_OBJECT_INDEX {
			what = "the index"
		}
		return []finding{{RuleRewriteTable,
			fmt.Sprintf("SET TABLESPACE copies %s to the new tablespace under an ACCESS EXCLUSIVE lock, which blocks reads and writes", what),
			"a new table (or index, built CONCURRENTLY) in the new tablespace, switched to through the expand-contract phases"}}, nil
	case pgquery.AlterTableType_AT_SetLogged, pgquery.AlterTableType_AT_SetUnLogged, pgquery.AlterTableType_AT_SetAccessMethod:
		return []finding{{RuleRewriteTable,
			"SET LOGGED, SET UNLOGGED and SET ACCESS METHOD rewrite the table under an ACCESS EXCLUSIVE lock, which blocks reads and writes",
			"a new table with the wanted properties, filled and switched to through the expand-contract phases"}}, nil
	case pgquery.AlterTableType_AT_SetExpression:
		return []finding{{RuleRewriteTable,
			fmt.Sprintf("SET EXPRESSION recomputes generated column %s in every row of %s under an ACCESS EXCLUSIVE lock", cmd.GetName(), rel),
			"a new column, backfilled in batches and switched to through the expand-contract phases"}}, nil
	}
	return nil, nil
}

// onlyValidates reports whether every command of an ALTER TABLE is
// VALIDATE CONSTRAINT. Such a statement runs on its own, in a transaction
// of its own (Statement.Outside), so that it scans the table under its
// SHARE UPDATE EXCLUSIVE lock only, and never under a lock that an earlier
// statement of the same transaction took and keeps until it commits.
func onlyValidates(cmds []*pgquery.Node) bool {
	for _, n := range cmds {
		if n.GetAlterTableCmd().GetSubtype() != pgquery.AlterTableType_AT_ValidateConstraint {
			return false
		}
	}
	return len(cmds) > 0
}

// validateUnderLock refuses each VALIDATE CONSTRAINT of an ALTER TABLE of
// rel that also does something else: the validation would scan the table
// under the stronger lock of the other commands.
func validateUnderLock(rel relation, cmds []*pgquery.Node) []finding {
	var found []finding
	for _, n := range cmds {
		if cmd := n.GetAlterTableCmd(); cmd.GetSubtype() == pgquery.AlterTableType_AT_ValidateConstraint {
			name := cmd.GetName()
			found = append(found, finding{RuleConstraintNotValid,
				fmt.Sprintf("VALIDATE CONSTRAINT %s scans %s while the statement holds the lock that another command of the same ALTER TABLE takes", name, rel),
				fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s as a statement of its own, which runs in a transaction of its own and takes only a SHARE UPDATE EXCLUSIVE lock", rel, name)})
		}
	}
	return found
}

// track records what the commands of an ALTER TABLE of rel do to the CHECK
// constraints that [postgresChecker.setNotNull] may count: one added NOT
// VALID, one validated by a statement that only validates (alone is
// true), one dropped.
func (c *postgresChecker) track(rel relation, cmds []*pgquery.Node, alone bool) {
	for _, n := range cmds {
		cmd := n.GetAlterTableCmd()
		switch cmd.GetSubtype() {
		case pgquery.AlterTableType_AT_AddConstraint:
			con := cmd.GetDef().GetConstraint()
			if con.GetContype() == pgquery.ConstrType_CONSTR_CHECK && con.GetSkipValidation() && con.GetConname() != "" {
				if c.notValid[rel] == nil {
					c.notValid[rel] = map[string]*pgquery.Node{}
				}
				c.notValid[rel][con.GetConname()] = con.GetRawExpr()
			}
		case pgquery.AlterTableType_AT_ValidateConstraint:
			if expr, ok := c.notValid[rel][cmd.GetName()]; ok && alone {
				if c.validated[rel] == nil {
					c.validated[rel] = map[string]*pgquery.Node{}
				}
				c.validated[rel][cmd.GetName()] = expr
			}
		case pgquery.AlterTableType_AT_DropConstraint:
			delete(c.notValid[rel], cmd.GetName())
			delete(c.validated[rel], cmd.GetName())
		}
	}
}

func one(f *finding) []finding {
	if f == nil {
		return nil
	}
	return []finding{*f}
}

// serialTypes are the pseudo-types that make a column take nextval of a new
// sequence as its default.
var serialTypes = map[string]bool{
	"serial": true, "serial4": true, "bigserial": true, "serial8": true, "smallserial": true, "serial2": true,
}

// addColumn applies the rules to ADD COLUMN col.
func (c *postgresChecker) addColumn(ctx context.Context, rel relation, col *pgquery.ColumnDef) ([]finding, error) {
	name := col.GetColname()
	rewrite := func(why string) finding {
		return finding{RuleAddColumnRewrite,
			fmt.Sprintf("adding column %s %s, so PostgreSQL writes a value into every row of %s under an ACCESS EXCLUSIVE lock", name, why, rel),
			fmt.Sprintf("add %s without a default, set the default in a separate ALTER TABLE ... ALTER COLUMN %s SET DEFAULT, and backfill the existing rows in batches", name, name)}
	}
	var found []finding
	if tn := col.GetTypeName(); len(tn.GetNames()) == 1 && serialTypes[stringValue(tn.GetNames()[0])] {
		found = append(found, rewrite("of type "+stringValue(tn.GetNames()[0])+" takes nextval of a sequence for each row"))
	}
	defaults := []*pgquery.Node{col.GetRawDefault()}
	for _, n := range col.GetConstraints() {
		con := n.GetConstraint()
		switch con.GetContype() {
		case pgquery.ConstrType_CONSTR_DEFAULT:
			defaults = append(defaults, con.GetRawExpr())
		case pgquery.ConstrType_CONSTR_IDENTITY:
			found = append(found, rewrite("as an identity column takes nextval of a sequence for each row"))
		case pgquery.ConstrType_CONSTR_GENERATED:
			found = append(found, rewrite("as a stored generated column computes its expression for each row"))
		case pgquery.ConstrType_CONSTR_PRIMARY, pgquery.ConstrType_CONSTR_UNIQUE:
			found = append(found, finding{RuleConstraintUsingIndex,
				fmt.Sprintf("adding column %s with a %s constraint builds an index on %s under an ACCESS EXCLUSIVE lock, which blocks reads and writes", name, constraintKind(con), rel),
				fmt.Sprintf("add %s without the constraint, CREATE UNIQUE INDEX CONCURRENTLY on it, then ALTER TABLE ... ADD CONSTRAINT ... %s USING INDEX", name, constraintKind(con))})
		case pgquery.ConstrType_CONSTR_CHECK, pgquery.ConstrType_CONSTR_FOREIGN:
			found = append(found, finding{RuleConstraintNotValid,
				fmt.Sprintf("adding column %s with a %s constraint validates it against every row of %s while ALTER TABLE holds its lock", name, constraintKind(con), rel),
				fmt.Sprintf("add %s without the constraint, then ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a statement of its own", name)})
		}
	}
	for _, d := range defaults {
		if d == nil {
			continue
		}
		why, err := c.volatility(ctx, d)
		if err != nil {
			return nil, err
		}
		if why != "" {
			found = append(found, rewrite("with a default that "+why))
		}
	}
	return found, nil
}

// safeFunctions are the functions of pg_catalog that a default may call
// without a catalog to look them up in: they are stable, so PostgreSQL
// evaluates them once for the ALTER TABLE and stores the value.
var safeFunctions = map[string]bool{"now": true, "transaction_timestamp": true, "statement_timestamp": true}

// volatility returns why the expression expr of a default may be volatile
// (and so make PostgreSQL compute it for each row), or "" if it is not.
func (c *postgresChecker) volatility(ctx context.Context, expr *pgquery.Node) (string, error) {
	var why string
	var walk func(n *pgquery.Node) error
	walkAll := func(ns []*pgquery.Node) error {
		for _, n := range ns {
			if err := walk(n); err != nil || why != "" {
				return err
			}
		}
		return nil
	}
	walk = func(n *pgquery.Node) error {
		switch {
		case n == nil, n.GetAConst() != nil, n.GetSqlvalueFunction() != nil:
			return nil // constants; CURRENT_TIMESTAMP and the like are stable
		case n.GetTypeCast() != nil:
			return walk(n.GetTypeCast().GetArg())
		case n.GetAArrayExpr() != nil:
			return walkAll(n.GetAArrayExpr().GetElements())
		case n.GetCoalesceExpr() != nil:
			return walkAll(n.GetCoalesceExpr().GetArgs())
		case n.GetBoolExpr() != nil:
			return walkAll(n.GetBoolExpr().GetArgs())
		case n.GetNullTest() != nil:
			return walk(n.GetNullTest().GetArg())
		case n.GetFuncCall() != nil:
			fc := n.GetFuncCall()
			if err := walkAll(fc.GetArgs()); err != nil || why != "" {
				return err
			}
			schema, name := funcName(fc.GetFuncname())
			if c.cat.db == nil {
				if (schema == "" || schema == "pg_catalog") && safeFunctions[name] {
					return nil
				}
				why = fmt.Sprintf("calls %s(), which lockcheck cannot tell is not volatile without a database to read pg_proc from", qualified(schema, name))
				return nil
			}
			v, err := c.cat.functionVolatile(ctx, schema, name)
			if err != nil {
				return err
			}
			why = v.why("calls " + qualified(schema, name) + "()")
			return nil
		case n.GetAExpr() != nil && n.GetAExpr().GetKind() == pgquery.A_Expr_Kind_AEXPR_OP:
			ae := n.GetAExpr()
			if err := walkAll([]*pgquery.Node{ae.GetLexpr(), ae.GetRexpr()}); err != nil || why != "" {
				return err
			}
			opSchema, opName := funcName(ae.GetName())
			op := qualified(opSchema, opName)
			if c.cat.db == nil {
				why = fmt.Sprintf("uses operator %s, which lockcheck cannot tell is not volatile without a database to read pg_operator from", op)
				return nil
			}
			v, err := c.cat.operatorVolatile(ctx, opSchema, opName)
			if err != nil {
				return err
			}
			why = v.why("uses operator " + op)
			return nil
		}
		why = "is an expression lockcheck cannot tell is not volatile"
		return nil
	}
	err := walk(expr)
	return why, err
}

// pgType is a type as an ALTER COLUMN ... TYPE names it or the catalog
// holds it: its name in pg_catalog ("varchar", "numeric", "text"), and its
// modifiers (a length; a precision and scale), nil for none.
type pgType struct {
	name string
	mods []int32
}

func (t pgType) String() string {
	if len(t.mods) == 0 {
		return t.name
	}
	s := make([]string, len(t.mods))
	for i, m := range t.mods {
		s[i] = fmt.Sprint(m)
	}
	return t.name + "(" + strings.Join(s, ",") + ")"
}

// targetType reads the type an ALTER COLUMN ... TYPE names, or returns ok
// false for one lockcheck does not compare (another schema's, an array).
func targetType(tn *pgquery.TypeName) (t pgType, ok bool) {
	names := tn.GetNames()
	if len(names) == 2 && stringValue(names[0]) == "pg_catalog" {
		names = names[1:]
	}
	if len(names) != 1 || len(tn.GetArrayBounds()) != 0 || tn.GetSetof() || tn.GetPctType() {
		return pgType{}, false
	}
	t.name = stringValue(names[0])
	for _, m := range tn.GetTypmods() {
		iv, isInt := m.GetAConst().GetVal().(*pgquery.A_Const_Ival)
		if !isInt {
			return pgType{}, false
		}
		t.mods = append(t.mods, iv.Ival.GetIval())
	}
	if t.name == "numeric" && len(t.mods) == 1 {
		t.mods = append(t.mods, 0) // numeric(p) is numeric(p,0)
	}
	return t, true
}

// binaryCoercible reports whether PostgreSQL changes a column of type from
// to type to in the catalog only, without rewriting the table: the list of
// docs/lock-safety.md, which is shorter than PostgreSQL's own.
func binaryCoercible(from, to pgType) bool {
	// The same type with the same modifiers changes nothing. The
	// modifiers are compared only where typeMods decodes them; elsewhere
	// the catalog's encoding may differ from what the statement wrote.
	decoded := from.name == "varchar" || from.name == "bpchar" || from.name == "numeric" || len(from.mods) == 0
	if from.name == to.name && len(from.mods) == len(to.mods) && decoded {
		same := true
		for i := range from.mods {
			same = same && from.mods[i] == to.mods[i]
		}
		if same {
			return true // no change
		}
	}
	switch {
	case from.name == "varchar" && to.name == "text",
		from.name == "varchar" && to.name == "varchar" && len(to.mods) == 0,
		from.name == "text" && to.name == "varchar" && len(to.mods) == 0,
		from.name == "numeric" && to.name == "numeric" && len(to.mods) == 0,
		from.name == "cidr" && to.name == "inet":
		return true
	case from.name == "varchar" && to.name == "varchar":
		return len(from.mods) == 1 && len(to.mods) == 1 && to.mods[0] >= from.mods[0]
	case from.name == "numeric" && to.name == "numeric":
		return len(from.mods) == 2 && len(to.mods) == 2 && to.mods[1] == from.mods[1] && to.mods[0] >= from.mods[0]
	}
	return false
}

// alterColumnType applies the rules to ALTER COLUMN col TYPE.
func (c *postgresChecker) alterColumnType(ctx context.Context, rel relation, col string, def *pgquery.ColumnDef) (*finding, error) {
	refuse := func(why string) *finding {
		return &finding{RuleAlterColumnTypeRewrite,
			fmt.Sprintf("changing the type of %s.%s %s, so PostgreSQL rewrites the table and its indexes under an ACCESS EXCLUSIVE lock", rel, col, why),
			fmt.Sprintf("add a column of the new type, backfill it in batches, and switch to it through the expand-contract phases, then drop %s", col)}
	}
	switch {
	case def.GetRawDefault() != nil:
		return refuse("with a USING clause computes every row's new value"), nil
	case def.GetCollClause() != nil:
		return refuse("with a COLLATE clause is not a change lockcheck knows to be free"), nil
	}
	to, ok := targetType(def.GetTypeName())
	if !ok {
		return refuse("to a type lockcheck does not compare (an array, or a type outside pg_catalog) is not known to be binary-coercible"), nil
	}
	if c.cat.db == nil {
		return refuse("to " + to.String() + " cannot be shown binary-coercible without a database to read the current type from"), nil
	}
	from, found, err := c.cat.columnType(ctx, rel, col)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		return refuse("to " + to.String() + " cannot be shown binary-coercible: the catalog has no such column"), nil
	case !binaryCoercible(from, to):
		return refuse(fmt.Sprintf("from %s to %s is not binary-coercible", from, to)), nil
	}
	return nil, nil
}

// setNotNull applies the rules to ALTER COLUMN col SET NOT NULL.
func (c *postgresChecker) setNotNull(ctx context.Context, rel relation, col string) (*finding, error) {
	ok := false
	for _, expr := range c.validated[rel] {
		ok = ok || impliesNotNullNode(expr, col)
	}
	if !ok && c.cat.db != nil {
		exprs, err := c.cat.validatedChecks(ctx, rel)
		if err != nil {
			return nil, err
		}
		for _, e := range exprs {
			if impliesNotNull(e, col) {
				ok = true
				break
			}
		}
	}
	if ok {
		return nil, nil
	}
	why := "neither the catalog nor an earlier statement of the call holds a validated CHECK (" + col + " IS NOT NULL) constraint on it"
	if c.cat.db == nil {
		why = "lockcheck has no database to find a validated CHECK (" + col + " IS NOT NULL) constraint in, and no earlier statement of the call validates one"
	}
	return &finding{RuleSetNotNullCheck,
		fmt.Sprintf("SET NOT NULL on %s.%s scans the whole table under an ACCESS EXCLUSIVE lock, since %s", rel, col, why),
		fmt.Sprintf("ADD CONSTRAINT c CHECK (%s IS NOT NULL) NOT VALID, then VALIDATE CONSTRAINT c as a statement of its own, then SET NOT NULL and DROP CONSTRAINT c, in this order in one move or spread over several", col)}, nil
}

// impliesNotNull reports whether a CHECK constraint's expression, as
// pg_get_expr prints it, is col IS NOT NULL, alone or as one term of an
// AND, which PostgreSQL 12 and later accept as proof that the column holds
// no NULL.
func impliesNotNull(expr, col string) bool {
	node, err := parseOne(0, "SELECT "+expr)
	if err != nil {
		return false
	}
	targets := node.GetSelectStmt().GetTargetList()
	if len(targets) != 1 {
		return false
	}
	return impliesNotNullNode(targets[0].GetResTarget().GetVal(), col)
}

// impliesNotNullNode is impliesNotNull for an expression the parser has
// read: col IS NOT NULL, alone or as one term of an AND.
func impliesNotNullNode(expr *pgquery.Node, col string) bool {
	var implies func(n *pgquery.Node) bool
	implies = func(n *pgquery.Node) bool {
		if nt := n.GetNullTest(); nt != nil {
			fields := nt.GetArg().GetColumnRef().GetFields()
			return nt.GetNulltesttype() == pgquery.NullTestType_IS_NOT_NULL &&
				len(fields) == 1 && stringValue(fields[0]) == col
		}
		if be := n.GetBoolExpr(); be != nil && be.GetBoolop() == pgquery.BoolExprType_AND_EXPR {
			for _, a := range be.GetArgs() {
				if implies(a) {
					return true
				}
			}
		}
		return false
	}
	return implies(expr)
}

func constraintKind(con *pgquery.Constraint) string {
	switch con.GetContype() {
	case pgquery.ConstrType_CONSTR_PRIMARY:
		return "PRIMARY KEY"
	case pgquery.ConstrType_CONSTR_UNIQUE:
		return "UNIQUE"
	case pgquery.ConstrType_CONSTR_CHECK:
		return "CHECK"
	case pgquery.ConstrType_CONSTR_FOREIGN:
		return "FOREIGN KEY"
	case pgquery.ConstrType_CONSTR_EXCLUSION:
		return "EXCLUDE"
	}
	return "a"
}

// addConstraint applies the rules to ADD CONSTRAINT con.
func addConstraint(rel relation, con *pgquery.Constraint) *finding {
	name := con.GetConname()
	if name == "" {
		name = "c"
	}
	kind := constraintKind(con)
	switch con.GetContype() {
	case pgquery.ConstrType_CONSTR_CHECK, pgquery.ConstrType_CONSTR_FOREIGN:
		if con.GetSkipValidation() {
			return nil
		}
		lock := "a SHARE ROW EXCLUSIVE lock on both tables, which blocks writes to them"
		if con.GetContype() == pgquery.ConstrType_CONSTR_CHECK {
			lock = "an ACCESS EXCLUSIVE lock, which blocks reads and writes"
		}
		return &finding{RuleConstraintNotValid,
			fmt.Sprintf("ADD CONSTRAINT ... %s without NOT VALID checks every row of %s while it holds %s", kind, rel, lock),
			fmt.Sprintf("ADD CONSTRAINT %s ... NOT VALID, which checks only new rows, then ALTER TABLE %s VALIDATE CONSTRAINT %s in a statement of its own, which takes only a SHARE UPDATE EXCLUSIVE lock", name, rel, name)}
	case pgquery.ConstrType_CONSTR_PRIMARY, pgquery.ConstrType_CONSTR_UNIQUE:
		if con.GetIndexname() != "" {
			return nil
		}
		return &finding{RuleConstraintUsingIndex,
			fmt.Sprintf("ADD CONSTRAINT ... %s without USING INDEX builds an index on %s under an ACCESS EXCLUSIVE lock, which blocks reads and writes", kind, rel),
			fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY first, then ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX with that index", rel, name, kind)}
	case pgquery.ConstrType_CONSTR_EXCLUSION:
		return &finding{RuleConstraintUsingIndex,
			fmt.Sprintf("ADD CONSTRAINT ... EXCLUDE builds an index on %s under an ACCESS EXCLUSIVE lock, which blocks reads and writes, and PostgreSQL cannot attach one built beforehand", rel),
			"there is no online way: override the rule for a table small enough, or fill a new table that has the constraint through the expand-contract phases"}
	}
	return nil
}

// hasOption reports whether a list of DefElem options holds name.
func hasOption(opts []*pgquery.Node, name string) bool {
	for _, o := range opts {
		if o.GetDefElem().GetDefname() == name {
			return true
		}
	}
	return false
}

// optionOn reports whether a list of DefElem options turns name on: names
// it without a value (VACUUM FULL, VACUUM (FULL)) or with a true one.
func optionOn(opts []*pgquery.Node, name string) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d.GetDefname() != name {
			continue
		}
		arg := d.GetArg()
		switch {
		case arg == nil:
			return true
		case arg.GetBoolean() != nil:
			return arg.GetBoolean().GetBoolval()
		case arg.GetInteger() != nil:
			return arg.GetInteger().GetIval() != 0
		}
		switch strings.ToLower(stringValue(arg)) {
		case "false", "off", "no", "0":
			return false
		}
		return true
	}
	return false
}

func stringValue(n *pgquery.Node) string { return n.GetString_().GetSval() }

// funcName splits a function's name into its schema, "" if none is given,
// and name.
func funcName(names []*pgquery.Node) (schema, name string) {
	if len(names) == 0 {
		return "", ""
	}
	name = stringValue(names[len(names)-1])
	if len(names) > 1 {
		schema = stringValue(names[len(names)-2])
	}
	return schema, name
}

func qualified(schema, name string) string {
	if schema == "" || name == "" {
		return name
	}
	return schema + "." + name
}
