package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
)

var statusCommand = &command{
	name: "status", args: "[MIGRATION]", min: 0, max: 1,
	summary: "the phase, the backfill, the last verification, the repairs, the instances",
	about: "Status prints where a migration stands: its phase and the stages the phase allows, and the stage\n" +
		"ceiling a trigger set, while it is in force; the backfill's rows done of the total, rate, ETA,\n" +
		"lease holder and whether it is paused or throttled; the last verification, and the progress of\n" +
		"one running now; the repair backlog; the instances and the stage each resolves. Without\n" +
		"MIGRATION it prints one line for each migration.\n\n" +
		"With --watch it prints the progress of the backfill, and of a running verification, every\n" +
		"--interval: progress bars redrawn in place on a terminal, a new line each time otherwise (one\n" +
		"JSON object a line with --json). It stops when no verification runs and the backfill is done,\n" +
		"canceled or not in its phase, or on SIGINT, with exit status 0.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		watch := fs.Bool("watch", false, "print the progress of the backfill and of a running verification every --interval until they end")
		interval := fs.Duration("interval", 2*time.Second, "how often --watch reads the progress")
		return func(c *call) error {
			if *interval <= 0 {
				return usageErrorf("--interval must be positive, got %v", *interval)
			}
			if *watch && len(c.args) == 0 {
				return usageErrorf("--watch needs a MIGRATION")
			}
			if len(c.args) == 0 {
				return statusAll(c)
			}
			m, _, err := c.migration(c.args[0])
			if err != nil {
				return err
			}
			if *watch {
				return watchStatus(c, m, *interval)
			}
			s, err := readStatus(c, m)
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.out(), s) // the library's document, docs/status.md
			}
			return printStatus(c, s)
		}
	},
}

// readStatus reads the status of m.
func readStatus(c *call, m *expandcontract.Migration) (expandcontract.Status, error) {
	return m.Status(c.ctx)
}

// printStatus prints s for people.
func printStatus(c *call, s expandcontract.Status) error {
	st, now := s.State, s.At
	stages := make([]string, len(s.Stages))
	for i, stage := range s.Stages {
		stages[i] = stage.String()
	}
	pairs := [][2]string{
		{"migration", st.Name},
		{"phase", phaseLine(s)},
		{"stages", strings.Join(stages, ", ")},
		{"ceiling", ceilingLine(s)},
		{"backfill", backfillLine(s)},
	}
	if b := st.Backfill; b.LeaseOwner != "" {
		pairs = append(pairs, [2]string{"", fmt.Sprintf("lease held by %s until %s", b.LeaseOwner, when(b.LeaseUntil, now))})
	}
	if set := settingsLine(st.Backfill); set != "" {
		pairs = append(pairs, [2]string{"", set})
	}
	pairs = append(pairs, [2]string{"verification", verificationLine(s)})
	if s.Verifying != nil {
		pairs = append(pairs, [2]string{"verifying", verifyingLine(s)})
	}
	pairs = append(pairs,
		[2]string{"repairs", repairsLine(s)},
		[2]string{"instances", fmt.Sprintf("%d: %s", len(s.Instances), stagesLine(s.ByStage))},
	)
	if err := fields(c.out(), pairs); err != nil {
		return err
	}
	if len(s.Instances) == 0 {
		return nil
	}
	fmt.Fprintln(c.out())
	return printInstances(c, s.Instances, now)
}

// phaseLine shows the phase, the version and the last move, from the
// recent history.
func phaseLine(s expandcontract.Status) string {
	st := s.State
	line := fmt.Sprintf("%s (version %d)", st.Phase, st.Version)
	for _, ev := range s.Events { // newest first
		if (ev.Kind == "move" || ev.Kind == "force") && ev.To == st.Phase {
			line += fmt.Sprintf(", moved %s by %s", when(ev.At, s.At), ev.Actor)
			if ev.Reason != "" {
				line += ": " + oneLine(ev.Reason)
			}
			if ev.Kind == "force" {
				line += " (forced)"
			}
			break
		}
	}
	return line
}

// backfillLine shows the backfill's progress: its bar, rows, rate and ETA,
// the ranges of a partitioned one, and whether it is paused, canceled,
// throttled or done.
func backfillLine(s expandcontract.Status) string {
	b := s.State.Backfill
	var parts []string
	switch {
	case b.Done():
		return fmt.Sprintf("done %s, %d rows", when(b.DoneAt, s.At), b.Rows)
	case b.StartedAt.IsZero() && b.Rows == 0:
		parts = append(parts, "not started")
	default:
		parts = append(parts, progress(b.Rows, b.Total))
		if s.Backfill.Rate > 0 {
			parts = append(parts, rate(s.Backfill.Rate))
		}
		if s.Backfill.ETA > 0 {
			parts = append(parts, "ETA "+short(s.Backfill.ETA))
		}
		if r := s.Backfill.Ranges; r.Total > 0 {
			parts = append(parts, fmt.Sprintf("ranges %d/%d done, %d leased", r.Done, r.Total, r.Leased))
		}
	}
	if b.Paused {
		parts = append(parts, "paused")
	}
	if b.Canceled {
		parts = append(parts, "canceled")
	}
	if b.Throttled != "" {
		parts = append(parts, "throttled: "+oneLine(b.Throttled))
	}
	return strings.Join(parts, "  ")
}

