package diff

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
	"unsafe"
)

func TestMaxDiffs(t *testing.T) {
	a := make([]int, 25)
	b := make([]int, 25)
	for i := range b {
		b[i] = i + 1
	}
	lines := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("[%d]: 0 != %d", i, i+1))
		}
		return strings.Join(s, "\n")
	}
	cases := []struct {
		o    Options
		a, b any
		want string
	}{
		{Options{}, a, b, lines(10) + "\n... and 15 more differences"},
		{Options{MaxDiffs: 3}, a, b, lines(3) + "\n... and 22 more differences"},
		{Options{MaxDiffs: 24}, a, b, lines(24) + "\n... and 1 more difference"},
		{Options{MaxDiffs: 25}, a, b, lines(25)},
		{Options{MaxDiffs: 100}, a, b, lines(25)},
		// Missing elements are counted one by one, also past the cap.
		{Options{MaxDiffs: 2}, []int{}, make([]int, 1000),
			"[0]: missing in old (new: 0)\n[1]: missing in old (new: 0)\n... and 998 more differences"},
		{Options{MaxDiffs: 1, Ignore: []string{"5"}}, make([]int, 10), []int{},
			"[0]: missing in new (old: 0)\n... and 8 more differences"},
		{Options{MaxDiffs: 1}, map[int]int{1: 1, 2: 2, 3: 3}, map[int]int{},
			"[1]: missing in new (old: 1)\n... and 2 more differences"},
	}
	for _, tc := range cases {
		c := mustCompile(t, tc.o)
		checkCase(t, c, diffCase{a: tc.a, b: tc.b, want: tc.want})
	}
}

func TestMaxBytes(t *testing.T) {
	a := []string{"é", "éé", "ééé"}
	b := []string{"x", "xx", "xxx"}
	full := `[0]: "é" != "x"` + "\n" + `[1]: "éé" != "xx"` + "\n" + `[2]: "ééé" != "xxx"`
	for n := 1; n <= len(full)+1; n++ {
		c := mustCompile(t, Options{MaxBytes: n})
		got := c.Diff(a, b)
		if len(full) <= n {
			if got != full {
				t.Errorf("MaxBytes %d: got %q; want %q", n, got, full)
			}
			continue
		}
		if len(got) > n+len("...") || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
			t.Errorf("MaxBytes %d: got %q (%d bytes)", n, got, len(got))
		}
		if !strings.HasPrefix(full, strings.TrimSuffix(got, "...")) {
			t.Errorf("MaxBytes %d: %q is not a prefix of the full report", n, got)
		}
		if len(got) < n-utf8.UTFMax+len("...") {
			t.Errorf("MaxBytes %d: %q is cut too short", n, got)
		}
	}
}

func TestMaxBytesDefault(t *testing.T) {
	big := strings.Repeat("x", 10000)
	var a, b []string
	for i := range 100 {
		a = append(a, big+fmt.Sprint(i))
		b = append(b, big)
	}
	got := mustCompile(t, Options{MaxDiffs: 1000}).Diff(a, b)
	if len(got) != DefaultMaxBytes+len("...") || !strings.HasSuffix(got, "...") {
		t.Errorf("report is %d bytes; want %d ending in ...", len(got), DefaultMaxBytes+3)
	}
	// Each value is cut to a few dozen runes, so ten lines fit easily.
	got = mustCompile(t, Options{}).Diff(a, b)
	if n := strings.Count(got, "\n") + 1; n != 11 || len(got) > DefaultMaxBytes {
		t.Errorf("got %d lines, %d bytes:\n%s", n, len(got), got)
	}
}

func TestNilComparer(t *testing.T) {
	var c *Comparer
	if !c.Equal(1, 1) || c.Equal(1, 2) || c.Diff(1, 2) != ": 1 != 2" {
		t.Error("a nil Comparer does not behave like the default one")
	}
}

