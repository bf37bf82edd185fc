package cutover

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknownStage is returned, wrapped, by [ParseStage] and [Stage.UnmarshalText]
// for a string that names none of the six stages.
var ErrUnknownStage = errors.New("cutover: unknown stage")

// Stage says, for one operation of one request, which store is authoritative
// and which, if any, is secondary. Stages are ordered: each one moves further
// from the old store towards the new one, so the builtin min and max clamp them.
//
// The zero value is [Off]. A Stage is a plain value, safe for concurrent
// use.
type Stage uint8

// The six stages, in order. Their string forms are the values a migration
// flag holds.
const (
	// Off writes and reads the old store only.
	Off Stage = iota
	// DualWrite writes the old store (authoritative), then the new one,
	// and reads the old store.
	DualWrite
	// Shadow writes like DualWrite, reads the old store and compares the
	// answer with the new store's.
	Shadow
	// Live writes the new store (authoritative), then the old one, reads
	// the new store and compares the answer with the old store's.
	Live
	// Rampdown writes like Live and reads the new store without comparing.
	Rampdown
	// Complete writes and reads the new store only.
	Complete
)

// Stages lists every stage in order, from [Off] to [Complete].
var Stages = [...]Stage{Off, DualWrite, Shadow, Live, Rampdown, Complete}

var stageNames = [...]string{"off", "dualwrite", "shadow", "live", "rampdown", "complete"}

// ParseStage returns the stage named s, which must be one of "off",
// "dualwrite", "shadow", "live", "rampdown" or "complete", exactly as
// written. Any other string yields an error wrapping [ErrUnknownStage].
func ParseStage(s string) (Stage, error) {
	switch s {
	case "off":
		return Off, nil
	case "dualwrite":
		return DualWrite, nil
	case "shadow":
		return Shadow, nil
	case "live":
		return Live, nil
	case "rampdown":
		return Rampdown, nil
	case "complete":
		return Complete, nil
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return Off, fmt.Errorf("%w %q (want off, dualwrite, shadow, live, rampdown or complete)", ErrUnknownStage, s)
}

// String returns the flag value of s, such as "shadow", or "Stage(N)" for
// a value that is not a stage.
func (s Stage) String() string {
	if s.Valid() {
		return stageNames[s]
	}
	return fmt.Sprintf("Stage(%d)", uint8(s))
}

// Valid reports whether s is one of the six stages.
func (s Stage) Valid() bool { return s <= Complete }

// MarshalText implements [encoding.TextMarshaler]. It fails for a value
// that is not a stage.
func (s Stage) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownStage, uint8(s))
	}
	return []byte(stageNames[s]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseStage].
func (s *Stage) UnmarshalText(text []byte) error {
	v, err := ParseStage(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Authoritative returns the store whose answer the caller gets: [Old] up to
// [Shadow], [New] from [Live] on.
func (s Stage) Authoritative() Side {
	if s >= Live {
		return New
	}
	return Old
}

// Secondary returns the store that is written after the authoritative one,
// and false in [Off] and [Complete], where only one store is written.
func (s Stage) Secondary() (Side, bool) {
	if s == Off || s >= Complete {
		return Old, false
	}
	return s.Authoritative().Other(), true
}

// Compares reports whether reads in s also read the secondary store and
// compare its answer with the authoritative one: true in [Shadow] and [Live].
func (s Stage) Compares() bool { return s == Shadow || s == Live }

// Side names one of the two stores. The zero value is [Old], so a Side
// indexes a two-element array of stores. A Side is a plain value, safe for
// concurrent use.
type Side uint8

const (
	// Old is the store being migrated from.
	Old Side = iota
	// New is the store being migrated to.
	New
)

// String returns "old" or "new".
func (d Side) String() string {
	switch d {
	case Old:
		return "old"
	case New:
		return "new"
	}
	return fmt.Sprintf("Side(%d)", uint8(d))
}

// Other returns the store that is not d.
func (d Side) Other() Side { return d ^ 1 }

// StageSource gives the stage of one operation of one request. The flags
// package resolves it from a feature flag; [Fixed] always gives one stage.
// Implementations must be safe for concurrent use and must not fail: an
// unreadable source answers with a safe stage instead. The zero value, a
// nil StageSource, is not usable: the constructors that take one refuse it,
// and a nil pointer or function in the interface too.
type StageSource interface {
	Stage(ctx context.Context) Stage
}

// Fixed is a [StageSource] that always gives the same stage, for tests,
// benchmarks and services that move stages by deploying. The zero value
// always gives [Off]. It is safe for concurrent use.
type Fixed Stage

// Stage returns Stage(f).
func (f Fixed) Stage(context.Context) Stage { return Stage(f) }

// StageFunc adapts a function to [StageSource]. It is as safe for concurrent
// use as the function, which a StageSource must be. The zero value, a nil
// function, is not a usable source: the constructors that take one refuse
// it.
type StageFunc func(ctx context.Context) Stage

// Stage returns f(ctx).
func (f StageFunc) Stage(ctx context.Context) Stage { return f(ctx) }
