package diff

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// nest builds, without recursion, a JSON-like document n objects deep:
// {"x": {"x": ... leaf}}.
func nest(n int, leaf any) any {
	v := leaf
	for range n {
		v = map[string]any{"x": v}
	}
	return v
}

type chain struct {
	V    int
	Next *chain
}

// list builds a linked list of n nodes.
func list(n int) *chain {
	var head *chain
	for i := range n {
		head = &chain{V: i, Next: head}
	}
	return head
}

// boxes builds n pointers to interfaces holding pointers to interfaces.
func boxes(n int) any {
	var v any = 1
	for range n {
		p := new(any)
		*p = v
		v = p
	}
	return v
}

// walkVisits returns the pairs of values and map entries that an
// Equal-mode and a Diff-mode walk of old and new visit.
func walkVisits(c *Comparer, old, new any) (equal, diff int) {
	for _, full := range []bool{false, true} {
		w := walker{c: c, full: full, work: c.maxWork}
		w.value(reflect.ValueOf(old), reflect.ValueOf(new), c.ignore, c.sens)
		if full {
			diff = w.visits
		} else {
			equal = w.visits
		}
	}
	return equal, diff
}

func lastLine(s string) string { return s[strings.LastIndexByte(s, '\n')+1:] }

// TestDeepValuesStopAtTheDepthLimit: values nested far deeper than the
// goroutine stack could follow compare as differing, with a report saying
// where the walk stopped, instead of overflowing the stack (a fatal error
// that no recover catches).
func TestDeepValuesStopAtTheDepthLimit(t *testing.T) {
	const levels = 400_000
	cases := []struct {
		name string
		a, b any
		at   string // start of the path where the walk stops
	}{
		{"maps of interfaces", nest(levels, 1), nest(levels, 1), `["x"]["x"]["x"]`},
		{"linked list", list(levels), list(levels), ".Next.Next.Next"},
		{"pointers to interfaces", boxes(levels), boxes(levels), "the root"},
	}
	c := mustCompile(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			report, err := c.Compare(tc.a, tc.b)
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrLimit) || le.Limit != LimitDepth || le.Max != DefaultMaxDepth {
				t.Fatalf("Compare error = %v; want a depth LimitError", err)
			}
			want := "comparison stopped: depth limit 1000 exceeded at " + tc.at
			if !strings.HasPrefix(lastLine(report), want) {
				t.Errorf("report ends %q; want it to start with %q", lastLine(report), want)
			}
			if len(le.Path) > maxLimitPath+len("...") {
				t.Errorf("the error keeps a path of %d bytes", len(le.Path))
			}
			if c.Equal(tc.a, tc.b) || c.Diff(tc.a, tc.b) != report {
				t.Error("Equal and Diff disagree with Compare")
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	c := mustCompile(t, Options{MaxDepth: 3})
	report, err := c.Compare(nest(5, 1), nest(5, 1))
	if want := `comparison stopped: depth limit 3 exceeded at ["x"]["x"]`; report != want || err == nil || err.Error() != want {
		t.Errorf("Compare = %q, %v; want %q and that error", report, err, want)
	}
	// A difference above the limit makes a mismatch, not a stopped
	// comparison, whatever the order the walk takes; the report lists it
	// and says where the walk could not look.
	a := map[string]any{"deep": nest(5, 1), "n": 1}
	b := map[string]any{"deep": nest(5, 1), "n": 2}
	for range 20 {
		report, err = c.Compare(a, b)
		if want := `["n"]: 1 != 2` + "\n" + `comparison stopped: depth limit 3 exceeded at ["deep"]["x"]`; report != want || err != nil {
			t.Fatalf("Compare = %q, %v; want %q and no error", report, err, want)
		}
	}
	// Within the limit, deep values compare as usual.
	c = mustCompile(t, Options{MaxDepth: 100})
	checkCase(t, c, diffCase{a: nest(20, 1), b: nest(20, 1)})
	checkCase(t, c, diffCase{a: nest(2, 1), b: nest(2, 2), want: `["x"]["x"]: 1 != 2`})
}

// TestHugeMapsStayBounded: two maps of two million entries each, which
// took seconds and hundreds of megabytes to diff, are refused before any
// entry is read: the work and the memory of one comparison do not grow
// with the values.
func TestHugeMapsStayBounded(t *testing.T) {
	const n = 2_000_000
	a, b := mapPair(n)
	c := mustCompile(t, Options{})
	report, err := c.Compare(a, b)
	if want := "comparison stopped: work limit 100000 exceeded at the root"; report != want || !errors.Is(err, ErrLimit) {
		t.Errorf("Compare = %q, %v; want %q and a LimitError", report, err, want)
	}
	if eq, diff := walkVisits(c, a, b); eq > DefaultMaxWork || diff > DefaultMaxWork {
		t.Errorf("the walks visited %d and %d values and entries; the budget is %d", eq, diff, DefaultMaxWork)
	}
	if allocs := testing.AllocsPerRun(5, func() { _, _ = c.Compare(a, b) }); allocs > 20 {
		t.Errorf("a comparison of two huge maps allocates %v times", allocs)
	}
	if bytes := allocated(func() { _, _ = c.Compare(a, b) }); bytes > 16<<10 {
		t.Errorf("a comparison of two huge maps allocates %d bytes", bytes)
	}
	// Under a budget that allows it, large maps are compared in full.
	const m = n / 10
	a, b = mapPair(m)
	c = mustCompile(t, Options{MaxWork: 4 * m})
	if report, err := c.Compare(a, b); report != fmt.Sprintf("[%d]: %d != -1", m/2, m/2) || err != nil {
		t.Errorf("Compare = %q, %v", report, err)
	}
}

// allocated returns the bytes that f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestWorkLimit: every kind of bulk is charged, and the report lists the
// differences met before the walk stopped.
func TestWorkLimit(t *testing.T) {
	c := mustCompile(t, Options{MaxWork: 100})
	long := make([]int, 1000)
	other := make([]int, 1000)
	other[3], other[500] = 1, 1
	report, err := c.Compare(long, other)
	if want := "[3]: 0 != 1\ncomparison stopped: work limit 100 exceeded at [99]"; report != want || err != nil {
		t.Errorf("Compare = %q, %v; want %q and no error: the first difference is a mismatch", report, err, want)
	}
	other[3] = 0
	if _, err := c.Compare(long, other); !errors.Is(err, ErrLimit) {
		t.Errorf("error = %v; want a LimitError: no difference was found before the limit", err)
	}
	cases := map[string][2]any{
		"a string of 200 KiB":     {strings.Repeat("x", 200<<10), strings.Repeat("x", 200<<10)},
		"a byte slice of 200 KiB": {make([]byte, 200<<10), make([]byte, 200<<10)},
		"a map of 60 entries":     {mapOf(60), mapOf(60)},
		"a struct of 120 fields":  {[120]struct{ N int }{}, [120]struct{ N int }{}},
	}
	for name, v := range cases {
		if _, err := c.Compare(v[0], v[1]); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: error = %v; want a LimitError", name, err)
		}
	}
	// Equal byte slices cost one unit per KiB, not one per byte.
	c = mustCompile(t, Options{})
	checkCase(t, c, diffCase{a: make([]byte, 1<<20), b: make([]byte, 1<<20)})
	checkCase(t, c, diffCase{a: []byte("abc"), b: []byte("abd"), want: "[2]: 99 != 100"})
}

