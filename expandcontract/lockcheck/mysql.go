package lockcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/internal/sqltext"
)

// mysqlChecker checks the MySQL and MariaDB statements of one call.
//
// The server, not lockcheck, knows whether it can make a change online:
// that depends on the storage engine, the server's version, the column's
// current definition and the row format. So the rule is to ask for an
// online change and let the server refuse one it cannot make:
// ALGORITHM=INPLACE and LOCK=NONE are added to every ALTER TABLE, CREATE
// INDEX and DROP INDEX that does not say otherwise. MariaDB reads
// ALGORITHM=INPLACE as "in place or better", so a change it can make
// INSTANT stays instant.
type mysqlChecker struct {
	// created holds the tables, as written (db.table or table), that
	// earlier statements of the call create; their statements are left as
	// given, since no other session uses those tables yet.
	created map[string]bool
}

func newMySQLChecker() *mysqlChecker { return &mysqlChecker{created: map[string]bool{}} }

// myStmt is what the rules need to know of a MySQL statement.
type myStmt struct {
	kind        string // "alter table", "create index", "drop index", "create table", or "" for others
	table       string // the table it changes, as written
	ifNotExists bool
	specs       int // for ALTER TABLE, the index of the first token after the table's name
}

func (c *mysqlChecker) check(_ context.Context, i int, sql string) (Statement, []finding, error) {
	toks, err := lexMySQL(sql)
	if err != nil {
		return Statement{}, nil, fmt.Errorf("%w: statement %d (%s): %v", ErrParse, i, sqltext.Abbreviate(sql), err)
	}
	toks, n := firstStatement(toks)
	if n != 1 {
		return Statement{}, nil, fmt.Errorf("%w: statement %d holds %d statements; give one per entry", ErrInvalidInput, i, n)
	}
	st := Statement{SQL: sql}
	s := classifyMySQL(toks)
	switch s.kind {
	case "create table":
		if !s.ifNotExists {
			c.created[s.table] = true
		}
		return st, nil, nil
	case "alter table", "create index", "drop index":
		if c.created[s.table] {
			return st, nil, nil
		}
	default:
		return st, nil, nil
	}
	from := 0
	if s.kind == "alter table" {
		from = s.specs
	}
	algorithm, lock := onlineClauses(toks[from:])
	var bad []string
	for _, a := range algorithm {
		if a == "COPY" {
			bad = append(bad, "ALGORITHM=COPY copies the table, blocking writes to it for the whole copy")
		}
	}
	for _, l := range lock {
		switch l {
		case "SHARED":
			bad = append(bad, "LOCK=SHARED blocks writes to the table for the whole change")
		case "EXCLUSIVE":
			bad = append(bad, "LOCK=EXCLUSIVE blocks reads and writes of the table for the whole change")
		}
	}
	if last(algorithm) == "DEFAULT" && last(lock) == "DEFAULT" {
		bad = append(bad, "ALGORITHM=DEFAULT with LOCK=DEFAULT lets the server copy the table under a lock")
	}
	if len(bad) > 0 {
		return st, []finding{{RuleMySQLOnlineDDL, strings.Join(bad, "; "),
			"leave ALGORITHM and LOCK out, or give ALGORITHM=INSTANT, INPLACE or NOCOPY with LOCK=NONE, so that the server makes the change online or refuses it; " +
				"a change it cannot make online needs an online schema-change tool (gh-ost, pt-online-schema-change), or a new table filled through the expand-contract phases"}}, nil
	}
	if s.kind == "drop index" && len(algorithm) == 0 && len(lock) == 0 {
		if alter, ok := dropIndexAsAlter(sql, toks); ok {
			st.SQL = alter
			return st, nil, nil
		}
	}
	var add []string
	if len(algorithm) == 0 {
		add = append(add, "ALGORITHM=INPLACE")
	}
	if len(lock) == 0 {
		add = append(add, "LOCK=NONE")
	}
	if len(add) == 0 {
		return st, nil, nil
	}
	end := toks[len(toks)-1].end
	sep, lead := " ", " "
	if s.kind == "alter table" {
		sep = ", "
		if len(toks) > s.specs { // there are alter specifications to follow
			lead = ", "
		}
	}
	st.SQL = sql[:end] + lead + strings.Join(add, sep) + sql[end:]
	return st, nil, nil
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// firstStatement returns the tokens of the first statement of toks, up to
// a top-level semicolon, and how many statements toks holds: a semicolon
// at the end starts none.
func firstStatement(toks []myToken) ([]myToken, int) {
	var first []myToken
	n, cur := 0, 0
	for _, t := range toks {
		if t.isPunct(";") && t.depth == 0 {
			if cur > 0 {
				n++
			}
			cur = 0
			continue
		}
		if n == 0 {
			first = append(first, t)
		}
		cur++
	}
	if cur > 0 {
		n++
	}
	return first, n
}

// myCursor reads a statement's tokens in order.
type myCursor struct {
	toks []myToken
	i    int
}

// accept moves past the next tokens if they are the keywords words.
func (c *myCursor) accept(words ...string) bool {
	if c.i+len(words) > len(c.toks) {
		return false
	}
	for k, w := range words {
		if !c.toks[c.i+k].is(w) {
			return false
		}
	}
	c.i += len(words)
	return true
}

// acceptAny moves past the next token if it is one of words.
func (c *myCursor) acceptAny(words ...string) bool {
	for _, w := range words {
		if c.accept(w) {
			return true
		}
	}
	return false
}

// name reads a table's or index's name, db.name or name, as written.
func (c *myCursor) name() string {
	if c.i >= len(c.toks) || (c.toks[c.i].kind != myWord && c.toks[c.i].kind != myQuoted) {
		return ""
	}
	n := c.toks[c.i].ident()
	c.i++
	if c.i+1 < len(c.toks) && c.toks[c.i].isPunct(".") && (c.toks[c.i+1].kind == myWord || c.toks[c.i+1].kind == myQuoted) {
		n += "." + c.toks[c.i+1].ident()
		c.i += 2
	}
	return n
}

// classifyMySQL tells the statements the rules apply to from the others,
// by their first keywords.
func classifyMySQL(toks []myToken) myStmt {
	c := &myCursor{toks: toks}
	switch {
	case c.accept("ALTER"):
		c.accept("ONLINE")
		c.accept("IGNORE")
		if !c.accept("TABLE") {
			return myStmt{}
		}
		c.accept("IF", "EXISTS")
		s := myStmt{kind: "alter table", table: c.name()}
		s.specs = c.i
		return s
	case c.accept("CREATE"):
		c.accept("OR", "REPLACE")
		c.accept("TEMPORARY")
		if c.accept("TABLE") {
			s := myStmt{kind: "create table"}
			s.ifNotExists = c.accept("IF", "NOT", "EXISTS")
			s.table = c.name()
			return s
		}
		c.acceptAny("ONLINE", "OFFLINE")
		c.acceptAny("UNIQUE", "FULLTEXT", "SPATIAL")
		if !c.accept("INDEX") {
			return myStmt{}
		}
		return myStmt{kind: "create index", table: tableAfterOn(c)}
	case c.accept("DROP"):
		c.acceptAny("ONLINE", "OFFLINE")
		if !c.accept("INDEX") {
			return myStmt{}
		}
		return myStmt{kind: "drop index", table: tableAfterOn(c)}
	}
	return myStmt{}
}

// tableAfterOn reads the table's name after the first top-level ON.
func tableAfterOn(c *myCursor) string {
	for ; c.i < len(c.toks); c.i++ {
		if c.toks[c.i].depth == 0 && c.toks[c.i].is("ON") {
			c.i++
			return c.name()
		}
	}
	return ""
}

// The values of ALGORITHM and LOCK that MySQL and MariaDB accept.
var (
	algorithms = map[string]bool{"DEFAULT": true, "INSTANT": true, "INPLACE": true, "COPY": true, "NOCOPY": true}
	locks      = map[string]bool{"DEFAULT": true, "NONE": true, "SHARED": true, "EXCLUSIVE": true}
)

// onlineClauses returns the values of the top-level ALGORITHM [=] value
// and LOCK [=] value clauses of toks, upper-cased, in order. ALGORITHM is
// not a reserved word, so it counts only followed by one of its values; a
// column named algorithm is followed by a type, which none of them is.
func onlineClauses(toks []myToken) (algorithm, lock []string) {
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		if t.depth != 0 || !(t.is("ALGORITHM") || t.is("LOCK")) {
			continue
		}
		v := k + 1
		if v < len(toks) && toks[v].isPunct("=") {
			v++
		}
		if v >= len(toks) || toks[v].kind != myWord {
			continue
		}
		val := strings.ToUpper(toks[v].text)
		switch {
		case t.is("ALGORITHM") && algorithms[val]:
			algorithm = append(algorithm, val)
		case t.is("LOCK") && locks[val]:
			lock = append(lock, val)
		default:
			continue
		}
		k = v
	}
	return algorithm, lock
}

