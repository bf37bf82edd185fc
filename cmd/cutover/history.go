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

// eventJSON is an event of the history in JSON.
type eventJSON struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Kind    string    `json:"kind"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Version int64     `json:"version"`
	Reason  string    `json:"reason"`
	Detail  string    `json:"detail"`
}

func toEventJSON(ev expandcontract.Event) eventJSON {
	return eventJSON{ID: ev.ID, At: ev.At.UTC(), Actor: ev.Actor, Kind: ev.Kind, From: ev.From.String(),
		To: ev.To.String(), Version: ev.Version, Reason: ev.Reason, Detail: ev.Detail}
}

func printHistory(c *call, name string, events []expandcontract.Event) error {
	if c.json {
		out := struct {
			Migration string      `json:"migration"`
			Events    []eventJSON `json:"events"`
		}{Migration: name, Events: make([]eventJSON, len(events))}
		for i, ev := range events {
			out.Events[i] = toEventJSON(ev)
		}
		return writeJSON(c.out(), out)
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
				return writeJSON(c.out(), struct {
					Migration string         `json:"migration"`
					Instances []instanceJSON `json:"instances"`
					ByStage   map[string]int `json:"by_stage"`
				}{m.Name(), toInstancesJSON(insts), byStageJSON(countStages(insts))})
			}
			return printInstances(c, insts, time.Now())
		}
	},
}

// instanceJSON is an instance in JSON.
type instanceJSON struct {
	ID     string    `json:"id"`
	Stage  string    `json:"stage"`
	SeenAt time.Time `json:"seen_at"`
}

func toInstancesJSON(insts []expandcontract.Instance) []instanceJSON {
	out := make([]instanceJSON, len(insts))
	for i, in := range insts {
		out[i] = instanceJSON{ID: in.ID, Stage: in.Stage.String(), SeenAt: in.SeenAt.UTC()}
	}
	return out
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
