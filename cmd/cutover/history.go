package main

import (
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

var historyCommand = &command{
	name: "history", args: "MIGRATION", min: 1, max: 1,
	summary: "the history of moves, refusals and controls",
	about: "History prints the migration's history, oldest first: every move, refusal and conflict, the\n" +
		"backfill's controls and runs, the verifications, demotions, lifts and alarms, with who asked, when and why.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		limit := fs.Int("limit", 50, "print only the last N events; 0 prints them all")
		return func(c *call) error {
			if *limit < 0 {
				return usageErrorf("--limit must not be negative, got %d", *limit)
			}
			m, _, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			events, err := m.Events(c.ctx)
			if err != nil {
				return err
			}
			if *limit > 0 && len(events) > *limit {
				events = events[len(events)-*limit:]
			}
			return printHistory(c, m.Name(), events)
		}
	},
}

func printHistory(c *call, name string, events []expandcontract.Event) error {
	if c.json {
		if events == nil {
			events = []expandcontract.Event{}
		}
		return writeJSON(c.out(), struct {
			Migration string                 `json:"migration"`
			Events    []expandcontract.Event `json:"events"`
		}{name, events})
	}
	rows := make([][]string, len(events))
	for i, ev := range events {
		phases := ev.From.String()
		if ev.To != ev.From {
			phases += " -> " + ev.To.String()
		}
		rows[i] = []string{ev.At.UTC().Format(time.RFC3339), ev.Kind, phases, strconv.FormatInt(ev.Version, 10),
			ev.Actor, orDash(oneLine(ev.Reason)), orDash(oneLine(ev.Detail))}
	}
	return table(c.out(), []string{"TIME", "KIND", "PHASE", "VERSION", "ACTOR", "REASON", "DETAIL"}, rows)
}

var instancesCommand = &command{
	name: "instances", args: "MIGRATION", min: 1, max: 1,
	summary: "the instances and the stage each resolves",
	about: "Instances prints the instances of the service that reported a stage for the migration in the\n" +
		"last 5 minutes, each with the lowest stage it resolved and when it last reported.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		return func(c *call) error {
			m, _, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			insts, err := m.Instances(c.ctx)
			if err != nil {
				return err
			}
			if c.json {
				if insts == nil {
					insts = []expandcontract.Instance{}
				}
				return writeJSON(c.out(), struct {
					Migration string                    `json:"migration"`
					Instances []expandcontract.Instance `json:"instances"`
					ByStage   map[string]int            `json:"by_stage"`
				}{m.Name(), insts, byStageJSON(countStages(insts))})
			}
			return printInstances(c, insts, time.Now())
		}
	},
}

// countStages counts the instances that resolve each stage.
func countStages(insts []expandcontract.Instance) map[cutover.Stage]int {
	n := map[cutover.Stage]int{}
	for _, in := range insts {
		n[in.Stage]++
	}
	return n
}

func byStageJSON(by map[cutover.Stage]int) map[string]int {
	out := make(map[string]int, len(by))
	for st, n := range by {
		out[st.String()] = n
	}
	return out
}

// stagesLine shows how many instances resolve each stage: "2 shadow, 1
// dualwrite", lowest stage first, or "none".
func stagesLine(by map[cutover.Stage]int) string {
	var parts []string
	for _, st := range cutover.Stages {
		if n := by[st]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+st.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func printInstances(c *call, insts []expandcontract.Instance, now time.Time) error {
	rows := make([][]string, len(insts))
	for i, in := range insts {
		rows[i] = []string{in.ID, in.Stage.String(), when(in.SeenAt, now)}
	}
	return table(c.out(), []string{"INSTANCE", "STAGE", "SEEN"}, rows)
}
