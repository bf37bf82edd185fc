package dualwritetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/cutover-go/cutover"
)

// Pair holds the two stores of one migration, so that a function given a
// [cutover.Side] can reach its store with p.Side(side). The zero value
// holds no stores; create pairs with [NewPair]. A Pair is a pair of
// pointers and is safe for concurrent use, as its stores are.
type Pair[V any] struct {
	Old, New *Store[V]
}

// NewPair returns a pair of empty stores called "old" and "new".
func NewPair[V any]() Pair[V] {
	return Pair[V]{Old: NewStore[V]("old"), New: NewStore[V]("new")}
}

// Side returns p.Old for [cutover.Old] and p.New for [cutover.New].
// It panics for any other value.
func (p Pair[V]) Side(side cutover.Side) *Store[V] {
	switch side {
	case cutover.Old:
		return p.Old
	case cutover.New:
		return p.New
	}
	panic(fmt.Sprintf("dualwritetest: Pair.Side(%v): not a side", side))
}

// Diff returns, sorted, the keys on which the snapshots of the two stores
// disagree: keys held by only one of them, and keys whose values are not
// equal by [reflect.DeepEqual]. Drift is not taken into account, so an
// empty Diff means the stored data has converged.
func (p Pair[V]) Diff() []string {
	oldData, newData := p.Old.Snapshot(), p.New.Snapshot()
	differ := make(map[string]bool)
	for k, ov := range oldData {
		if nv, ok := newData[k]; !ok || !reflect.DeepEqual(ov, nv) {
			differ[k] = true
		}
	}
	for k := range newData {
		if _, ok := oldData[k]; !ok {
			differ[k] = true
		}
	}
	return slices.Sorted(maps.Keys(differ))
}
