package lockcheck

import (
	"errors"
	"fmt"
	"strings"
)

// myKind is the kind of a MySQL token.
type myKind int

const (
	myWord   myKind = iota // a keyword or bare identifier: ALTER, users, @v
	myQuoted               // an identifier in backquotes
	myString               // a string literal, in single or double quotes
	myNumber               // a number: 12, 1.5, 1e3, 0x1F
	myPunct                // one character of punctuation: ( ) , . = ; and the rest
)

// myToken is one token of a MySQL statement.
type myToken struct {
	kind       myKind
	text       string // as written, quotes included
	start, end int    // byte offsets in the statement
	depth      int    // parentheses open before it; 0 at the top level
}

// is reports whether t is the keyword (or bare identifier) word, in any
// case.
func (t myToken) is(word string) bool { return t.kind == myWord && strings.EqualFold(t.text, word) }

// isPunct reports whether t is the punctuation p.
func (t myToken) isPunct(p string) bool { return t.kind == myPunct && t.text == p }

// ident returns the identifier t names: a bare word as written, a quoted
// one without its backquotes.
func (t myToken) ident() string {
	if t.kind == myQuoted {
		return strings.ReplaceAll(t.text[1:len(t.text)-1], "``", "`")
	}
	return t.text
}

var errExecutableComment = errors.New("it holds an executable comment (/*! ... */ or /*M! ... */), which lockcheck does not read")

// lexMySQL splits sql into tokens, without whitespace and comments. It
// knows what the rules need and no more: identifiers, backquoted
// identifiers, strings with backslash escapes and doubled quotes, numbers,
// comments (-- , #, /* */) and punctuation, and counts the depth of
// parentheses. It fails on an unterminated string, identifier or comment,
// on unbalanced parentheses, and on an executable comment, whose content
// the server would run.
func lexMySQL(sql string) ([]myToken, error) {
	var out []myToken
	depth := 0
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || sql[i+2] <= ' '):
			// "--" starts a comment only when a space or control character
			// follows it; otherwise it is two minus signs.
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			if strings.HasPrefix(sql[i:], "/*!") || strings.HasPrefix(sql[i:], "/*M!") {
				return nil, errExecutableComment
			}
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("the comment at byte %d does not end", i)
			}
			i += 2 + j + 2
		case c == '\'' || c == '"' || c == '`':
			j, err := quotedEnd(sql, i)
			if err != nil {
				return nil, err
			}
			kind := myString
			if c == '`' {
				kind = myQuoted
			}
			out = append(out, myToken{kind, sql[i:j], i, j, depth})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
			j := i + 1
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '.' ||
				(sql[j] == '+' || sql[j] == '-') && (sql[j-1] == 'e' || sql[j-1] == 'E')) {
				j++
			}
			// 1abc is an identifier in MySQL: a number is digits only.
			kind := myNumber
			if strings.ContainsFunc(sql[i:j], func(r rune) bool {
				return r == '_' || r == '$' || r >= 0x80
			}) {
				kind = myWord
			}
			out = append(out, myToken{kind, sql[i:j], i, j, depth})
			i = j
		case isWordByte(c) || c == '@':
			j := i + 1
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '@') {
				j++
			}
			out = append(out, myToken{myWord, sql[i:j], i, j, depth})
			i = j
		default:
			if c == ')' {
				if depth == 0 {
					return nil, fmt.Errorf("the ) at byte %d closes no parenthesis", i)
				}
				depth--
			}
			out = append(out, myToken{myPunct, sql[i : i+1], i, i + 1, depth})
			if c == '(' {
				depth++
			}
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%d parentheses are not closed", depth)
	}
	return out, nil
}

// quotedEnd returns the offset just past the quoted string or identifier
// that starts at sql[i]. Inside one, the quote doubled stands for itself;
// in a string (not a backquoted identifier), a backslash escapes the next
// byte.
func quotedEnd(sql string, i int) (int, error) {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch {
		case sql[j] == '\\' && q != '`':
			j++
		case sql[j] == q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	what := "string"
	if q == '`' {
		what = "quoted identifier"
	}
	return 0, fmt.Errorf("the %s at byte %d does not end", what, i)
}

// isWordByte reports whether c can be part of a bare identifier: ASCII
// letters, digits, _ and $, and every byte of a multi-byte UTF-8 character.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80
}
