package diff

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

type fuzzItem struct {
	ID int
	At time.Time
}

type fuzzRec struct {
	Name   string
	N      int
	F      float64
	Tags   []string
	Meta   map[string]int
	Items  []fuzzItem
	Next   *fuzzRec
	Self   *fuzzRec
	Any    any
	hidden int
}

// fuzzSource hands out the fuzz bytes, then zeros.
type fuzzSource struct{ b []byte }

func (s *fuzzSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *fuzzSource) str() string {
	n := int(s.byte())
	if n >= 250 {
		return strings.Repeat("ab", 40+n) + string(s.byte())
	}
	b := make([]byte, n%6)
	for i := range b {
		b[i] = s.byte()
	}
	return string(b)
}

func (s *fuzzSource) float() float64 {
	switch c := s.byte(); c % 8 {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return math.Copysign(0, -1)
	default:
		return float64(int8(c)) / 4
	}
}

var fuzzZones = []*time.Location{time.UTC, time.FixedZone("A", 3600), time.FixedZone("B", -7200)}

// decodeRec builds a record from data; with cycles, its Self field may
// point back to it.
func decodeRec(data []byte, cycles bool) *fuzzRec {
	s := &fuzzSource{b: data}
	r := decodeOne(s, 0)
	if cycles && s.byte()%2 == 1 {
		r.Self = r
	}
	return r
}

func decodeOne(s *fuzzSource, depth int) *fuzzRec {
	flags := s.byte()
	r := &fuzzRec{Name: s.str(), N: int(int8(s.byte())), F: s.float()}
	if flags&1 == 0 {
		r.Tags = make([]string, s.byte()%4)
		for i := range r.Tags {
			r.Tags[i] = s.str()
		}
	}
	if flags&2 == 0 {
		r.Meta = map[string]int{}
		for range s.byte() % 4 {
			r.Meta["k"+string('0'+rune(s.byte()%3))] = int(int8(s.byte()))
		}
	}
	for range s.byte() % 3 {
		at := time.Unix(int64(s.byte()%3), 0).In(fuzzZones[s.byte()%3])
		r.Items = append(r.Items, fuzzItem{ID: int(s.byte() % 4), At: at})
	}
	if flags&4 != 0 && depth < 2 {
		r.Next = decodeOne(s, depth+1)
	}
	switch s.byte() % 6 {
	case 1:
		r.Any = int(s.byte())
	case 2:
		r.Any = s.str()
	case 3:
		r.Any = s.float()
	case 4:
		r.Any = []int{int(s.byte())}
	case 5:
		r.Any = (*fuzzRec)(nil)
	}
	r.hidden = int(s.byte() % 2)
	return r
}

// normalize rewrites r so that reflect.DeepEqual agrees with Equal: NaN
// becomes a value the decoder never makes, times move to UTC.
func normalize(r *fuzzRec) *fuzzRec {
	for n := r; n != nil; n = n.Next {
		if math.IsNaN(n.F) {
			n.F = 1e300
		}
		if f, ok := n.Any.(float64); ok && math.IsNaN(f) {
			n.Any = 1e300
		}
		for i := range n.Items {
			n.Items[i].At = n.Items[i].At.UTC()
		}
	}
	return r
}

var fuzzIgnore = []string{"Next.Name", "Meta.k0", "Tags.*", "Any", "Items.*.At"}