// dropIndexAsAlter rewrites DROP INDEX [IF EXISTS] i ON t [WAIT n | NOWAIT]
// as ALTER TABLE t [WAIT n | NOWAIT] DROP INDEX [IF EXISTS] i,
// ALGORITHM=INPLACE, LOCK=NONE, which means the same: MariaDB's DROP INDEX,
// unlike MySQL's, takes no ALGORITHM or LOCK clause. It returns false for
// a statement of another form, which keeps the clauses appended.
func dropIndexAsAlter(sql string, toks []myToken) (string, bool) {
	c := &myCursor{toks: toks}
	if !c.accept("DROP", "INDEX") {
		return "", false
	}
	ifExists := ""
	if c.accept("IF", "EXISTS") {
		ifExists = "IF EXISTS "
	}
	at := c.i
	if c.name() == "" || c.i != at+1 || !c.accept("ON") {
		return "", false
	}
	index := toks[at].text
	at = c.i
	if c.name() == "" {
		return "", false
	}
	table := sql[toks[at].start:toks[c.i-1].end]
	wait := ""
	switch {
	case c.accept("NOWAIT"):
		wait = " NOWAIT"
	case c.i+1 < len(toks) && toks[c.i].is("WAIT") && toks[c.i+1].kind == myNumber:
		wait = " WAIT " + toks[c.i+1].text
		c.i += 2
	}
	if c.i != len(toks) {
		return "", false
	}
	return sql[:toks[0].start] + "ALTER TABLE " + table + wait + " DROP INDEX " + ifExists + index +
		", ALGORITHM=INPLACE, LOCK=NONE" + sql[toks[len(toks)-1].end:], true
}
