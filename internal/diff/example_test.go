package diff_test

import (
	"fmt"
	"math"
	"time"

	"github.com/cutover-go/cutover/internal/diff"
)

type Line struct {
	SKU       string
	Qty       int
	UpdatedAt time.Time
}

type Order struct {
	ID       int
	Email    string
	Total    float64
	Lines    []Line
	Labels   map[string]string
	PlacedAt time.Time
}

func Example() {
	c, err := diff.Compile(diff.Options{
		Ignore: []string{"Lines.*.UpdatedAt", "Labels.etag"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	placed := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	old := Order{
		ID: 1, Email: "a@x.org", Total: math.NaN(),
		Lines:    []Line{{SKU: "A", Qty: 1}, {SKU: "B", Qty: 2}},
		Labels:   map[string]string{"etag": "v1", "tier": "gold"},
		PlacedAt: placed,
	}
	new := Order{
		ID: 1, Email: "b@x.org", Total: math.NaN(),
		Lines:    []Line{{SKU: "A", Qty: 1, UpdatedAt: placed}},
		Labels:   map[string]string{"etag": "v2", "tier": "gold", "src": "api"},
		PlacedAt: placed.In(time.FixedZone("CET", 3600)), // same instant
	}
	fmt.Println(c.Equal(old, new))
	fmt.Println(c.Diff(old, new))

	_, err = diff.Compile(diff.Options{Ignore: []string{"Lines[*].SKU"}})
	fmt.Println(err)
	// Output:
	// false
	// .Email: "a@x.org" != "b@x.org"
	// .Lines[1]: missing in new (old: Line{SKU:"B", Qty:2, UpdatedAt:0001-01-01 00:00:00 +0000 UTC})
	// .Labels["src"]: missing in old (new: "api")
	// diff: ignore path "Lines[*].SKU": segment "Lines[*]" uses brackets; give elements and keys their own segment, as in "Tags.*" or "Tags.2"
}