func TestCycles(t *testing.T) {
	ring := func(vals ...int) *Node {
		head := &Node{V: vals[0]}
		n := head
		for _, v := range vals[1:] {
			n.Next = &Node{V: v}
			n = n.Next
		}
		n.Next = head
		return head
	}
	tree := func(name string) *Tree {
		t := &Tree{Name: "root", Children: map[string]*Tree{}}
		t.Children["self"] = t
		t.Children["kid"] = &Tree{Name: name, Children: map[string]*Tree{"up": t}}
		return t
	}
	list := func() List {
		l := List{nil, nil}
		l[0] = l
		return l
	}
	anyLoop := func(v int) any {
		m := map[string]any{"v": v}
		m["m"] = m
		return m
	}
	cases := []diffCase{
		{name: "equal rings", a: ring(1, 2, 3), b: ring(1, 2, 3)},
		{name: "rings differ", a: ring(1, 2, 3), b: ring(1, 5, 3), want: ".Next.V: 2 != 5"},
		{name: "rings of different lengths", a: ring(1, 1), b: ring(1, 1, 1)},
		{name: "self loop", a: ring(1), b: ring(2), want: ".V: 1 != 2"},
		{name: "long equal rings", a: ring(seq(40)...), b: ring(seq(40)...)},
		{name: "long rings differ at the end", a: ring(seq(40)...), b: ring(append(seq(39), 0)...),
			want: "." + strings.Repeat("Next.", 39) + "V: 40 != 0"},
		{name: "map cycles", a: tree("a"), b: tree("a")},
		{name: "map cycles differ", a: tree("a"), b: tree("b"), want: `.Children["kid"].Name: "a" != "b"`},
		{name: "slice cycle", a: list(), b: list()},
		{name: "slice cycle vs nil", a: list(), b: List{nil, nil},
			want: "[0][0]: missing in new (old: List{List{List{List{List{List{List{List{List{..., <nil>}, <nil>}...)\n" +
				"[0][1]: missing in new (old: <nil>)"},
		{name: "interface map cycle", a: anyLoop(1), b: anyLoop(1)},
		{name: "interface map cycle differs", a: anyLoop(1), b: anyLoop(2), want: `["v"]: 1 != 2`},
		{name: "cycle missing in new", a: map[string]any{"x": anyLoop(1)}, b: map[string]any{},
			want: `["x"]: missing in new (old: map[string]interface {}{"m":map[string]interface {}{"m":map[stri...)`},
	}
	c := mustCompile(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkCase(t, c, tc) })
	}
}

