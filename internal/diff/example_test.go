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

type Customer struct {
	Name  string
	Email string `cutover:"sensitive"`
	Phone string
	Notes map[string]string
}

// Sensitive values, tagged or named by a path, are shown as keyed hashes;
// with HideValues no value is shown at all. The fixed HashKey here makes
// the hashes the same on every run; by default the key is drawn at random
// once per process.
func ExampleOptions_sensitive() {
	c, err := diff.Compile(diff.Options{
		Sensitive: []string{"Phone", "Notes.pin"},
		HashKey:   []byte("example key, 16+ bytes"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	old := Customer{Name: "Ann", Email: "ann@x.org", Phone: "+1 555 0100", Notes: map[string]string{"pin": "4321", "tier": "gold"}}
	new := Customer{Name: "Ann", Email: "ann@y.org", Phone: "+1 555 0100", Notes: map[string]string{"pin": "1234", "tier": "silver"}}
	fmt.Println(c.Diff(old, new))

	valueless, _ := diff.Compile(diff.Options{HideValues: true, HashKey: []byte("example key, 16+ bytes")})
	fmt.Println(valueless.Diff(old, new))
	// Output:
	// .Email: <redacted:4bec5f33> != <redacted:6b9a57a9>
	// .Notes["pin"]: <redacted:159300f0> != <redacted:22e697cc>
	// .Notes["tier"]: "gold" != "silver"
	// .Email: values differ
	// .Notes[<redacted:83379ece>]: values differ
	// .Notes[<redacted:8e0e22af>]: values differ
}
