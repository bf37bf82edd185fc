package diff

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIgnore(t *testing.T) {
	base := func() *User {
		return &User{
			ID: 1, Name: "Ann", Email: "a@x.org",
			Tags:    []string{"a", "b"},
			Meta:    map[string]int{"etag": 1, "n": 2},
			Address: &Address{Street: "Main", Zip: "1000"},
			Items: []Item{
				{SKU: "A", Qty: 1, UpdatedAt: t0},
				{SKU: "B", Qty: 2, UpdatedAt: t0},
			},
			CreatedAt: t0,
		}
	}
	edit := func(f func(*User)) *User {
		u := base()
		f(u)
		return u
	}
	later := t0.Add(time.Hour)
	cases := []diffCase{
		{name: "top field", ignore: []string{"Email"},
			a: base(), b: edit(func(u *User) { u.Email = "b@x.org" })},
		{name: "top field, others still compared", ignore: []string{"Email"},
			a: base(), b: edit(func(u *User) { u.Email = "b@x.org"; u.Name = "Bob" }),
			want: `.Name: "Ann" != "Bob"`},
		{name: "through a pointer", ignore: []string{"Address.Zip"},
			a: base(), b: edit(func(u *User) { u.Address.Zip = "2000" })},
		{name: "nested path does not hide the parent pointer", ignore: []string{"Address.Zip"},
			a: base(), b: edit(func(u *User) { u.Address = nil }),
			want: `.Address: &Address{Street:"Main", Zip:"1000"} != <nil>`},
		{name: "wildcard element field", ignore: []string{"Items.*.UpdatedAt"},
			a: base(), b: edit(func(u *User) { u.Items[0].UpdatedAt = later; u.Items[1].UpdatedAt = later })},
		{name: "wildcard element field, other fields compared", ignore: []string{"Items.*.UpdatedAt"},
			a: base(), b: edit(func(u *User) { u.Items[1].UpdatedAt = later; u.Items[1].Qty = 3 }),
			want: ".Items[1].Qty: 2 != 3"},
		{name: "wildcard element field, missing element still reported", ignore: []string{"Items.*.UpdatedAt"},
			a: base(), b: edit(func(u *User) { u.Items = u.Items[:1] }),
			want: `.Items[1]: missing in new (old: Item{SKU:"B", Qty:2, UpdatedAt:2024-05-06 07:08:09 +0000 UTC})`},
		{name: "one index", ignore: []string{"Items.1.Qty"},
			a: base(), b: edit(func(u *User) { u.Items[1].Qty = 9 })},
		{name: "one index, not another", ignore: []string{"Items.1.Qty"},
			a: base(), b: edit(func(u *User) { u.Items[0].Qty = 9 }),
			want: ".Items[0].Qty: 1 != 9"},
		{name: "extra elements ignored by wildcard", ignore: []string{"Tags.*"},
			a: base(), b: edit(func(u *User) { u.Tags = []string{"x", "y", "z"} })},
		{name: "extra element ignored by index", ignore: []string{"Tags.2"},
			a: base(), b: edit(func(u *User) { u.Tags = append(u.Tags, "c") })},
		{name: "nil vs elements all ignored", ignore: []string{"Tags.*"},
			a: base(), b: edit(func(u *User) { u.Tags = nil }),
			want: ".Tags: non-nil (every element ignored) != nil"},
		{name: "map key", ignore: []string{"Meta.etag"},
			a: base(), b: edit(func(u *User) { u.Meta["etag"] = 7 })},
		{name: "map key missing on one side", ignore: []string{"Meta.etag"},
			a: base(), b: edit(func(u *User) { delete(u.Meta, "etag") })},
		{name: "map key, others compared", ignore: []string{"Meta.etag"},
			a: base(), b: edit(func(u *User) { delete(u.Meta, "etag"); u.Meta["n"] = 3 }),
			want: `.Meta["n"]: 2 != 3`},
		{name: "map wildcard", ignore: []string{"Meta.*"},
			a: base(), b: edit(func(u *User) { u.Meta = map[string]int{"other": 1} })},
		{name: "map wildcard keeps nil vs empty", ignore: []string{"Meta.*"},
			a: base(), b: edit(func(u *User) { u.Meta = nil }),
			want: ".Meta: non-nil (every element ignored) != nil"},
		{name: "int map key", ignore: []string{"7"},
			a: map[int]string{7: "a", 8: "b"}, b: map[int]string{7: "x", 8: "b"}},
		{name: "root wildcard matches fields", ignore: []string{"*.Zip"},
			a: base(), b: edit(func(u *User) { u.Address.Zip = "2000" })},
		{name: "wildcard at the root of a slice", ignore: []string{"*.Qty"},
			a: []Item{{Qty: 1}, {Qty: 2}}, b: []Item{{Qty: 3}, {Qty: 4}}},
		{name: "rule through an interface", ignore: []string{"Extra.Zip"},
			a: edit(func(u *User) { u.Extra = Address{Zip: "1"} }), b: edit(func(u *User) { u.Extra = Address{Zip: "2"} })},
		{name: "overlapping rules", ignore: []string{"Items.*.Qty", "Items.0.SKU", "Items.0"},
			a: base(), b: edit(func(u *User) { u.Items[0] = Item{}; u.Items[1].Qty = 0; u.Items[1].SKU = "C" }),
			want: `.Items[1].SKU: "B" != "C"`},
		{name: "rules do not reach inside Equal types", ignore: []string{"CreatedAt.wall", "CreatedAt.ext"},
			a: base(), b: edit(func(u *User) { u.CreatedAt = later }),
			want: ".CreatedAt: 2024-05-06 07:08:09 +0000 UTC != 2024-05-06 08:08:09 +0000 UTC"},
		{name: "unknown names match nothing", ignore: []string{"Nope", "Address.Nope"},
			a: base(), b: edit(func(u *User) { u.Address.Zip = "2" }),
			want: `.Address.Zip: "1000" != "2"`},
		{name: "field names are case sensitive", ignore: []string{"email"},
			a: base(), b: edit(func(u *User) { u.Email = "b@x.org" }),
			want: `.Email: "a@x.org" != "b@x.org"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, mustCompile(t, Options{Ignore: tc.ignore}), tc)
		})
	}
}

func TestIgnoreWithCycles(t *testing.T) {
	// The same pair of nodes is met under different rules: the rule for
	// "Next.V" must not hide the difference at ".V", nor at ".Next.Next.V",
	// where no rule applies any more. The walk ends once the pair comes
	// back under a rule state it has seen.
	a := &Node{V: 1}
	a.Next = a
	b := &Node{V: 2}
	b.Next = b
	c := mustCompile(t, Options{Ignore: []string{"Next.V"}})
	checkCase(t, c, diffCase{a: a, b: b, want: ".V: 1 != 2\n.Next.Next.V: 1 != 2"})
	c = mustCompile(t, Options{Ignore: []string{"V"}})
	checkCase(t, c, diffCase{a: a, b: b, want: ".Next.V: 1 != 2"})
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Ignore: []string{""}}, `diff: ignore path "": path is empty`},
		{Options{Ignore: []string{"A..B"}}, `diff: ignore path "A..B": segment 2 is empty`},
		{Options{Ignore: []string{".Email"}}, `diff: ignore path ".Email": starts with '.'`},
		{Options{Ignore: []string{"Email."}}, `diff: ignore path "Email.": ends with '.'`},
		{Options{Ignore: []string{"Name", "Tags[*]"}}, `diff: ignore path "Tags[*]": segment "Tags[*]" uses brackets`},
		{Options{Ignore: []string{`Meta["k"]`}}, `diff: ignore path "Meta[\"k\"]": segment "Meta[\"k\"]" uses brackets`},
		{Options{MaxDiffs: -1}, "diff: MaxDiffs is -1"},
		{Options{MaxBytes: -5}, "diff: MaxBytes is -5"},
		{Options{MaxDepth: -1}, "diff: MaxDepth is -1; want 0 (default 1000) or more"},
		{Options{MaxWork: -1}, "diff: MaxWork is -1; want 0 (default 100000) or more"},
	}
	for _, tc := range cases {
		c, err := Compile(tc.o)
		if err == nil || c != nil {
			t.Errorf("Compile(%+v) = %v, %v; want an error", tc.o, c, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) error = %q; want it to start with %q", tc.o, err, tc.want)
		}
		if !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("error %q does not match ErrInvalidOptions", err)
		}
		var pe *PathError
		if errors.As(err, &pe) != (len(tc.o.Ignore) > 0) {
			t.Errorf("error %q: PathError is %v", err, pe)
		}
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, o := range []Options{
		{},
		{Ignore: []string{"a", "a", "*", "*.*.*", "a b.c-d", "Meta.x[1"}},
		{MaxDiffs: 1, MaxBytes: 1},
		{MaxDepth: 1, MaxWork: 1},
	} {
		if _, err := Compile(o); err != nil {
			t.Errorf("Compile(%+v): %v", o, err)
		}
	}
}

func TestIgnoreEverything(t *testing.T) {
	c := mustCompile(t, Options{Ignore: []string{"*"}})
	checkCase(t, c, diffCase{a: User{ID: 1, Tags: []string{"a"}}, b: User{ID: 2, Tags: nil}})
	// The root itself cannot be ignored.
	checkCase(t, c, diffCase{a: 1, b: 2, want: ": 1 != 2"})
	checkCase(t, c, diffCase{a: []int{}, b: []int(nil), want: ": empty != nil"})
}