func TestNeverPanics(t *testing.T) {
	type weird struct {
		f  func()
		ch chan int
		up unsafe.Pointer
		i  any
		e  error
		m  map[any]any
		a  [0]int
		s  struct{}
		c  complex64
	}
	x := 1
	nan := math.NaN()
	values := []any{
		nil, 0, "", (*int)(nil), &x, []int(nil), []int{}, map[int]int(nil), map[int]int{},
		weird{}, weird{f: func() {}, ch: make(chan int), up: unsafe.Pointer(&x), i: &x, e: errBoom,
			m: map[any]any{nil: 1, 1: nil, "a": []int{1}, nan: nan, [2]int{}: struct{}{}}},
		&weird{i: weird{}}, BadString{1}, Level(7), Grumpy{1}, []Grumpy{{1}},
		map[float64]int{nan: 1, 1: 2}, []any{nan, nil, Level(1)}, reflect.ValueOf(1),
		struct{ _ int }{}, [3]*int{}, []byte("\xff\xfe"), "\xff\xfe", map[*int]int{&x: 1, nil: 2},
		map[bool]int{true: 1, false: 0}, map[complex128]int{1i: 1, 2: 2}, map[any]int{nil: 1, 1: 1, "1": 1},
	}
	for _, o := range []Options{{}, {MaxBytes: 1, MaxDiffs: 1}, {Ignore: []string{"*", "*.*", "i.f"}}} {
		c := mustCompile(t, o)
		for i, a := range values {
			for j, b := range values {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("values %d, %d: panic %v", i, j, r)
						}
					}()
					d := c.Diff(a, b)
					if eq := c.Equal(a, b); eq != (d == "") {
						t.Errorf("values %d, %d: Equal %v, Diff %q", i, j, eq, d)
					}
					if strings.Contains(d, "comparison failed") {
						t.Errorf("values %d, %d: %s", i, j, d)
					}
					if !utf8.ValidString(d) {
						t.Errorf("values %d, %d: invalid UTF-8 in %q", i, j, d)
					}
				}()
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := map[string]int{}
	b := map[string]int{}
	for i := range 500 {
		a[fmt.Sprint("k", i)] = i
		b[fmt.Sprint("k", i)] = i + i%3
	}
	b["new"] = 1
	nested := map[any]any{"a": a, 1: 2.5, 2.5: "x", true: nil}
	c := mustCompile(t, Options{MaxDiffs: 50, MaxBytes: 1 << 20})
	first := c.Diff(a, b)
	firstNested := c.Diff(nested, map[any]any{})
	for range 20 {
		if got := c.Diff(a, b); got != first {
			t.Fatalf("reports differ:\n%s\n---\n%s", first, got)
		}
		if got := c.Diff(nested, map[any]any{}); got != firstNested {
			t.Fatalf("reports differ:\n%s\n---\n%s", firstNested, got)
		}
	}
	if !strings.HasPrefix(first, `["k1"]: 1 != 2`+"\n"+`["k10"]: 10 != 11`+"\n") {
		t.Errorf("keys are not sorted:\n%s", first)
	}
	if !strings.HasPrefix(firstNested, `[true]: missing in new (old: <nil>)`+"\n"+`[2.5]: missing in new (old: "x")`+"\n"+`[1]: missing in new (old: 2.5)`+"\n") {
		t.Errorf("keys of mixed types are not sorted by type name:\n%s", firstNested)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustCompile(t, Options{Ignore: []string{"Items.*.UpdatedAt", "Meta.etag"}, MaxDiffs: 3})
	a := &User{ID: 1, Tags: []string{"a"}, Meta: map[string]int{"etag": 1, "x": 1}, Items: []Item{{SKU: "a"}}}
	b := &User{ID: 2, Tags: []string{"b"}, Meta: map[string]int{"etag": 2, "x": 2}, Items: []Item{{SKU: "a", UpdatedAt: t0}}}
	want := c.Diff(a, b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := c.Diff(a, b); got != want {
					t.Errorf("got %q; want %q", got, want)
					return
				}
				if c.Equal(a, b) || !c.Equal(a, a) {
					t.Error("Equal is wrong")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestTypeName(t *testing.T) {
	type local struct{}
	cases := []struct {
		v    any
		want string
	}{
		{1, "int"},
		{User{}, "User"},
		{&User{}, "*User"},
		{map[string]*Address{}, "map[string]*Address"},
		{[]map[Address][]*User{}, "[]map[Address][]*User"},
		{func(...int) error { return nil }, "func(...int) error"},
		{local{}, "local"},
		{struct{ A Address }{}, "struct { A Address }"},
		{Box[Address]{}, "Box[Address]"},
	}
	for _, tc := range cases {
		if got := typeName(reflect.TypeOf(tc.v)); got != tc.want {
			t.Errorf("typeName(%T) = %q; want %q", tc.v, got, tc.want)
		}
	}
}

type Box[T any] struct{ V T }

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}

func TestKeyOrder(t *testing.T) {
	c := mustCompile(t, Options{MaxDiffs: 100})
	cases := []struct {
		a    any
		want string
	}{
		{map[bool]int{true: 1, false: 0}, "[false] [true]"},
		{map[float64]int{2: 1, math.NaN(): 1, -1: 1, math.Inf(1): 1}, "[NaN] [-1] [2] [+Inf]"},
		{map[complex128]int{2i: 1, 1 + 1i: 1, 1: 1}, "[(0+2i)] [(1+0i)] [(1+1i)]"},
		{map[uint8]int{200: 1, 3: 1, 20: 1}, "[3] [20] [200]"},
		{map[[2]int]int{{2, 1}: 1, {1, 2}: 1, {1, 1}: 1}, "[[2]int{1, 1}] [[2]int{1, 2}] [[2]int{2, 1}]"},
		{map[Address]int{{"b", "1"}: 1, {"a", "2"}: 1, {"a", "1"}: 1},
			`[Address{Street:"a", Zip:"1"}] [Address{Street:"a", Zip:"2"}] [Address{Street:"b", Zip:"1"}]`},
		{map[any]int{"x": 1, nil: 1, 2: 1, 1.5: 1, Level(1): 1}, `[<nil>] [high] [1.5] [2] ["x"]`},
	}
	for _, tc := range cases {
		var keys []string
		for line := range strings.SplitSeq(c.Diff(tc.a, reflect.MakeMap(reflect.TypeOf(tc.a)).Interface()), "\n") {
			keys = append(keys, line[:strings.Index(line, ": missing")])
		}
		if got := strings.Join(keys, " "); got != tc.want {
			t.Errorf("%T: keys in order %s; want %s", tc.a, got, tc.want)
		}
	}
}