// settingsLine shows the backfill's settings an operator made, or "" if
// none is.
func settingsLine(b expandcontract.BackfillState) string {
	var parts []string
	if b.RateLimit > 0 {
		parts = append(parts, "rate limit "+rate(b.RateLimit))
	}
	if b.BatchSize > 0 {
		parts = append(parts, fmt.Sprintf("batch size %d keys", b.BatchSize))
	}
	if len(parts) == 0 {
		return ""
	}
	return "set by an operator: " + strings.Join(parts, ", ")
}

// barWidth is the width of a progress bar, between its brackets.
const barWidth = 30

// progress shows rows done of total as a bar, a percentage and the counts:
// "[#########.....................]  31%  3100/10000 rows".
func progress(rows, total int64) string {
	if total <= 0 {
		return strconv.FormatInt(rows, 10) + " rows"
	}
	f := min(1, float64(rows)/float64(total))
	n := int(f * barWidth)
	return fmt.Sprintf("[%s%s] %3d%%  %d/%d rows", strings.Repeat("#", n), strings.Repeat(".", barWidth-n),
		int(f*100), rows, total)
}

// rate shows rows per second.
func rate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f rows/s", r)
	}
	return fmt.Sprintf("%.1f rows/s", r)
}

// verificationLine shows the last verification.
func verificationLine(s expandcontract.Status) string {
	v := s.State.Verification
	if v.At.IsZero() {
		return "none"
	}
	verdict := "clean"
	if !v.Clean {
		verdict = "NOT CLEAN"
	}
	return fmt.Sprintf("%s, %s, %s, %s", verdict, when(v.At, s.At), plural(v.Rows, "row", "rows"), plural(v.Differences, "difference", "differences"))
}

// verifyingLine shows the progress of the running verification: its bar,
// rows, rate and ETA, and who started it when.
func verifyingLine(s expandcontract.Status) string {
	p := s.Verifying
	parts := []string{progress(p.Rows, p.Total)}
	if p.Rate > 0 {
		parts = append(parts, rate(p.Rate))
	}
	if p.ETA > 0 {
		parts = append(parts, "ETA "+short(p.ETA))
	}
	return strings.Join(parts, "  ") + fmt.Sprintf(", started %s by %s", when(p.Started, s.At), p.Owner)
}

// repairsLine shows the repair backlog.
func repairsLine(s expandcontract.Status) string {
	r := s.Repairs
	if r.Pending == 0 {
		return "none pending"
	}
	return fmt.Sprintf("%d pending, %d stuck, oldest recorded %s", r.Pending, r.Stuck, when(r.Oldest, s.At))
}

// statusAll prints a line for each migration.
func statusAll(c *call) error {
	if err := c.open(); err != nil {
		return err
	}
	all, err := c.store.Statuses(c.ctx)
	if err != nil {
		return err
	}
	if c.json {
		if all == nil {
			all = []expandcontract.Status{} // [], not null
		}
		return writeJSON(c.out(), struct {
			Migrations []expandcontract.Status `json:"migrations"`
		}{all})
	}
	rows := make([][]string, len(all))
	for i, s := range all {
		st := s.State
		verified := "-"
		if v := st.Verification; !v.At.IsZero() {
			verified = "clean " + ago(v.At, s.At)
			if !v.Clean {
				verified = plural(v.Differences, "difference", "differences") + " " + ago(v.At, s.At)
			}
		}
		rows[i] = []string{st.Name, st.Phase.String(), strconv.FormatInt(st.Version, 10), backfillShort(s), verified,
			fmt.Sprintf("%d (%d stuck)", s.Repairs.Pending, s.Repairs.Stuck), stagesLine(s.ByStage)}
	}
	return table(c.out(), []string{"MIGRATION", "PHASE", "VERSION", "BACKFILL", "VERIFIED", "REPAIRS", "INSTANCES"}, rows)
}

// backfillShort shows the backfill's progress in a few words.
func backfillShort(s expandcontract.Status) string {
	b := s.State.Backfill
	var out string
	switch {
	case b.Done():
		return "done"
	case b.StartedAt.IsZero() && b.Rows == 0:
		out = "-"
	case b.Total > 0:
		out = fmt.Sprintf("%d%% of %d", int(min(1, float64(b.Rows)/float64(b.Total))*100), b.Total)
	default:
		out = fmt.Sprintf("%d rows", b.Rows)
	}
	switch {
	case b.Canceled:
		out += ", canceled"
	case b.Paused:
		out += ", paused"
	case b.Throttled != "":
		out += ", throttled"
	case s.Backfill.ETA > 0:
		out += ", ETA " + short(s.Backfill.ETA)
	}
	return out
}
