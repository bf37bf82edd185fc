package lockcheck

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// catalog reads what the PostgreSQL rules need from pg_catalog. Its db is
// nil when the caller gave none; the rules then assume the worst.
type catalog struct {
	db sqlx.QueryerContext
}

// volatility is what the catalog says of a function or operator.
type volatility struct {
	found    bool // some function or operator has the name
	volatile bool // one of them is volatile
}

// why returns why what says volatility v is not known to be safe, or "".
func (v volatility) why(what string) string {
	switch {
	case !v.found:
		return what + ", which the catalog does not hold"
	case v.volatile:
		return what + ", which is volatile (pg_proc.provolatile = 'v')"
	}
	return ""
}

// functionVolatile looks up every function of the name (in schema, or in
// any schema if schema is ""): one volatile overload makes it volatile, as
// lockcheck does not resolve argument types.
func (c catalog) functionVolatile(ctx context.Context, schema, name string) (volatility, error) {
	return c.volatility(ctx, "function "+qualified(schema, name), `
		SELECT count(*), coalesce(bool_or(p.provolatile = 'v'), false)
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE p.proname = $1::text AND ($2::text = '' OR n.nspname = $2::text)`, name, schema)
}

// operatorVolatile looks up every operator of the name, as
// functionVolatile does for functions, through the functions that
// implement them.
func (c catalog) operatorVolatile(ctx context.Context, schema, name string) (volatility, error) {
	return c.volatility(ctx, "operator "+qualified(schema, name), `
		SELECT count(*), coalesce(bool_or(p.provolatile = 'v'), false)
		FROM pg_catalog.pg_operator o
		JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
		JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
		WHERE o.oprname = $1::text AND ($2::text = '' OR n.nspname = $2::text)`, name, schema)
}

func (c catalog) volatility(ctx context.Context, what, query string, args ...any) (volatility, error) {
	var n int64
	var v volatility
	if err := c.db.QueryRowxContext(ctx, query, args...).Scan(&n, &v.volatile); err != nil {
		return volatility{}, fmt.Errorf("read the volatility of %s from pg_proc: %w", what, err)
	}
	v.found = n > 0
	return v, nil
}

// regclass returns rel as to_regclass reads it: quoted, so that the
// names stay as the parser folded them.
func (r relation) regclass() string {
	if r.schema == "" {
		return quoteIdent(r.name)
	}
	return quoteIdent(r.schema) + "." + quoteIdent(r.name)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// columnType returns the current type of column col of rel, with found
// false if the catalog has no such column.
func (c catalog) columnType(ctx context.Context, rel relation, col string) (t pgType, found bool, err error) {
	rows, err := c.db.QueryxContext(ctx, `
		SELECT CASE WHEN n.nspname = 'pg_catalog' THEN t.typname ELSE n.nspname || '.' || t.typname END, a.atttypmod
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
		WHERE a.attrelid = to_regclass($1::text) AND a.attname = $2::text AND a.attnum > 0 AND NOT a.attisdropped`,
		rel.regclass(), col)
	if err != nil {
		return pgType{}, false, fmt.Errorf("read the type of %s.%s from pg_attribute: %w", rel, col, err)
	}
	defer rows.Close()
	var mod int32
	for rows.Next() {
		if err := rows.Scan(&t.name, &mod); err != nil {
			return pgType{}, false, fmt.Errorf("read the type of %s.%s from pg_attribute: %w", rel, col, err)
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return pgType{}, false, fmt.Errorf("read the type of %s.%s from pg_attribute: %w", rel, col, err)
	}
	t.mods = typeMods(t.name, mod)
	return t, found, nil
}

// typeMods decodes a pg_attribute.atttypmod into the modifiers that
// ALTER COLUMN ... TYPE would write: varchar(n) and bpchar(n) store n+4,
// numeric(p,s) stores (p<<16 | s)+4 with s in 11 bits, signed.
func typeMods(name string, mod int32) []int32 {
	if mod < 0 {
		return nil
	}
	switch name {
	case "varchar", "bpchar":
		return []int32{mod - 4}
	case "numeric":
		v := mod - 4
		return []int32{(v >> 16) & 0xffff, ((v & 0x7ff) ^ 1024) - 1024}
	}
	return []int32{mod}
}

// validatedChecks returns the expressions of the validated CHECK
// constraints of rel, as pg_get_expr prints them.
func (c catalog) validatedChecks(ctx context.Context, rel relation) ([]string, error) {
	rows, err := c.db.QueryxContext(ctx, `
		SELECT pg_catalog.pg_get_expr(c.conbin, c.conrelid)
		FROM pg_catalog.pg_constraint c
		WHERE c.conrelid = to_regclass($1::text) AND c.contype = 'c' AND c.convalidated`, rel.regclass())
	if err != nil {
		return nil, fmt.Errorf("read the CHECK constraints of %s from pg_constraint: %w", rel, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("read the CHECK constraints of %s from pg_constraint: %w", rel, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the CHECK constraints of %s from pg_constraint: %w", rel, err)
	}
	return out, nil
}
