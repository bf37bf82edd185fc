package diff

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Ignore paths, and sensitive paths, are compiled into a small
// deterministic automaton each. Each step of the walk (a field, an index or
// a key) moves from one state to the next; a state marked match means the
// current path matches a rule (it is skipped, or its values are hidden),
// and a nil state means no rule can match anywhere below, so the walk stops
// looking.

// state is one state of an automaton: the set of rule prefixes the path
// walked so far matches.
type state struct {
	match bool              // the path so far matches a whole rule
	named map[string]*state // next state after a segment with this name
	other *state            // next state after any other segment

	// fields caches, by struct type, the next state after each field,
	// sparing a field name lookup per field and comparison.
	fields sync.Map // reflect.Type -> []*state
}

// skip reports whether the path that led to s matches a rule: ignored in
// the ignore automaton, sensitive in the other.
func (s *state) skip() bool { return s != nil && s.match }

// fieldStates returns the states after each field of struct type t, or
// nil when s is nil.
func (s *state) fieldStates(t reflect.Type) []*state {
	if s == nil {
		return nil
	}
	if v, ok := s.fields.Load(t); ok {
		return v.([]*state)
	}
	next := make([]*state, t.NumField())
	for i := range next {
		next[i] = s.other
		if n, ok := s.named[t.Field(i).Name]; ok {
			next[i] = n
		}
	}
	v, _ := s.fields.LoadOrStore(t, next)
	return v.([]*state)
}

// index returns the state after slice or array element i.
func (s *state) index(i int) *state {
	if s == nil {
		return nil
	}
	if len(s.named) > 0 {
		if n, ok := s.named[strconv.Itoa(i)]; ok {
			return n
		}
	}
	return s.other
}

// key returns the state after map key k.
func (s *state) key(k reflect.Value) *state {
	if s == nil {
		return nil
	}
	if len(s.named) > 0 {
		var name string
		if k.Kind() == reflect.String {
			name = k.String()
		} else {
			name = fmt.Sprint(k)
		}
		if n, ok := s.named[name]; ok {
			return n
		}
	}
	return s.other
}

// node is a node of the trie of ignore paths.
type node struct {
	id       int
	end      bool // a rule ends here
	children map[string]*node
	star     *node
}

// compileIgnore checks the paths, given in the Options field named option,
// and builds the automaton. It returns nil when there are no paths.
func compileIgnore(option string, paths []string) (*state, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	ids := 0
	newNode := func() *node {
		ids++
		return &node{id: ids}
	}
	root := newNode()
	for _, p := range paths {
		segs, err := splitPath(p)
		if err != nil {
			err.Option = option
			return nil, err
		}
		n := root
		for _, seg := range segs {
			if seg == "*" {
				if n.star == nil {
					n.star = newNode()
				}
				n = n.star
				continue
			}
			if n.children == nil {
				n.children = make(map[string]*node)
			}
			next, ok := n.children[seg]
			if !ok {
				next = newNode()
				n.children[seg] = next
			}
			n = next
		}
		n.end = true
	}
	b := builder{states: make(map[string]*state)}
	return b.state([]*node{root}), nil
}

// splitPath splits an ignore path into its segments, rejecting malformed
// paths.
func splitPath(p string) ([]string, *PathError) {
	if p == "" {
		return nil, &PathError{Path: p, Reason: "path is empty"}
	}
	segs := strings.Split(p, ".")
	for i, seg := range segs {
		switch {
		case seg == "" && i == 0:
			return nil, &PathError{Path: p, Reason: `starts with '.'; paths start at the root, as in "Address.Zip"`}
		case seg == "" && i == len(segs)-1:
			return nil, &PathError{Path: p, Reason: "ends with '.'"}
		case seg == "":
			return nil, &PathError{Path: p, Reason: fmt.Sprintf("segment %d is empty", i+1)}
		case strings.Contains(seg, "[") && strings.HasSuffix(seg, "]"):
			return nil, &PathError{Path: p, Reason: fmt.Sprintf(`segment %q uses brackets; give elements and keys their own segment, as in "Tags.*" or "Tags.2"`, seg)}
		}
	}
	return segs, nil
}

// builder turns the trie into the automaton by the subset construction:
// each state stands for the set of trie nodes that the same path reaches.
type builder struct {
	states map[string]*state // by the sorted ids of the set
}

func (b *builder) state(nodes []*node) *state {
	if len(nodes) == 0 {
		return nil
	}
	slices.SortFunc(nodes, func(x, y *node) int { return x.id - y.id })
	var key strings.Builder
	for _, n := range nodes {
		key.WriteString(strconv.Itoa(n.id))
		key.WriteByte(',')
	}
	if s, ok := b.states[key.String()]; ok {
		return s
	}
	s := &state{}
	b.states[key.String()] = s
	var stars []*node
	for _, n := range nodes {
		s.match = s.match || n.end
		if n.star != nil {
			stars = append(stars, n.star)
		}
	}
	if s.match {
		return s // the walk never looks below a matched path
	}
	for _, n := range nodes {
		for name := range n.children {
			if s.named == nil {
				s.named = make(map[string]*state)
			}
			if _, done := s.named[name]; done {
				continue
			}
			next := slices.Clone(stars)
			for _, m := range nodes {
				if c, ok := m.children[name]; ok {
					next = append(next, c)
				}
			}
			s.named[name] = b.state(next)
		}
	}
	s.other = b.state(slices.Clone(stars))
	return s
}
