package diff

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

type fastUser struct {
	ID        string
	Name      string
	Score     float64
	UpdatedAt time.Time
	Next      *fastUser
}

type fastHidden struct {
	when time.Time // compared field by field: reflection cannot call Equal
	n    int
}

type fastEmbedded struct {
	fastHidden
	Tags [3]string
}

type fastEqualer struct{ N int }

func (a fastEqualer) Equal(b fastEqualer) bool { return a.N%2 == b.N%2 }

type fastWithEqualer struct{ E fastEqualer }

type fastWithAny struct{ V any }

type fastNested struct{ A struct{ B struct{ C int } } }

// checkFast checks FastEqual's one promise: true only where Compare finds
// the values equal.
func checkFast[T any](t *testing.T, c *Comparer, old, new T, want bool) {
	t.Helper()
	f := FastEqual[T](c)
	if f == nil {
		t.Fatalf("FastEqual[%T] is nil, want an equality", old)
	}
	got := f.Equal(&old, &new)
	if got != want {
		t.Errorf("FastEqual[%T](%v, %v) = %v, want %v", old, old, new, got, want)
	}
	if got {
		if report, err := c.Compare(old, new); report != "" || err != nil {
			t.Errorf("FastEqual[%T] says equal, Compare says %q, %v", old, report, err)
		}
	}
}

func TestFastEqualAgreesWithCompare(t *testing.T) {
	c := mustCompile(t, Options{})
	u := fastUser{ID: "42", Name: "Ada", Score: 1.5, UpdatedAt: t0}
	checkFast(t, c, u, u, true)
	checkFast(t, c, u, fastUser{ID: "42", Name: "Bob", Score: 1.5, UpdatedAt: t0}, false)
	// Equal instants in two locations: the walk says equal, == does not.
	checkFast(t, c, u, fastUser{ID: "42", Name: "Ada", Score: 1.5, UpdatedAt: t0.In(paris)}, false)
	nan := fastUser{Score: math.NaN()}
	checkFast(t, c, nan, nan, false) // NaN != NaN under ==: the walk decides
	checkFast(t, c, fastUser{Next: &u}, fastUser{Next: &u}, true)
	checkFast(t, c, fastEmbedded{fastHidden{t0, 1}, [3]string{"a"}}, fastEmbedded{fastHidden{t0, 1}, [3]string{"a"}}, true)
	checkFast(t, c, 7, 7, true)
	checkFast(t, c, "x", "x", true)
}

func TestFastEqualChargesWhatTheWalkCharges(t *testing.T) {
	long := strings.Repeat("x", 5<<10) // 5 units on top of the value
	tight := mustCompile(t, Options{MaxWork: 5})
	checkFast(t, tight, long, long, false)
	if _, err := tight.Compare(long, long); err == nil {
		t.Errorf("Compare within MaxWork 5 found two 5 KiB strings equal; the test wants it stopped")
	}
	checkFast(t, mustCompile(t, Options{MaxWork: 6}), long, long, true)

	// fastEmbedded: the struct, fastHidden, its time field by field (4),
	// n, the array and its three strings: 11 values.
	v := fastEmbedded{fastHidden{t0, 1}, [3]string{"a", "b", "c"}}
	if FastEqual[fastEmbedded](mustCompile(t, Options{MaxWork: 10})) != nil {
		t.Errorf("FastEqual with MaxWork 10 for 11 values: want nil")
	}
	checkFast(t, mustCompile(t, Options{MaxWork: 11}), v, v, true)
	if _, err := mustCompile(t, Options{MaxWork: 10}).Compare(v, v); err == nil {
		t.Errorf("Compare with MaxWork 10 for 11 values: want a limit error")
	}

	if FastEqual[fastNested](mustCompile(t, Options{MaxDepth: 3})) != nil {
		t.Errorf("FastEqual with MaxDepth 3 for 4 levels: want nil")
	}
	checkFast(t, mustCompile(t, Options{MaxDepth: 4}), fastNested{}, fastNested{}, true)
}

