package expandcontract

import (
	"errors"
	"fmt"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// ErrUnknownPhase is wrapped by the error of [ParsePhase] for a string that
// names no phase.
var ErrUnknownPhase = errors.New("expandcontract: unknown phase")

// Phase is where one migration stands in the expand-contract sequence. Each
// phase bounds the stages that flags may select, so that reads never move to
// data that is not there yet and writes never stop reaching a store that
// still serves reads. The zero value is [Expand].
type Phase uint8

// The phases, in order.
const (
	// Expand: the new schema or store exists; nothing writes it yet.
	// Stages: off.
	Expand Phase = iota
	// DualWrite: every write goes to both stores. Stages: dualwrite.
	DualWrite
	// Backfill: rows written before dual writes began are copied, and the
	// copy verified. Shadow reads may compare. Stages: dualwrite to shadow.
	Backfill
	// SwitchReads: reads may move to the new store, with the old one still
	// written as a fallback. Entered only after a complete backfill and a
	// clean verification. Stages: dualwrite to rampdown.
	SwitchReads
	// Contract: the old store is retired. Stages: complete. Final unless
	// forced.
	Contract
)

// Phases lists every phase in order.
var Phases = [...]Phase{Expand, DualWrite, Backfill, SwitchReads, Contract}

var phaseNames = meta.PhaseNames

var phaseBounds = [...][2]cutover.Stage{
	Expand:      {cutover.Off, cutover.Off},
	DualWrite:   {cutover.DualWrite, cutover.DualWrite},
	Backfill:    {cutover.DualWrite, cutover.Shadow},
	SwitchReads: {cutover.DualWrite, cutover.Rampdown},
	Contract:    {cutover.Complete, cutover.Complete},
}

// ParsePhase returns the phase named s, one of "expand", "dualwrite",
// "backfill", "switchreads" and "contract".
func ParsePhase(s string) (Phase, error) {
	i, err := meta.PhaseIndex(s)
	return Phase(i), err
}

// String returns the name of p, or "Phase(N)" for a value that is not one.
func (p Phase) String() string {
	if p.Valid() {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Valid reports whether p is one of the five phases.
func (p Phase) Valid() bool { return p <= Contract }

// MarshalText implements encoding.TextMarshaler.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownPhase, uint8(p))
	}
	return []byte(phaseNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [ParsePhase].
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Stages returns the lowest and highest stage that flags may select in p.
func (p Phase) Stages() (lo, hi cutover.Stage) {
	if !p.Valid() {
		return cutover.Off, cutover.Off
	}
	b := phaseBounds[p]
	return b[0], b[1]
}

// Clamp returns s moved into the stages p allows.
func (p Phase) Clamp(s cutover.Stage) cutover.Stage {
	lo, hi := p.Stages()
	return max(lo, min(s, hi))
}
