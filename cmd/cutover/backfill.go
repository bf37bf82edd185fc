package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
)

// backfillControls are the functions of package backfill behind the
// commands backfill pause, resume, cancel, reset-cancel and mark-done, and
// what each command says it did.
var backfillControls = map[string]struct {
	fn   func(ctx context.Context, m *expandcontract.Migration, actor, reason string) error
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
				if err := ctl.fn(c.ctx, m, who.actor, who.reason); err != nil {
					return err
				}
				return printBackfillState(c, m, ctl.done)
			}
		},
	}
}

var backfillSetCommand = &command{
	name: "backfill set", args: "MIGRATION", min: 1, max: 1,
	summary: "change the rate limit or the batch size of the backfill",
	about: "Backfill set changes the settings of the migration's backfill in the metadata, as\n" +
		"backfill.SetRate and backfill.SetBatchSize do: the running backfill applies them from its next\n" +
		"batch on, wherever it runs, and they override the runner's own options while set. 0 lifts a\n" +
		"setting, and the runner's own option holds again. Both are checked before either is made.\n" +
		"Each is recorded in the migration's history with the actor, the reason and the old value.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		who := steerFlags(fs)
		limit := fs.Float64("rate", 0, "the rate limit, in rows per second; 0 lifts it")
		size := fs.Int("batch-size", 0, "the batch size, in keys; 0 lifts it")
		return func(c *call) error {
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			switch {
			case !set["rate"] && !set["batch-size"]:
				return usageErrorf("give --rate, --batch-size or both")
			case set["rate"] && !(*limit >= 0 && *limit <= backfill.MaxRate):
				return usageErrorf("--rate %v is not 0 (lift the limit) or a rate up to %g rows per second", *limit, float64(backfill.MaxRate))
			case set["batch-size"] && (*size < 0 || *size > backfill.MaxBatchSize):
				return usageErrorf("--batch-size %d is not 0 (lift the size) or a size up to %d keys", *size, backfill.MaxBatchSize)
			}
			if err := who.check(); err != nil {
				return err
			}
			m, _, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			var done []string
			if set["rate"] {
				if err := backfill.SetRate(c.ctx, m, *limit, who.actor, who.reason); err != nil {
					return err
				}
				done = append(done, "rate limit "+settingText(*limit > 0, rate(*limit)))
			}
			if set["batch-size"] {
				if err := backfill.SetBatchSize(c.ctx, m, *size, who.actor, who.reason); err != nil {
					return err
				}
				done = append(done, "batch size "+settingText(*size > 0, fmt.Sprintf("%d keys", *size)))
			}
			return printBackfillState(c, m, strings.Join(done, ", ")+"; the backfill applies it from its next batch")
		}
	},
}

// settingText shows a setting an operator made: its value, or that it was
// lifted.
func settingText(set bool, value string) string {
	if set {
		return value
	}
	return "lifted: the runner's own option holds"
}

// printBackfillState prints what a backfill command did and the
// backfill's state after it.
func printBackfillState(c *call, m *expandcontract.Migration, done string) error {
	s, err := m.Status(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		parts, err := partsOf(s)
		if err != nil {
			return err
		}
		return writeJSON(c.out(), struct {
			Migration string          `json:"migration"`
			Phase     string          `json:"phase"`
			Backfill  json.RawMessage `json:"backfill"`
		}{m.Name(), s.State.Phase.String(), parts.Backfill})
	}
	fmt.Fprintf(c.out(), "%s: %s\n", m.Name(), done)
	return nil
}