func TestFastEqualRefuses(t *testing.T) {
	c := mustCompile(t, Options{})
	if FastEqual[fastWithEqualer](c) != nil {
		t.Error("FastEqual for a type with an Equal method: want nil")
	}
	if FastEqual[fastWithAny](c) != nil {
		t.Error("FastEqual for a type holding an interface: want nil")
	}
	if FastEqual[any](c) != nil {
		t.Error("FastEqual[any]: want nil")
	}
	if FastEqual[[]int](c) != nil {
		t.Error("FastEqual for a slice: want nil")
	}
	if FastEqual[fastUser](mustCompile(t, Options{Ignore: []string{"Name"}})) != nil {
		t.Error("FastEqual with ignore rules: want nil")
	}
}

func TestFastEqualAllocatesNothing(t *testing.T) {
	checkFastAllocs(t, fastUser{ID: "42", Name: "Ada", UpdatedAt: t0}) // compared in place
	checkFastAllocs(t, "Ada")                                          // compared as interfaces
}

func checkFastAllocs[T any](t *testing.T, v T) {
	t.Helper()
	f := FastEqual[T](nil)
	a, b := v, v
	if allocs := testing.AllocsPerRun(100, func() { _ = f.Equal(&a, &b) }); allocs != 0 {
		t.Errorf("FastEqual[%T] allocated %v times per call, want 0", v, allocs)
	}
	if !f.Equal(&a, &b) {
		t.Errorf("FastEqual[%T] found %v unequal to itself", v, v)
	}
}

// fastRec is a comparable record with what == and the walk may judge
// differently: NaN, times in several locations, pointers, long strings,
// an array, and unexported and embedded fields.
type fastRec struct {
	Name  string
	F     float64
	At    time.Time
	Items [2]fuzzItem
	P     *int
	fastHidden
}

var fastPointees = [2]int{1, 1}

func decodeFastRec(data []byte) fastRec {
	s := &fuzzSource{b: data}
	r := fastRec{Name: s.str(), F: s.float()}
	r.At = time.Unix(int64(s.byte()%3), 0).In(fuzzZones[s.byte()%3])
	for i := range r.Items {
		r.Items[i] = fuzzItem{ID: int(s.byte() % 4), At: time.Unix(int64(s.byte()%2), 0).In(fuzzZones[s.byte()%3])}
	}
	if c := s.byte() % 3; c < 2 {
		r.P = &fastPointees[c] // equal values at two addresses
	}
	r.when = time.Unix(int64(s.byte()%2), 0).In(fuzzZones[s.byte()%3])
	r.n = int(s.byte() % 2)
	return r
}

func FuzzFastEqual(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\x03abc\x05\x01\x02\x01\x00\x01\x02\x01\x00\x01\x00\x01"), []byte{3, 'q'})
	f.Add([]byte("\xfa\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"), []byte{0, 0xfb})
	comparers := []*Comparer{
		mustCompile(f, Options{}),
		mustCompile(f, Options{MaxWork: 20}),
		mustCompile(f, Options{MaxDepth: 3}),
		mustCompile(f, Options{HideValues: true, Sensitive: []string{"Name"}}),
	}
	f.Fuzz(func(t *testing.T, data, edits []byte) {
		other := slices.Clone(data)
		for i := 0; i+1 < len(edits) && len(other) > 0; i += 2 {
			other[int(edits[i])%len(other)] = edits[i+1]
		}
		a, b := decodeFastRec(data), decodeFastRec(other)
		for _, c := range comparers {
			fast := FastEqual[fastRec](c)
			if fast == nil {
				continue // the limits leave no shortcut
			}
			if fast.Equal(&a, &b) {
				if report, err := c.Compare(a, b); report != "" || err != nil {
					t.Fatalf("FastEqual says equal, Compare says %q, %v", report, err)
				}
			}
			if a == b && a.F == a.F && len(a.Name) < 1<<10 && !fast.Equal(&a, &b) {
				t.Fatalf("FastEqual says unequal for values equal under ==")
			}
		}
	})
}
