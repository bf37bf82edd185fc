package diff

import (
	"reflect"
	"testing"
	"time"
)

// benchRec is a typical row: ten fields of the usual kinds.
type benchRec struct {
	ID        int64
	Name      string
	Email     string
	Age       int
	Score     float64
	Active    bool
	Tags      []string
	Meta      map[string]string
	CreatedAt time.Time
	Address   *Address
}

func newBenchRec() *benchRec {
	return &benchRec{
		ID: 42, Name: "Ann Example", Email: "ann@example.org", Age: 37, Score: 98.5, Active: true,
		Tags:      []string{"admin", "beta", "eu"},
		Meta:      map[string]string{"plan": "pro", "source": "signup"},
		CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Address:   &Address{Street: "Main 1", Zip: "1000"},
	}
}

// BenchmarkEqual compares two equal, separately allocated records, the
// common case of a shadow read. The DeepEqual run is the baseline.
func BenchmarkEqual(b *testing.B) {
	x, y := newBenchRec(), newBenchRec()
	b.Run("reflect.DeepEqual", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !reflect.DeepEqual(x, y) {
				b.Fatal("not equal")
			}
		}
	})
	b.Run("Equal", func(b *testing.B) {
		c := mustCompile(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			if !c.Equal(x, y) {
				b.Fatal("not equal")
			}
		}
	})
	b.Run("Equal/ignore", func(b *testing.B) {
		c := mustCompile(b, Options{Ignore: []string{"CreatedAt", "Meta.source", "Address.*"}})
		b.ReportAllocs()
		for b.Loop() {
			if !c.Equal(x, y) {
				b.Fatal("not equal")
			}
		}
	})
	b.Run("Diff", func(b *testing.B) {
		c := mustCompile(b, Options{})
		b.ReportAllocs()
		for b.Loop() {
			if c.Diff(x, y) != "" {
				b.Fatal("not equal")
			}
		}
	})
}

// BenchmarkDiffMismatch builds the report for records differing in three
// fields.
func BenchmarkDiffMismatch(b *testing.B) {
	x, y := newBenchRec(), newBenchRec()
	y.Email, y.Tags[2], y.Meta["plan"] = "ann@example.com", "us", "free"
	c := mustCompile(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		if c.Diff(x, y) == "" {
			b.Fatal("equal")
		}
	}
}

// BenchmarkLimits measures comparisons that the limits cut short: two maps
// of two million entries each, refused before any entry is read, and two
// documents nested 400 000 levels deep, walked down to the depth limit.
// Unbounded, the maps took seconds and hundreds of megabytes per
// comparison, and the documents overflowed the goroutine stack.
func BenchmarkLimits(b *testing.B) {
	x, y := mapPair(2_000_000)
	deepX, deepY := nest(400_000, 1), nest(400_000, 1)
	c := mustCompile(b, Options{})
	b.Run("Compare/maps-2M", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Compare(x, y); err == nil {
				b.Fatal("no limit")
			}
		}
	})
	b.Run("Compare/depth-400k", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Compare(deepX, deepY); err == nil {
				b.Fatal("no limit")
			}
		}
	})
	// A map just under the budget: the most one comparison does by
	// default.
	x, y = mapPair(DefaultMaxWork / 4)
	b.Run("Compare/maps-25k", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if report, err := c.Compare(x, y); err != nil || report == "" {
				b.Fatal(report, err)
			}
		}
	})
}
