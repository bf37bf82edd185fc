package diff

import (
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

type contact struct {
	Name  string
	Email string  `cutover:"sensitive"`
	Phone *string `json:"phone" cutover:"other, sensitive"`
}

// badge has a String method that would show its tagged field.
type badge struct {
	Label string
	Token string `cutover:"sensitive"`
}

func (b badge) String() string { return b.Label + ":" + b.Token }

type account struct {
	ID      int
	Owner   contact
	Friends []contact
	ByEmail map[string]contact // keyed by email address
	Notes   map[string]string
	Backup  *contact
	Badges  []badge
	Extra   any
}

func phone(s string) *string { return &s }

func newAccount() *account {
	return &account{
		ID:    7,
		Owner: contact{Name: "Ann", Email: "ann@example.org", Phone: phone("+1 555 0100")},
		Friends: []contact{
			{Name: "Bob", Email: "bob@example.org"},
			{Name: "Cy", Email: "cy@example.org", Phone: phone("+1 555 0101")},
		},
		ByEmail: map[string]contact{"bob@example.org": {Name: "Bob"}},
		Notes:   map[string]string{"pin": "4321", "color": "teal"},
		Backup:  &contact{Name: "Dee", Email: "dee@example.org"},
		Badges:  []badge{{Label: "gold", Token: "tok-1234"}},
	}
}

// secrets are every value of newAccount and its edits below that must not
// appear in a report that hides them.
var secrets = []string{
	"ann@example.org", "ann@example.com", "bob@example.org", "cy@example.org", "dee@example.org",
	"eve@example.org", "+1 555 0100", "+1 555 0199", "+1 555 0101", "4321", "9999", "tok-1234", "tok-5678",
}

var tokenRE = regexp.MustCompile(`<redacted:[0-9a-f]{8}>`)

// tok stands for any hash in a wanted report.
const tok = "<redacted:########>"

func redactedReport(c *Comparer, a, b any) string {
	return tokenRE.ReplaceAllString(c.Diff(a, b), tok)
}

func assertNoSecrets(t *testing.T, report string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(report, s) {
			t.Errorf("the report shows %q:\n%s", s, report)
		}
	}
}

