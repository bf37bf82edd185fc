package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
)

// backfillControls are the functions of package backfill behind the
// commands backfill pause, resume, cancel, reset-cancel and mark-done, and
// what each command says it did.
var backfillControls = map[string]struct {
	fn   func(ctx context.Context, m *expandcontract.Migration, actor string) error
	done string
}{
	"pause":        {backfill.Pause, "pause asked for: the runner pauses after its current batch, keeping its lease"},
	"resume":       {backfill.Resume, "resumed"},
	"cancel":       {backfill.Cancel, "cancel asked for: the runner stops after its current batch; the checkpoint stays"},
	"reset-cancel": {backfill.ResetCancel, "cancellation lifted: a new run resumes from the checkpoint"},
	"mark-done":    {backfill.MarkDone, "backfill recorded as done"},
}

// backfillControl returns the command backfill NAME.
func backfillControl(name, summary string) *command {
	return &command{
		name: "backfill " + name, args: "MIGRATION", min: 1, max: 1,
		summary: summary,
		about: "Backfill " + name + ": " + summary + ". The runner, in whichever instance it runs, sees it by\n" +
			"its next batch. It is recorded in the migration's history with the actor and the reason.",
		setup: func(fs *flag.FlagSet) func(c *call) error {
			who := steerFlags(fs)
			return func(c *call) error {
				if err := who.check(); err != nil {
					return err
				}
				m, _, err := c.migration(c.args[0])
				if err != nil {
					return err
				}
				ctl := backfillControls[name]
				if err := ctl.fn(c.ctx, m, who.actor); err != nil {
					return err
				}
				return printBackfillState(c, m, ctl.done)
			}
		},
	}
}

// printBackfillState prints what a backfill command did and the
// backfill's state after it.
func printBackfillState(c *call, m *expandcontract.Migration, done string) error {
	st, err := m.State(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		return writeJSON(c.out(), struct {
			Migration string       `json:"migration"`
			Phase     string       `json:"phase"`
			Backfill  backfillJSON `json:"backfill"`
		}{m.Name(), st.Phase.String(), toBackfillJSON(expandcontract.Status{State: st})})
	}
	fmt.Fprintf(c.out(), "%s: %s\n", m.Name(), done)
	return nil
}
