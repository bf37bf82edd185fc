package sqltext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAbbreviate(t *testing.T) {
	if got := Abbreviate("ALTER TABLE users\n\t  ADD COLUMN  email text"); got != "ALTER TABLE users ADD COLUMN email text" {
		t.Errorf("white space: got %q", got)
	}
	long := "UPDATE users SET name = '" + strings.Repeat("é", 100) + "'"
	got := Abbreviate(long)
	if n := utf8.RuneCountInString(got); n != MaxLen || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Errorf("long statement: got %q (%d runes)", got, n)
	}
}
