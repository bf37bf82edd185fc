package main

import (
	"flag"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract"
)

var liftCommand = &command{
	name: "lift", args: "MIGRATION", min: 1, max: 1,
	summary: "lift the stage ceiling that a trigger set",
	about: "Lift clears the migration's stage ceiling, the demotion a trigger set for a cool-down, in force\n" +
		"or past it, as expandcontract.Migration.Lift does, and records it in the history. Every instance's\n" +
		"bound lets the flags' stages through again within its TTL; a trigger that fires within the quiet\n" +
		"period after the lift does not demote again. Without a ceiling it changes nothing.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		who := steerFlags(fs)
		return func(c *call) error {
			if err := who.check(); err != nil {
				return err
			}
			m, cur, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			lifted, err := m.Lift(c.ctx, who.actor, who.reason)
			if err != nil {
				return err
			}
			if c.json {
				var was *expandcontract.Ceiling
				if lifted {
					was = cur.Ceiling
				}
				return writeJSON(c.out(), struct {
					Migration string                  `json:"migration"`
					Lifted    bool                    `json:"lifted"`
					Ceiling   *expandcontract.Ceiling `json:"ceiling"`
				}{m.Name(), lifted, was})
			}
			if !lifted {
				fmt.Fprintf(c.out(), "%s: no ceiling to lift\n", m.Name())
				return nil
			}
			fmt.Fprintf(c.out(), "%s: lifted the ceiling %s\n", m.Name(), cur.Ceiling.Stage)
			return nil
		}
	},
}

// ceilingLine shows the ceiling in force, or the one recorded past its
// cool-down.
func ceilingLine(s expandcontract.Status) string {
	c := s.Ceiling
	if c == nil {
		if old := s.State.Ceiling; old != nil {
			return fmt.Sprintf("none in force (%s ended %s; a lift or a move clears it)", old.Stage, when(old.Until, s.At))
		}
		return "none"
	}
	line := fmt.Sprintf("%s until %s, set by trigger %s on %s", c.Stage, when(c.Until, s.At), c.Trigger, c.Instance)
	if c.Figures != "" {
		line += ": " + c.Figures
	}
	return line
}