// mapPair returns two maps of n entries that differ in the middle one.
func mapPair(n int) (a, b map[int]int) {
	a, b = mapOf(n), mapOf(n)
	b[n/2] = -1
	return a, b
}

func mapOf(n int) map[int]int {
	m := make(map[int]int, n)
	for i := range n {
		m[i] = i
	}
	return m
}

// TestLargeMapsListInKeyOrder: maps too large to sort whole list the same
// differences, in the same order, as small ones do.
func TestLargeMapsListInKeyOrder(t *testing.T) {
	type val struct{ A, B int }
	const n = 1000
	a, b := make(map[int]val, n), make(map[int]val, n)
	for i := range n {
		a[i], b[i] = val{i, i}, val{i, i}
	}
	var want []string
	for _, k := range []int{3, 250, 251, 600, 999} {
		b[k] = val{-1, -1}
		want = append(want, fmt.Sprintf("[%d].A: %d != -1", k, k), fmt.Sprintf("[%d].B: %d != -1", k, k))
	}
	delete(b, 7)
	b[-5] = val{}
	want = append(want, "[7]: missing in new (old: val{A:7, B:7})")
	want = append(want, "[-5]: missing in old (new: val{A:0, B:0})")
	// Listed in key order: -5, 3, 7, 250, ...
	order := []string{want[11], want[0], want[1], want[10], want[2], want[3], want[4], want[5], want[6], want[7], want[8], want[9]}
	for maxDiffs := 1; maxDiffs <= len(order)+1; maxDiffs++ {
		c := mustCompile(t, Options{MaxDiffs: maxDiffs})
		w := strings.Join(order[:min(maxDiffs, len(order))], "\n")
		if more := len(order) - maxDiffs; more == 1 {
			w += "\n... and 1 more difference"
		} else if more > 1 {
			w += fmt.Sprintf("\n... and %d more differences", more)
		}
		checkCase(t, c, diffCase{a: a, b: b, want: w})
	}
}

func TestCompareAgreesWithEqualAndDiff(t *testing.T) {
	c := mustCompile(t, Options{})
	for _, v := range [][2]any{{1, 1}, {1, 2}, {nil, 0}, {mapOf(200), mapOf(201)}} {
		report, err := c.Compare(v[0], v[1])
		if err != nil || report != c.Diff(v[0], v[1]) || (report == "") != c.Equal(v[0], v[1]) {
			t.Errorf("Compare(%v, %v) = %q, %v", v[0], v[1], report, err)
		}
	}
}