// applyIgnore clears what fuzzIgnore skips, keeping nil slices and maps nil
// and others non-nil, as the rules do.
func applyIgnore(r *fuzzRec) *fuzzRec {
	if r.Next != nil {
		r.Next.Name = ""
	}
	delete(r.Meta, "k0")
	if r.Tags != nil {
		r.Tags = []string{}
	}
	r.Any = nil
	for i := range r.Items {
		r.Items[i].At = time.Time{}
	}
	return r
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\x00\x03abc\x05\x10\x02\x01x\x02yz\x02\x00\x05\x01\x07\x01\x00\x02\x01\x03\x02"), []byte{3, 'q'})
	f.Add([]byte("\x04\x02hi\x01\x00\x00\x01\x03\x00\x02\x00\x01\x04\x01\x02\x03\x00\x01\x01\x01\x01\x00"), []byte{1, 0xff, 9, 0})
	f.Add([]byte("\x00\xfe\x01\x08\x03\x01a\x01b\x01c\x00\x00\x03\x01\x02\x01"), []byte{2, 'Z', 8, 'Y', 20, 1})
	f.Add([]byte("\x06\x01\xe9\x02\x00\x00\x02\x01\x00\x01\x01\x00\x02\x04\x01"), []byte{0, 6, 1, 0})

	base := mustCompile(f, Options{})
	capped := mustCompile(f, Options{MaxDiffs: 2, MaxBytes: 40})
	ignoring := mustCompile(f, Options{Ignore: fuzzIgnore})
	// Every string of a record is below one of these paths.
	hiding := mustCompile(f, Options{Sensitive: []string{"Name", "Tags", "Meta", "Any", "Next", "Self"}})
	valueless := mustCompile(f, Options{HideValues: true})
	comparers := []*Comparer{base, capped, ignoring, hiding, valueless}

	f.Fuzz(func(t *testing.T, data, edits []byte) {
		other := slices.Clone(data)
		for i := 0; i+1 < len(edits) && len(other) > 0; i += 2 {
			other[int(edits[i])%len(other)] = edits[i+1]
		}
		a, b := decodeRec(data, true), decodeRec(other, true)

		// A value equals itself and a fresh copy of itself.
		for _, c := range comparers {
			for _, same := range []any{a, decodeRec(data, true)} {
				if d := c.Diff(a, same); d != "" || !c.Equal(a, same) {
					t.Fatalf("value differs from itself: %s", d)
				}
			}
		}

		for _, c := range comparers {
			d := c.Diff(a, b)
			eq := c.Equal(a, b)
			if eq != (d == "") {
				t.Fatalf("Equal = %v but Diff = %q", eq, d)
			}
			if back := c.Equal(b, a); back != eq || (c.Diff(b, a) == "") != eq {
				t.Fatalf("comparison is not symmetric: %v, %v", eq, back)
			}
			if again := c.Diff(a, b); again != d {
				t.Fatalf("Diff is not deterministic:\n%s\n%s", d, again)
			}
			if len(d) > c.maxBytes+len("...") {
				t.Fatalf("report is %d bytes, over %d+3:\n%s", len(d), c.maxBytes, d)
			}
			if lines := strings.Count(d, "\n") + 1; d != "" && lines > c.maxDiffs+1 {
				t.Fatalf("report has %d lines, over %d+1:\n%s", lines, c.maxDiffs, d)
			}
			if !utf8.ValidString(d) || strings.Contains(d, "comparison failed") {
				t.Fatalf("bad report %q", d)
			}
			if (c == hiding || c == valueless) && strings.Contains(d, `"`) {
				t.Fatalf("the report shows a text it should hide:\n%s", d)
			}
			if (c == hiding || c == valueless) && eq != base.Equal(a, b) {
				t.Fatalf("hiding values changed what is equal:\n%s", d)
			}
		}

		// Without ignore rules, Equal is reflect.DeepEqual once NaN and
		// time locations are taken out of the picture.
		deep := reflect.DeepEqual(normalize(decodeRec(data, true)), normalize(decodeRec(other, true)))
		if eq := base.Equal(a, b); eq != deep {
			t.Fatalf("Equal = %v, DeepEqual of normalized values = %v\n%s", eq, deep, base.Diff(a, b))
		}

		// Ignore rules act like clearing what they name.
		a, b = decodeRec(data, false), decodeRec(other, false)
		cleared := base.Equal(applyIgnore(decodeRec(data, false)), applyIgnore(decodeRec(other, false)))
		if eq := ignoring.Equal(a, b); eq != cleared {
			t.Fatalf("Equal with rules = %v, after clearing = %v\n%s", eq, cleared, ignoring.Diff(a, b))
		}
	})
}
