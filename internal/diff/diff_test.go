package diff

import (
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var (
	t0    = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	paris = time.FixedZone("CET", 3600)
)

func mustCompile(t testing.TB, o Options) *Comparer {
	t.Helper()
	c, err := Compile(o)
	if err != nil {
		t.Fatalf("Compile(%+v): %v", o, err)
	}
	return c
}

type diffCase struct {
	name   string
	ignore []string
	a, b   any
	want   string // "" when equal
}

// checkCase runs one case and checks that Equal agrees with Diff.
func checkCase(t *testing.T, c *Comparer, tc diffCase) {
	t.Helper()
	got := c.Diff(tc.a, tc.b)
	if got != tc.want {
		t.Errorf("Diff:\n got: %s\nwant: %s", got, tc.want)
	}
	if eq := c.Equal(tc.a, tc.b); eq != (got == "") {
		t.Errorf("Equal = %v, but Diff = %q", eq, got)
	}
	if eq, back := c.Equal(tc.a, tc.b), c.Equal(tc.b, tc.a); eq != back {
		t.Errorf("Equal(a, b) = %v, Equal(b, a) = %v", eq, back)
	}
	if again := c.Diff(tc.a, tc.b); again != got {
		t.Errorf("Diff is not deterministic:\n%s\n%s", got, again)
	}
}

func TestDiff(t *testing.T) {
	user := func(edit func(*User)) *User {
		u := &User{
			ID: 7, Name: "Ann", Email: "a@x.org",
			Tags:      []string{"admin", "beta"},
			Meta:      map[string]int{"logins": 3},
			Address:   &Address{Street: "Main 1", Zip: "1000"},
			Items:     []Item{{SKU: "A", Qty: 1, UpdatedAt: t0}, {SKU: "B", Qty: 2, UpdatedAt: t0}},
			CreatedAt: t0,
			Score:     1.5,
		}
		if edit != nil {
			edit(u)
		}
		return u
	}
	nan := math.NaN()
	var nilUser *User
	ch1, ch2 := make(chan int), make(chan int)
	x, y := 1, 2
	now := time.Now()

	cases := []diffCase{
		// Basic kinds and structs.
		{name: "equal structs", a: user(nil), b: user(nil)},
		{name: "nil interfaces", a: nil, b: nil},
		{name: "ints", a: 1, b: 2, want: ": 1 != 2"},
		{name: "uints", a: uint8(1), b: uint8(2), want: ": 1 != 2"},
		{name: "bools", a: true, b: false, want: ": true != false"},
		{name: "strings quoted", a: "a\"b", b: "a\nb", want: `: "a\"b" != "a\nb"`},
		{name: "floats", a: 0.1, b: 0.2, want: ": 0.1 != 0.2"},
		{name: "float32", a: float32(0.1), b: float32(0.2), want: ": 0.1 != 0.2"},
		{name: "complex", a: 1 + 2i, b: 1 + 3i, want: ": (1+2i) != (1+3i)"},
		{name: "zero signs equal", a: 0.0, b: math.Copysign(0, -1)},
		{name: "field", a: user(nil), b: user(func(u *User) { u.Email = "b@x.org" }),
			want: `.Email: "a@x.org" != "b@x.org"`},
		{name: "two fields in order", a: user(nil), b: user(func(u *User) { u.Score = 2; u.ID = 8 }),
			want: ".ID: 7 != 8\n.Score: 1.5 != 2"},
		{name: "nested pointer field", a: user(nil), b: user(func(u *User) { u.Address.Zip = "2000" }),
			want: `.Address.Zip: "1000" != "2000"`},
		{name: "nested slice of structs", a: user(nil), b: user(func(u *User) { u.Items[1].Qty = 5 }),
			want: ".Items[1].Qty: 2 != 5"},
		{name: "struct values, not pointers", a: Address{"a", "1"}, b: Address{"a", "2"},
			want: `.Zip: "1" != "2"`},
		{name: "unexported fields", a: secret{name: "a", n: 1}, b: secret{name: "b", n: 1},
			want: `.name: "a" != "b"`},
		{name: "unexported pointer printed", a: secret{}, b: secret{addr: &Address{Zip: "9"}},
			want: `.addr: <nil> != &Address{Street:"", Zip:"9"}`},
		{name: "arrays", a: [3]int{1, 2, 3}, b: [3]int{1, 0, 3}, want: "[1]: 2 != 0"},

		// Pointers and interfaces.
		{name: "nil vs pointer at root", a: nil, b: &Address{Zip: "1"},
			want: `: <nil> != &Address{Street:"", Zip:"1"}`},
		{name: "typed nil vs nil interface", a: nilUser, b: nil, want: ": <nil> (*User) != <nil>"},
		{name: "typed nils equal", a: nilUser, b: (*User)(nil)},
		{name: "nil pointer field", a: user(nil), b: user(func(u *User) { u.Address = nil }),
			want: `.Address: &Address{Street:"Main 1", Zip:"1000"} != <nil>`},
		{name: "pointers to equal ints", a: &x, b: func() *int { v := 1; return &v }()},
		{name: "pointers to ints", a: &x, b: &y, want: ": 1 != 2"},
		{name: "different root types", a: 1, b: int64(1), want: ": 1 (int) != 1 (int64)"},
		{name: "different dynamic types", a: user(func(u *User) { u.Extra = 1 }), b: user(func(u *User) { u.Extra = "1" }),
			want: `.Extra: 1 (int) != "1" (string)`},
		{name: "nil vs set interface field", a: user(nil), b: user(func(u *User) { u.Extra = 1.5 }),
			want: ".Extra: <nil> != 1.5"},
		{name: "nil interface vs typed nil in field", a: user(nil), b: user(func(u *User) { u.Extra = nilUser }),
			want: ".Extra: <nil> != <nil> (*User)"},
		{name: "types with the same short name", a: time.Duration(1), b: Duration(1),
			want: ": 1ns (time.Duration) != 1 (diff.Duration)"},

		// Slices.
		{name: "element", a: []string{"a", "b"}, b: []string{"a", "c"}, want: `[1]: "b" != "c"`},
		{name: "missing in new", a: user(nil), b: user(func(u *User) { u.Tags = u.Tags[:1] }),
			want: `.Tags[1]: missing in new (old: "beta")`},
		{name: "missing in old", a: []int{1}, b: []int{1, 2, 3},
			want: "[1]: missing in old (new: 2)\n[2]: missing in old (new: 3)"},
		{name: "nil vs empty slice", a: user(nil), b: user(func(u *User) { u.Tags = nil }),
			want: `.Tags[0]: missing in new (old: "admin")` + "\n" + `.Tags[1]: missing in new (old: "beta")`},
		{name: "empty vs nil slice", a: []int{}, b: []int(nil), want: ": empty != nil"},
		{name: "nil vs empty slice field", a: User{Tags: nil}, b: User{Tags: []string{}}, want: ".Tags: nil != empty"},
		{name: "nil slices equal", a: []int(nil), b: []int(nil)},
		{name: "same backing array", a: user(nil).Tags, b: user(nil).Tags},
		{name: "slice of structs missing element", a: []Item{{SKU: "A"}}, b: []Item{},
			want: `[0]: missing in new (old: Item{SKU:"A", Qty:0, UpdatedAt:0001-01-01 00:00:00 +0000 UTC})`},

		// Maps.
		{name: "map value", a: map[string]int{"k": 1}, b: map[string]int{"k": 2}, want: `["k"]: 1 != 2`},
		{name: "map field value", a: user(nil), b: user(func(u *User) { u.Meta["logins"] = 4 }),
			want: `.Meta["logins"]: 3 != 4`},
		{name: "map keys both sides, sorted", a: map[string]int{"b": 1, "a": 1, "c": 3}, b: map[string]int{"d": 4, "a": 1, "c": 3},
			want: `["b"]: missing in new (old: 1)` + "\n" + `["d"]: missing in old (new: 4)`},
		{name: "int keys sorted numerically", a: map[int]string{10: "x", 9: "x", 100: "x"}, b: map[int]string{},
			want: `[9]: missing in new (old: "x")` + "\n" + `[10]: missing in new (old: "x")` + "\n" + `[100]: missing in new (old: "x")`},
		{name: "struct keys", a: map[Address]bool{{"a", "1"}: true}, b: map[Address]bool{{"a", "1"}: false},
			want: `[Address{Street:"a", Zip:"1"}]: true != false`},
		{name: "nil vs empty map", a: map[string]int(nil), b: map[string]int{}, want: ": nil != empty"},
		{name: "nil vs full map", a: map[string]int(nil), b: map[string]int{"a": 1},
			want: `["a"]: missing in old (new: 1)`},
		{name: "nested maps", a: map[string]map[string]int{"x": {"y": 1}}, b: map[string]map[string]int{"x": {"y": 2}},
			want: `["x"]["y"]: 1 != 2`},
		{name: "map printed sorted", a: user(nil), b: user(func(u *User) { u.Extra = map[string]int{"b": 2, "a": 1} }),
			want: `.Extra: <nil> != map[string]int{"a":1, "b":2}`},

		// Equal methods.
		{name: "time in another location", a: t0, b: t0.In(paris)},
		{name: "time field in another location", a: user(nil), b: user(func(u *User) { u.CreatedAt = t0.In(paris) })},
		{name: "time with and without monotonic reading", a: now, b: now.Round(0)},
		{name: "different times", a: user(nil), b: user(func(u *User) { u.CreatedAt = t0.Add(time.Second) }),
			want: ".CreatedAt: 2024-05-06 07:08:09 +0000 UTC != 2024-05-06 07:08:10 +0000 UTC"},
		{name: "times in a slice", a: []time.Time{t0}, b: []time.Time{t0.In(paris)}},
		{name: "pointers to times", a: &t0, b: func() *time.Time { v := t0.In(paris); return &v }()},
		{name: "custom Equal", a: Money{100, "EUR"}, b: Money{100, "eur"}},
		{name: "custom Equal differs", a: Money{100, "EUR"}, b: Money{101, "EUR"},
			want: `: Money{Cents:100, Currency:"EUR"} != Money{Cents:101, Currency:"EUR"}`},
		{name: "Equal on pointer", a: &PtrEq{N: 1, Ignored: 1}, b: &PtrEq{N: 1, Ignored: 2}},
		{name: "Equal on nil pointer", a: (*PtrEq)(nil), b: &PtrEq{}, want: ": <nil> != &PtrEq{N:0, Ignored:0}"},
		{name: "Equal of the wrong shape is not used", a: NotEqual{1}, b: NotEqual{2}, want: ".N: 1 != 2"},
		{name: "panicking Equal falls back to fields", a: Grumpy{1}, b: Grumpy{2}, want: ".N: 1 != 2"},
		{name: "panicking Equal, equal fields", a: Grumpy{1}, b: Grumpy{1}},
		{name: "net.IP Equal", a: net.ParseIP("10.0.0.1").To4(), b: net.ParseIP("10.0.0.1")},
		{name: "unexported time compared by fields", a: secret{at: t0}, b: secret{at: t0.In(paris)},
			want: ".at.loc: <nil> != &Location{name:\"CET\", zone:[]zone{zone{name:\"CET\", offset:3600, ..."},

		// NaN.
		{name: "NaN equals NaN", a: nan, b: nan},
		{name: "NaN field", a: user(func(u *User) { u.Score = nan }), b: user(func(u *User) { u.Score = nan })},
		{name: "NaN in complex", a: complex(nan, 1), b: complex(nan, 1)},
		{name: "NaN vs number", a: nan, b: 1.0, want: ": NaN != 1"},
		{name: "NaN in a slice", a: []float64{1, nan}, b: []float64{1, nan}},
		{name: "infinities", a: math.Inf(1), b: math.Inf(-1), want: ": +Inf != -Inf"},

		// Funcs, channels, unsafe pointers.
		{name: "nil funcs", a: (func())(nil), b: (func())(nil)},
		{name: "non-nil funcs", a: func() {}, b: func() {}, want: ": non-nil funcs are never equal"},
		{name: "nil vs func", a: (func(int) error)(nil), b: func(int) error { return nil },
			want: ": <nil> != <func(int) error>"},
		{name: "same channel", a: ch1, b: ch1},
		{name: "different channels", a: ch1, b: ch2, want: ": different channels"},
		{name: "nil channel", a: (chan int)(nil), b: ch1, want: ": <nil> != <chan int>"},
		{name: "same unsafe pointer", a: unsafe.Pointer(&x), b: unsafe.Pointer(&x)},

		// Stringers and errors in reports.
		{name: "Stringer", a: Level(0), b: Level(1), want: ": low != high"},
		{name: "panicking Stringer", a: Level(0), b: Level(5), want: ": low != 5"},
		{name: "panicking Stringer struct", a: BadString{1}, b: BadString{2}, want: ".N: 1 != 2"},
		{name: "errors compared by fields", a: []error{errBoom}, b: []error{errors.New("bang")}, want: `[0].s: "boom" != "bang"`},
		{name: "error printed with Error", a: errBoom, b: nil, want: ": boom != <nil>"},

		// Long values.
		{name: "long strings", a: strings.Repeat("ab", 100), b: strings.Repeat("ab", 50) + "X" + strings.Repeat("ab", 50)[1:],
			want: `: differ at byte 100: ..."abababababababababababababababababababab"... != ..."ababababababababXbababababababababababab"...`},
		{name: "long string vs short", a: strings.Repeat("x", 100), b: "",
			want: `: differ at byte 0: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"... != ""`},
		{name: "long value cut at 64 runes", a: []string{strings.Repeat("é", 100)}, b: []string(nil),
			want: `[0]: missing in new (old: "` + strings.Repeat("é", 63) + `...)`},
	}
	c := mustCompile(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, c, tc)
		})
	}
}

type Duration int64