// TestSensitiveFields: tagged fields and fields named by a sensitive path
// are shown as keyed hashes wherever a report would show them: as the
// differing value, inside a value shown whole, as a map key in a path, in
// an element of a slice, behind a pointer; the rest is shown as before.
func TestSensitiveFields(t *testing.T) {
	c := mustCompile(t, Options{Sensitive: []string{"Notes.pin", "ByEmail", "Backup"}})
	cases := []struct {
		name string
		edit func(*account)
		want string
	}{
		{"tagged field", func(a *account) { a.Owner.Email = "ann@example.com" },
			".Owner.Email: " + tok + " != " + tok},
		{"tagged pointer field", func(a *account) { a.Owner.Phone = phone("+1 555 0199") },
			".Owner.Phone: " + tok + " != " + tok},
		{"nil is shown as nil", func(a *account) { a.Owner.Phone = nil },
			".Owner.Phone: " + tok + " != <nil>"},
		{"field that is not sensitive", func(a *account) { a.Owner.Name = "Ana" },
			`.Owner.Name: "Ann" != "Ana"`},
		{"element of a slice of structs", func(a *account) { a.Friends[1].Email = "eve@example.org" },
			".Friends[1].Email: " + tok + " != " + tok},
		{"element shown whole", func(a *account) { a.Friends = a.Friends[:1] },
			`.Friends[1]: missing in new (old: contact{Name:"Cy", Email:` + tok + `, Phone:...)`},
		{"map value named by a path", func(a *account) { a.Notes["pin"] = "9999" },
			`.Notes["pin"]: ` + tok + " != " + tok},
		{"map value not named", func(a *account) { a.Notes["color"] = "red" },
			`.Notes["color"]: "teal" != "red"`},
		{"keys of a sensitive map", func(a *account) {
			a.ByEmail = map[string]contact{"eve@example.org": {Name: "Bob"}}
		}, ".ByEmail[" + tok + "]: missing in new (old: " + tok + ")\n.ByEmail[" + tok + "]: missing in old (new: " + tok + ")"},
		{"below a sensitive pointer", func(a *account) { a.Backup.Name = "Dot" },
			".Backup.Name: " + tok + " != " + tok},
		{"String method of a type with a tagged field", func(a *account) { a.Badges = nil },
			`.Badges[0]: missing in new (old: badge{Label:"gold", Token:` + tok + `})`},
		{"tagged field in an interface", func(a *account) { a.Extra = contact{Name: "Eve", Email: "eve@example.org"} },
			`.Extra: <nil> != contact{Name:"Eve", Email:` + tok + `, Phone:<nil>}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newAccount(), newAccount()
			tc.edit(b)
			got := redactedReport(c, a, b)
			if got != tc.want {
				t.Errorf("Diff:\n got: %s\nwant: %s", got, tc.want)
			}
			assertNoSecrets(t, got)
			if c.Equal(a, b) {
				t.Error("Equal: sensitive values are compared like any other")
			}
		})
	}
	// The root shown whole; a hash the cap on a value would cut is left
	// out.
	got := redactedReport(c, newAccount(), (*account)(nil))
	if want := `: &account{ID:7, Owner:contact{Name:"Ann", Email:... != <nil>`; got != want {
		t.Errorf("Diff:\n got: %s\nwant: %s", got, want)
	}
	assertNoSecrets(t, c.Diff(newAccount(), (*account)(nil)))
}

// TestSensitiveLongText: a long sensitive text is not shown around its
// first difference, nor is where that difference is.
func TestSensitiveLongText(t *testing.T) {
	c := mustCompile(t, Options{Sensitive: []string{"*"}})
	x := strings.Repeat("secret ", 20)
	got := redactedReport(c, []string{x + "a"}, []string{x + "b"})
	if want := "[0]: " + tok + " != " + tok; got != want {
		t.Errorf("Diff = %q; want %q", got, want)
	}
	// A value too large to hash is shown without a hash.
	huge := strings.Repeat("x", maxHashed+1)
	got = c.Diff([]string{huge, "a"}, []string{huge + "y", "b"})
	if want := "[0]: <redacted> != <redacted>\n[1]: "; !strings.HasPrefix(got, want) {
		t.Errorf("Diff = %.80q; want it to start with %q", got, want)
	}
}

// TestHashesTellEqualFromDifferent: the hash of a hidden value is the same
// for equal values, by the rules of the package, and differs for different
// ones.
func TestHashesTellEqualFromDifferent(t *testing.T) {
	c := mustCompile(t, Options{})
	nan := math.NaN()
	m1 := map[string]int{}
	m2 := map[string]int{}
	for i := range 100 {
		m1[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
		m2[string(rune('a'+(99-i)%26))+string(rune('a'+(99-i)/26))] = 99 - i
	}
	equal := [][2]any{
		{"ann@example.org", "ann@example.org"},
		{contact{Name: "A", Phone: phone("1")}, contact{Name: "A", Phone: phone("1")}},
		{t0, t0.In(paris)},
		{nan, math.NaN()},
		{0.0, math.Copysign(0, -1)},
		{m1, m2},
		{[]byte("abc"), []byte("abc")},
	}
	for _, p := range equal {
		if x, y := c.token(reflect.ValueOf(p[0])), c.token(reflect.ValueOf(p[1])); x != y || !tokenRE.MatchString(x) {
			t.Errorf("%#v, %#v: hashes %s, %s; want one hash", p[0], p[1], x, y)
		}
	}
	m2["zz"] = 1
	different := [][2]any{
		{"ann@example.org", "ann@example.com"},
		{"", " "},
		{contact{Name: "A", Phone: phone("1")}, contact{Name: "A", Phone: phone("2")}},
		{contact{Name: "A"}, contact{Name: "A", Phone: phone("")}},
		{t0, t0.Add(time.Nanosecond)},
		{m1, m2},
		{[]string{"ab", "c"}, []string{"a", "bc"}},
		{1, 2},
		{true, false},
	}
	for _, p := range different {
		if x, y := c.token(reflect.ValueOf(p[0])), c.token(reflect.ValueOf(p[1])); x == y {
			t.Errorf("%#v, %#v: both hash to %s", p[0], p[1], x)
		}
	}
	// The process's key is one for every Comparer; a key of one's own
	// gives other hashes, the same in every Comparer that has it.
	key := []byte("0123456789abcdef")
	other := mustCompile(t, Options{})
	keyed := mustCompile(t, Options{HashKey: key})
	keyedToo := mustCompile(t, Options{HashKey: []byte("0123456789abcdef")})
	v := reflect.ValueOf("ann@example.org")
	if c.token(v) != other.token(v) || keyed.token(v) != keyedToo.token(v) || keyed.token(v) == c.token(v) {
		t.Errorf("hashes: process %s, %s; keyed %s, %s", c.token(v), other.token(v), keyed.token(v), keyedToo.token(v))
	}
	key[0] = 'X' // Compile copied the key
	if keyed.token(v) != keyedToo.token(v) {
		t.Error("changing the key after Compile changed the hashes")
	}
}

// TestHideValues: a report that shows no values gives paths and kinds of
// difference only, with map keys as hashes.
func TestHideValues(t *testing.T) {
	c := mustCompile(t, Options{HideValues: true})
	a, b := newAccount(), newAccount()
	b.Owner.Name = "Ana"
	b.Friends = b.Friends[:1]
	b.Notes["pin"] = "9999"
	b.Notes["new"] = "x"
	b.ByEmail["eve@example.org"] = contact{}
	b.Extra = 3
	a.Extra = "three"
	got := redactedReport(c, a, b)
	want := strings.Join([]string{
		".Owner.Name: values differ",
		".Friends[1]: missing in new",
		".ByEmail[" + tok + "]: missing in old",
		".Notes[" + tok + "]: missing in old",
		".Notes[" + tok + "]: values differ",
		".Extra: types differ: string != int",
	}, "\n")
	// The order of hashed keys is the order of the keys, not of their
	// hashes: compare as sets of lines.
	if !sameLines(got, want) {
		t.Errorf("Diff:\n got: %s\nwant: %s", got, want)
	}
	if strings.ContainsAny(got, `"`) {
		t.Errorf("the report shows a value:\n%s", got)
	}
	assertNoSecrets(t, got)
	for _, tc := range []struct {
		a, b any
		want string
	}{
		{(*account)(nil), a, ": <nil> != non-nil"},
		{a, nil, ": non-nil != <nil>"},
		{[]int{}, []int(nil), ": empty != nil"},
		{"x", "y", ": values differ"},
	} {
		checkCase(t, c, diffCase{a: tc.a, b: tc.b, want: tc.want})
	}
}

func sameLines(a, b string) bool {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(x) != len(y) {
		return false
	}
	count := map[string]int{}
	for i := range x {
		count[x[i]]++
		count[y[i]]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestLimitPathIsRedacted: where a walk stopped, shown in the report and
// the error, hides sensitive keys as the rest of the report does.
func TestLimitPathIsRedacted(t *testing.T) {
	c := mustCompile(t, Options{Sensitive: []string{"ByEmail"}, MaxDepth: 3})
	a := account{ByEmail: map[string]contact{"ann@example.org": {Phone: phone("+1 555 0100")}}}
	b := account{ByEmail: map[string]contact{"ann@example.org": {Phone: phone("+1 555 0100")}}}
	report, err := c.Compare(a, b)
	want := "comparison stopped: depth limit 3 exceeded at .ByEmail[" + tok + "].Name"
	if got := tokenRE.ReplaceAllString(report, tok); got != want || err == nil || tokenRE.ReplaceAllString(err.Error(), tok) != want {
		t.Errorf("Compare = %q, %v; want %q", report, err, want)
	}
	assertNoSecrets(t, report)
}

func TestSensitiveOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Sensitive: []string{"Email", "A..B"}}, `diff: sensitive path "A..B": segment 2 is empty`},
		{Options{Sensitive: []string{"Tags[0]"}}, `diff: sensitive path "Tags[0]": segment "Tags[0]" uses brackets`},
		{Options{HashKey: []byte{}}, "diff: HashKey is 0 bytes; want nil (a random key for the process) or at least 16"},
		{Options{HashKey: []byte("short")}, "diff: HashKey is 5 bytes"},
	} {
		_, err := Compile(tc.o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Compile(%+v) error = %v; want %q", tc.o, err, tc.want)
		}
		var pe *PathError
		if errors.As(err, &pe) && pe.Option != "Sensitive" {
			t.Errorf("PathError.Option = %q", pe.Option)
		}
	}
}
