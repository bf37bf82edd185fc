package sqldialect

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIdentifierLen is the longest identifier part, in bytes, that
// [ValidIdentifier] accepts. It is PostgreSQL's limit (MySQL allows 64 and
// SQLite has none), so an accepted name means the same on all three.
const MaxIdentifierLen = 63

// ErrInvalidIdentifier is wrapped by the errors [ValidIdentifier] and
// [Dialect.QuoteIdent] return for a name they do not accept; test for it
// with errors.Is. The error's text names the rejected input and says what
// is wrong with it.
var ErrInvalidIdentifier = errors.New("invalid SQL identifier")

// ValidIdentifier reports whether s is an identifier that cutover accepts for
// a table, column, index or schema name, and if not, why. An identifier is
// either one part or two parts joined by a single dot, "schema.table"
// ("database.table" on MySQL), and every part matches
// ^[A-Za-z_][A-Za-z0-9_]{0,62}$: an ASCII letter or underscore followed by
// at most 62 ASCII letters, digits or underscores. Everything else is
// rejected: the empty string, spaces, quotes, backticks, semicolons,
// non-ASCII letters (including look-alikes of ASCII ones), control
// characters, invalid UTF-8, more than one dot, and parts longer than
// [MaxIdentifierLen] bytes.
//
// Names that look like SQL keywords ("select", "order", "user") are
// accepted: identifiers are always quoted, so they cannot be mistaken for
// keywords. Case is preserved by quoting, but SQLite matches quoted names
// case-insensitively while PostgreSQL and MySQL on Linux do not, so names
// that differ only in case must not be used for different objects; lower
// case names are recommended. SQLite reserves names that begin with
// "sqlite_" for its own tables, and PostgreSQL reserves schema names that
// begin with "pg_"; such names are valid references but cannot be created.
//
// The error returned for a rejected name wraps [ErrInvalidIdentifier].
func ValidIdentifier(s string) error {
	if err := checkIdent(s); err != nil {
		return fmt.Errorf("sqldialect: %w", err)
	}
	return nil
}

// checkIdent is ValidIdentifier without the package prefix on the error,
// for callers that add their own.
func checkIdent(s string) error {
	first, rest, dotted := strings.Cut(s, ".")
	if !dotted {
		if reason := checkPart(s); reason != "" {
			return invalid(s, reason)
		}
		return nil
	}
	if strings.Contains(rest, ".") {
		return invalid(s, "more than one dot (at most schema.table)")
	}
	if reason := checkPart(first); reason != "" {
		return invalid(s, "schema part: "+reason)
	}
	if reason := checkPart(rest); reason != "" {
		return invalid(s, "name part after the dot: "+reason)
	}
	return nil
}

// checkSimple is checkIdent for a name that cannot have a schema part,
// such as a column's; what names it is in the error.
func checkSimple(s, what string) error {
	if strings.Contains(s, ".") {
		return invalid(s, what+" cannot have a schema part")
	}
	return checkIdent(s)
}

// invalid returns the error for a rejected identifier s. A long s is cut
// short in the message; %q keeps any hostile bytes in it inert.
func invalid(s, reason string) error {
	shown := s
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidIdentifier, shown, reason)
}

// checkPart checks one dot-free identifier part and returns why it is not
// acceptable, or "" if it is.
func checkPart(p string) string {
	if p == "" {
		return "empty"
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9':
			if i == 0 {
				return fmt.Sprintf("starts with the digit %q; it must start with an ASCII letter or underscore", c)
			}
		case c < utf8.RuneSelf:
			return fmt.Sprintf("character %q at byte %d; only ASCII letters, digits and underscores are allowed", c, i)
		default:
			r, size := utf8.DecodeRuneInString(p[i:])
			if r == utf8.RuneError && size <= 1 {
				return fmt.Sprintf("invalid UTF-8 byte 0x%02x at byte %d", c, i)
			}
			return fmt.Sprintf("non-ASCII character %q (%U) at byte %d; only ASCII letters, digits and underscores are allowed", r, r, i)
		}
		i++
	}
	if len(p) > MaxIdentifierLen {
		return fmt.Sprintf("%d bytes long; at most %d are allowed", len(p), MaxIdentifierLen)
	}
	return ""
}

// Quote returns ident quoted as one identifier: "ident" on SQLite and
// PostgreSQL, `ident` on MySQL. A quote character inside ident is doubled,
// which is how all three databases escape it, so the result is always a
// single quoted identifier and never ends the quoting early; a dot is taken
// literally, as part of the name, so Quote("a.b") names one object called
// a.b. Quote does not validate: it is meant for names fixed in the program.
// Names from configuration or any other input must go through
// [Dialect.QuoteIdent], which rejects what [ValidIdentifier] rejects and
// understands schema.table.
func (d Dialect) Quote(ident string) string {
	q := d.pick(`"`, `"`, "`")
	return q + strings.ReplaceAll(ident, q, q+q) + q
}

// QuoteIdent validates s with [ValidIdentifier] and returns it quoted for the
// dialect, each part of a schema.table name quoted on its own:
// "schema"."table" on SQLite and PostgreSQL, `schema`.`table` on MySQL. The
// error for a rejected name wraps [ErrInvalidIdentifier].
func (d Dialect) QuoteIdent(s string) (string, error) {
	d.must()
	if err := checkIdent(s); err != nil {
		return "", fmt.Errorf("sqldialect: %w", err)
	}
	if schema, name, ok := strings.Cut(s, "."); ok {
		return d.Quote(schema) + "." + d.Quote(name), nil
	}
	return d.Quote(s), nil
}
