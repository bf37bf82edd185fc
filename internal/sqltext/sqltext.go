// Package sqltext shortens SQL statements for error messages and logs.
package sqltext

import "strings"

// MaxLen is how many characters of a statement [Abbreviate] keeps.
const MaxLen = 80

// Abbreviate returns q with its runs of white space made single spaces,
// cut to MaxLen characters (not bytes, so that a cut never splits one)
// and ended with "..." where it was cut.
func Abbreviate(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if r := []rune(q); len(r) > MaxLen {
		return string(r[:MaxLen-3]) + "..."
	}
	return q
}
