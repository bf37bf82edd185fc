package dualwritetest_test

import (
	"slices"
	"testing"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
)

func TestPairSide(t *testing.T) {
	p := dualwritetest.NewPair[int]()
	if p.Old.Name != "old" || p.New.Name != "new" {
		t.Errorf("names = %q, %q; want old, new", p.Old.Name, p.New.Name)
	}
	if p.Side(cutover.Old) != p.Old || p.Side(cutover.New) != p.New {
		t.Error("Side does not return the matching store")
	}
	mustPanic(t, func() { p.Side(cutover.Side(2)) })
}

func TestPairDiff(t *testing.T) {
	ctx := t.Context()
	p := dualwritetest.NewPair[[]string]()
	if d := p.Diff(); len(d) != 0 {
		t.Fatalf("empty pair: Diff = %v", d)
	}

	put := func(s *dualwritetest.Store[[]string], key string, v ...string) {
		if err := s.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	put(p.Old, "same", "a", "b")
	put(p.New, "same", "a", "b") // equal by DeepEqual, not by ==
	put(p.Old, "changed", "a")
	put(p.New, "changed", "b")
	put(p.Old, "z-old-only", "a")
	put(p.New, "a-new-only", "a")
	put(p.Old, "nil-vs-empty")
	put(p.New, "nil-vs-empty", []string{}...)
	p.New.Drift("same", func([]string) []string { return nil }) // ignored

	want := []string{"a-new-only", "changed", "nil-vs-empty", "z-old-only"}
	if d := p.Diff(); !slices.Equal(d, want) {
		t.Fatalf("Diff = %v, want %v", d, want)
	}
}
