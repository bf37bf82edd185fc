package ddlstall

import (
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/expandcontract/recipe"
)

// variant says what a case runs: the naive statement, the lock-safe recipe,
// or the naive change with the clauses lockcheck adds, which the server
// refuses instead of locking.
type variant string

const (
	naive      variant = "naive"
	withRecipe variant = "recipe"
	online     variant = "online"
)

// stallCase is one schema change, run one way, on one database.
type stallCase struct {
	db      string  // "postgres" or "mysql"
	change  string  // the schema change, the same for its naive and recipe rows
	variant variant // naive, recipe or online
	// recipe names the recipe, for the recipe rows: the function of package
	// expandcontract/recipe that gives the statements (statements), or,
	// where there is none, what lockcheck's error says to run instead.
	recipe string
	// statements, if not nil, gives the one move of a recipe of package
	// expandcontract/recipe for the database; moves is then not used.
	statements func(db string) ([]string, error)
	// moves lists the statements, one entry per move: the k-th move goes to
	// dualwrite when k is even, to backfill when it is odd.
	moves [][]string
	// copy, if not nil, runs between the first move and the rest, outside
	// any move and inside the measured window: the batched backfill or
	// copy of an expand-contract recipe, with the writers dual writing.
	copy copyKind
	// rule is the lockcheck rule that refuses the naive statement: the
	// test shows the refusal, then runs it with an override of the rule.
	rule lockcheck.Rule
	// refused, for the online variant, is what the server's error says
	// when it refuses the change lockcheck made online.
	refused string
	// done counts, once the moves have run, what the change made: 1 when
	// it is there, 0 when it is not (for the online variant, which the
	// server refuses).
	done string
}

// copyKind is the batched work of a recipe between its moves.
type copyKind uint8

const (
	noCopy copyKind = iota
	// backfillNBig: writers also write n_big, then n_big = n in batches of
	// id ranges (PostgreSQL).
	backfillNBig
	// copyUsersNew: writers also write the rows they touch into users_new,
	// then the rows of users are copied into users_new in batches of id
	// ranges (MariaDB).
	copyUsersNew
)

// batchSize is the rows of one batch of a backfill or copy.
const batchSize = 1000

