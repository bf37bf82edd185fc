package meta

import "fmt"

// PhaseNames are the names of the phases, in order, as the tables store
// them; package expandcontract's Phase values index it.
var PhaseNames = [...]string{"expand", "dualwrite", "backfill", "switchreads", "contract"}

// PhaseIndex returns the index in [PhaseNames] of the phase named s, or an
// error wrapping [ErrUnknownPhase].
func PhaseIndex(s string) (int, error) {
	for i, n := range PhaseNames {
		if s == n {
			return i, nil
		}
	}
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return 0, fmt.Errorf("%w %q (want expand, dualwrite, backfill, switchreads or contract)", ErrUnknownPhase, s)
}
