package diff

import (
	"errors"
	"time"
)

// Types shared by the tests.

type Address struct {
	Street string
	Zip    string
}

type Item struct {
	SKU       string
	Qty       int
	UpdatedAt time.Time
}

type User struct {
	ID        int64
	Name      string
	Email     string
	Tags      []string
	Meta      map[string]int
	Address   *Address
	Items     []Item
	CreatedAt time.Time
	Score     float64
	Extra     any
}

type secret struct {
	name string
	n    int
	at   time.Time
	addr *Address
}

// Money compares by value through its Equal method: the currency's case
// does not matter.
type Money struct {
	Cents    int64
	Currency string
}

func (m Money) Equal(o Money) bool {
	return m.Cents == o.Cents && len(m.Currency) == len(o.Currency) &&
		(m.Currency == o.Currency || lower(m.Currency) == lower(o.Currency))
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Grumpy has an Equal method that panics.
type Grumpy struct{ N int }

func (Grumpy) Equal(Grumpy) bool { panic("no") }

// PtrEq has its Equal method on the pointer.
type PtrEq struct{ N, Ignored int }

func (p *PtrEq) Equal(o *PtrEq) bool { return p.N == o.N }

// NotEqual has an Equal method of the wrong shape, which is not used.
type NotEqual struct{ N int }

func (NotEqual) Equal(any) bool { return true }

// Level prints through String.
type Level int

func (l Level) String() string { return [...]string{"low", "high"}[l] }

// BadString panics in String.
type BadString struct{ N int }

func (BadString) String() string { panic("no") }

type Node struct {
	V    int
	Next *Node
}

type Tree struct {
	Name     string
	Children map[string]*Tree
}

type List []List

var errBoom = errors.New("boom")