// cases lists every case, in the order of the table.
var cases = []stallCase{
	// PostgreSQL.
	{db: "postgres", change: "create index", variant: naive, rule: lockcheck.RuleCreateIndexConcurrently,
		done:  pgIndexValid,
		moves: [][]string{{`CREATE INDEX users_email_idx ON users (email)`}}},
	{db: "postgres", change: "create index", variant: withRecipe, recipe: "CREATE INDEX CONCURRENTLY",
		done:  pgIndexValid,
		moves: [][]string{{`CREATE INDEX CONCURRENTLY users_email_idx ON users (email)`}}},

	{db: "postgres", change: "NOT NULL on n", variant: naive, rule: lockcheck.RuleSetNotNullCheck,
		done:  pgNotNull,
		moves: [][]string{{`ALTER TABLE users ALTER COLUMN n SET NOT NULL`}}},
	{db: "postgres", change: "NOT NULL on n", variant: withRecipe, recipe: "NotNull", done: pgNotNull,
		statements: func(db string) ([]string, error) { return recipe.NotNull(db, "users", "n") }},

	{db: "postgres", change: "foreign key org_id", variant: naive, rule: lockcheck.RuleConstraintNotValid,
		done:  pgFKValid,
		moves: [][]string{{`ALTER TABLE users ADD CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id)`}}},
	{db: "postgres", change: "foreign key org_id", variant: withRecipe, recipe: "ForeignKey", done: pgFKValid,
		statements: func(db string) ([]string, error) {
			return recipe.ForeignKey(db, recipe.ForeignKeyDef{Table: "users", Name: "users_org_fk",
				Columns: []string{"org_id"}, RefTable: "orgs", RefColumns: []string{"id"}})
		}},

	{db: "postgres", change: "unique email", variant: naive, rule: lockcheck.RuleConstraintUsingIndex,
		done:  pgUnique,
		moves: [][]string{{`ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)`}}},
	{db: "postgres", change: "unique email", variant: withRecipe, recipe: "Unique", done: pgUnique,
		statements: func(db string) ([]string, error) { return recipe.Unique(db, "users", "users_email_key", "email") }},

	{db: "postgres", change: "n INT -> BIGINT", variant: naive, rule: lockcheck.RuleAlterColumnTypeRewrite,
		done:  pgColumn("n", "bigint"),
		moves: [][]string{{`ALTER TABLE users ALTER COLUMN n TYPE BIGINT`}}},
	{db: "postgres", change: "n INT -> BIGINT", variant: withRecipe, recipe: "a new column, backfilled",
		done:  pgColumn("n_big", "bigint"),
		moves: [][]string{{`ALTER TABLE users ADD COLUMN n_big BIGINT`}}, copy: backfillNBig},

	// MariaDB.
	{db: "mysql", change: "add index", variant: naive, rule: lockcheck.RuleMySQLOnlineDDL,
		done:  myIndex,
		moves: [][]string{{`ALTER TABLE users ADD INDEX users_email_idx (email), ALGORITHM=COPY, LOCK=SHARED`}}},
	{db: "mysql", change: "add index", variant: withRecipe, recipe: "ALGORITHM=INPLACE, LOCK=NONE (lockcheck adds them)",
		done:  myIndex,
		moves: [][]string{{`ALTER TABLE users ADD INDEX users_email_idx (email)`}}},

	{db: "mysql", change: "add column", variant: naive, rule: lockcheck.RuleMySQLOnlineDDL,
		done:  myColumn("note", "varchar"),
		moves: [][]string{{`ALTER TABLE users ADD COLUMN note VARCHAR(64), ALGORITHM=COPY`}}},
	{db: "mysql", change: "add column", variant: withRecipe, recipe: "ALGORITHM=INPLACE, LOCK=NONE (instant on MariaDB)",
		done:  myColumn("note", "varchar"),
		moves: [][]string{{`ALTER TABLE users ADD COLUMN note VARCHAR(64)`}}},

	{db: "mysql", change: "n INT -> VARCHAR", variant: naive, rule: lockcheck.RuleMySQLOnlineDDL,
		done:  myColumn("n", "varchar"),
		moves: [][]string{{`ALTER TABLE users MODIFY n VARCHAR(20), ALGORITHM=COPY, LOCK=SHARED`}}},
	{db: "mysql", change: "n INT -> VARCHAR", variant: online,
		moves:   [][]string{{`ALTER TABLE users MODIFY n VARCHAR(20)`}},
		refused: "is not supported", done: myColumn("n", "varchar")},
	{db: "mysql", change: "n INT -> VARCHAR", variant: withRecipe, recipe: "TableSwap (here with RENAME TABLE)", done: myColumn("n", "varchar"),
		moves: [][]string{
			{`CREATE TABLE users_new LIKE users`, `ALTER TABLE users_new MODIFY n VARCHAR(20)`},
			{`RENAME TABLE users TO users_old, users_new TO users`},
		},
		copy: copyUsersNew},
}

// The queries of stallCase.done.
const (
	pgIndexValid = `SELECT COUNT(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = 'users_email_idx' AND i.indisvalid`
	pgNotNull = `SELECT COUNT(*) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'n' AND attnotnull`
	pgFKValid = `SELECT COUNT(*) FROM pg_constraint WHERE conname = 'users_org_fk' AND contype = 'f' AND convalidated`
	pgUnique  = `SELECT COUNT(*) FROM pg_constraint WHERE conname = 'users_email_key' AND contype = 'u'`
	myIndex   = `SELECT COUNT(*) FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = 'users' AND index_name = 'users_email_idx'`
)

// pgColumn counts the columns of users named name of type typ (PostgreSQL).
func pgColumn(name, typ string) string {
	return `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema()
		AND table_name = 'users' AND column_name = '` + name + `' AND data_type = '` + typ + `'`
}

// myColumn counts the columns of users named name of type typ (MariaDB).
func myColumn(name, typ string) string {
	return `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE()
		AND table_name = 'users' AND column_name = '` + name + `' AND data_type = '` + typ + `'`
}
