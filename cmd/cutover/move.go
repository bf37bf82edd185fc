package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/expandcontract"
)

var moveCommand = &command{
	name: "move", args: "MIGRATION PHASE", min: 2, max: 2,
	summary: "move the phase one step, forward or back, under the guards",
	about: "Move moves the migration to PHASE (expand, dualwrite, backfill, switchreads or contract), one\n" +
		"step forward or back, as expandcontract.Migration.Move does: reads may not move to switchreads\n" +
		"before the backfill is done and a clean verification after it; contract is final unless forced.\n" +
		"A refusal changes nothing but the history, which records it (exit status 3).",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		who := steerFlags(fs)
		force := fs.Bool("force", false, "move even if a guard objects, and out of contract; never skips a phase")
		version := fs.Int64("version", 0, "move only if the migration is still at this version; 0 takes the current one")
		return func(c *call) error {
			to, err := expandcontract.ParsePhase(c.args[1])
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := who.check(); err != nil {
				return err
			}
			if *version < 0 {
				return usageErrorf("--version must not be negative, got %d", *version)
			}
			m, cur, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			st, err := m.Move(c.ctx, expandcontract.Move{To: to, Actor: who.actor, Reason: who.reason,
				Force: *force, Version: *version})
			if err != nil {
				return err
			}
			warnings, lifted := moveNotes(c, m, st.Version)
			if c.json {
				return writeJSON(c.out(), struct {
					Migration string   `json:"migration"`
					From      string   `json:"from"`
					To        string   `json:"to"`
					Version   int64    `json:"version"`
					Forced    bool     `json:"forced"`
					Warnings  []string `json:"warnings"`
					Lifted    string   `json:"lifted,omitempty"`
				}{m.Name(), cur.Phase.String(), st.Phase.String(), st.Version, *force, warnings, lifted})
			}
			fmt.Fprintf(c.out(), "%s: moved from %s to %s (version %d)\n", m.Name(), cur.Phase, st.Phase, st.Version)
			if lifted != "" {
				fmt.Fprintf(c.out(), "%s\n", lifted)
			}
			for _, w := range warnings {
				fmt.Fprintf(c.out(), "warning: %s\n", w)
			}
			return nil
		}
	},
}

// moveNotes returns the warnings of the move that brought the migration to
// version, as its event in the history records them, and apart from them
// the stage ceiling the move lifted, if it lifted one ("" if not).
func moveNotes(c *call, m *expandcontract.Migration, version int64) (warnings []string, lifted string) {
	events, err := m.Events(c.ctx)
	if err != nil {
		return []string{fmt.Sprintf("could not read the history for the move's warnings: %v", err)}, ""
	}
	warnings = []string{}
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.Version != version || ev.Kind != "move" && ev.Kind != "force" {
			continue
		}
		for _, part := range strings.Split(ev.Detail, "; ") {
			switch {
			case part == "":
			case strings.HasPrefix(part, liftedCeiling):
				lifted = part
			default:
				warnings = append(warnings, part)
			}
		}
		break
	}
	return warnings, lifted
}

// liftedCeiling begins the part of a move's event detail that names the
// stage ceiling the move lifted.
const liftedCeiling = "lifted ceiling "

// steer holds the --actor and --reason of a command that changes a
// migration.
type steer struct{ actor, reason string }

// steerFlags defines --actor and --reason on fs.
func steerFlags(fs *flag.FlagSet) *steer {
	s := &steer{}
	fs.StringVar(&s.actor, "actor", "", "who asks, recorded in the history (required)")
	fs.StringVar(&s.reason, "reason", "", "why, recorded in the history (required)")
	return s
}

// check refuses a missing actor or reason.
func (s *steer) check() error {
	switch {
	case strings.TrimSpace(s.actor) == "":
		return usageErrorf("missing --actor: say who asks, for the history")
	case strings.TrimSpace(s.reason) == "":
		return usageErrorf("missing --reason: say why, for the history")
	}
	return nil
}
