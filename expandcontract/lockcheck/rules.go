package lockcheck

// The rules. Each names what a statement does to a table that a busy
// service cannot wait for; docs/lock-safety.md lists them with what to run
// instead. The names are stable: they are recorded in migrations' histories.
const (
	// RuleCreateIndexConcurrently (PostgreSQL) refuses CREATE INDEX
	// without CONCURRENTLY on a table that exists before the call: the
	// build holds a SHARE lock, which blocks every write, for as long as
	// it reads the table.
	RuleCreateIndexConcurrently Rule = "create-index-concurrently"

	// RuleReindexConcurrently (PostgreSQL) refuses REINDEX without
	// CONCURRENTLY: it blocks writes to the table and reads through the
	// index while it rebuilds it.
	RuleReindexConcurrently Rule = "reindex-concurrently"

	// RuleAddColumnRewrite (PostgreSQL) refuses ALTER TABLE ... ADD COLUMN
	// that writes a value into every row under an ACCESS EXCLUSIVE lock: a
	// volatile default (clock_timestamp(), random(), gen_random_uuid()), a
	// serial or identity column (nextval for each row), a stored generated
	// column, or a default lockcheck cannot prove non-volatile.
	RuleAddColumnRewrite Rule = "add-column-rewrite"

	// RuleAlterColumnTypeRewrite (PostgreSQL) refuses ALTER COLUMN ... TYPE
	// unless the new type is binary-coercible from the current one, so
	// that PostgreSQL changes only the catalog; any other change rewrites
	// the table and its indexes under an ACCESS EXCLUSIVE lock.
	RuleAlterColumnTypeRewrite Rule = "alter-column-type-rewrite"

	// RuleSetNotNullCheck (PostgreSQL) refuses ALTER COLUMN ... SET NOT
	// NULL unless a validated CHECK (col IS NOT NULL) constraint on the
	// table is in the catalog, or is added NOT VALID and then validated by
	// earlier statements of the call; without one PostgreSQL scans the
	// whole table under an ACCESS EXCLUSIVE lock.
	RuleSetNotNullCheck Rule = "set-not-null-check"

	// RuleConstraintNotValid (PostgreSQL) refuses ADD CONSTRAINT ... CHECK
	// or FOREIGN KEY without NOT VALID on an existing table: validating it
	// scans the table while the lock that ALTER TABLE takes blocks writes
	// (and, for a foreign key, writes to the referenced table too). It
	// refuses as well a VALIDATE CONSTRAINT beside other commands of the
	// same ALTER TABLE, which would scan under their lock.
	RuleConstraintNotValid Rule = "add-constraint-not-valid"

	// RuleConstraintUsingIndex (PostgreSQL) refuses ADD CONSTRAINT ...
	// UNIQUE or PRIMARY KEY without USING INDEX, and EXCLUDE: each builds
	// an index under an ACCESS EXCLUSIVE lock, which blocks even reads.
	RuleConstraintUsingIndex Rule = "add-constraint-using-index"

	// RuleRewriteTable (PostgreSQL) refuses the statements whose purpose
	// is to rewrite a whole table under an ACCESS EXCLUSIVE lock: VACUUM
	// FULL, CLUSTER, and ALTER TABLE ... SET TABLESPACE, SET LOGGED, SET
	// UNLOGGED, SET ACCESS METHOD and ALTER COLUMN ... SET EXPRESSION.
	RuleRewriteTable Rule = "rewrite-table"

	// RuleMySQLOnlineDDL (MySQL, MariaDB) refuses an ALTER TABLE, CREATE
	// INDEX or DROP INDEX that asks the server for a change that may lock
	// the table: ALGORITHM=COPY, LOCK=SHARED or LOCK=EXCLUSIVE, or
	// ALGORITHM=DEFAULT with LOCK=DEFAULT. Without such clauses [Check]
	// adds ALGORITHM=INPLACE and LOCK=NONE, so that the server refuses a
	// change it cannot make online instead of locking the table.
	RuleMySQLOnlineDDL Rule = "mysql-online-ddl"
)

// Rules lists every rule, in the order of docs/lock-safety.md.
func Rules() []Rule {
	return []Rule{
		RuleCreateIndexConcurrently, RuleReindexConcurrently, RuleAddColumnRewrite,
		RuleAlterColumnTypeRewrite, RuleSetNotNullCheck, RuleConstraintNotValid,
		RuleConstraintUsingIndex, RuleRewriteTable, RuleMySQLOnlineDDL,
	}
}
