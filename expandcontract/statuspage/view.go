package statuspage

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

// pageView is what the page template draws: the index (Migrations) or one
// migration (M).
type pageView struct {
	Title      string
	Root       string // the index, relative to this page
	JSON       string // this page's JSON document, relative to it
	Migrations []migrationView
	M          *migrationView
	Actions    bool   // the action forms are drawn
	Notice     string // a refused action's message
	Message    string // an error page's message
}

// migrationView is one migration, its figures written for people.
type migrationView struct {
	Name, Href string
	Phase      string
	Version    int64
	Stages     string
	Read       string // when the status was read
	Created    string
	Updated    string
	// Ceiling describes the stage ceiling in force, or is "" if none is.
	Ceiling string

	Backfill     backfillView
	Verification verificationView
	Verifying    *verifyingView // the verification running now; nil if none runs
	Repairs      repairsView
	ByStage      []stageCount
	Instances    []instanceView
	Events       []eventView
	RateChart    chartView
	BacklogChart chartView
	Moves        []moveView // the phases a move may go to
}

// barView is a progress bar.
type barView struct {
	Rows    int64
	Total   int64 // the bar's maximum; 0 draws it indeterminate
	Percent string
}

type backfillView struct {
	State string // "running", "paused", "canceled", "done", "idle", "not started"
	barView
	Done       string // rows copied, in words
	Rate       string
	ETA        string
	Lease      string // who holds the runner's lease, in words
	Started    string
	Finished   string
	Checkpoint string
	RateLimit  string // the settings an operator set, in words
	BatchSize  string
	Throttled  string // why a throttle holds the runner; "" if none does
}

type verificationView struct {
	Never       bool
	Clean       bool
	Summary     string // one line: "clean, 5m ago", "3 differences, 1h ago"
	At          string
	Age         string
	Rows        string
	Differences string
	Detail      string
}

type verifyingView struct {
	barView
	Compared string // rows compared, in words
	Rate     string
	ETA      string
	Owner    string
	Started  string
	Updated  string
}

type repairsView struct {
	Pending, Stuck string
	Oldest         string
	Summary        string
}

type stageCount struct {
	Stage string
	N     int
}

type instanceView struct {
	ID, Stage, Seen string
}

type eventView struct {
	At, Ago, Actor, Kind, Move, Reason, Detail string
	Version                                    int64
}

type moveView struct {
	To, Label string
	Version   int64
}

// newMigrationView writes st for people.
func newMigrationView(st expandcontract.Status) migrationView {
	s, now := st.State, st.At
	v := migrationView{
		Name: s.Name, Href: "m/" + url.PathEscape(s.Name) + "/",
		Phase: s.Phase.String(), Version: s.Version, Stages: stageRange(st.Stages),
		Read: stamp(now), Created: stamp(s.CreatedAt), Updated: stamp(s.UpdatedAt),
		Ceiling:      ceilingText(st),
		Backfill:     newBackfillView(st),
		Verification: newVerificationView(st),
		Verifying:    newVerifyingView(st),
		Repairs:      newRepairsView(st),
		Instances:    make([]instanceView, len(st.Instances)),
		Events:       make([]eventView, len(st.Events)),
		RateChart: newChart("rate-chart", "Backfill rate", rateSeries(st.Backfill.Samples), now,
			rate, "rows/s"),
		BacklogChart: newChart("backlog-chart", "Repair backlog", backlogSeries(st.Repairs.History), now,
			func(v float64) string { return group(int64(v)) }, "pending"),
	}
	for _, stage := range cutover.Stages {
		if n := st.ByStage[stage]; n > 0 {
			v.ByStage = append(v.ByStage, stageCount{Stage: stage.String(), N: n})
		}
	}
	for i, in := range st.Instances {
		v.Instances[i] = instanceView{ID: in.ID, Stage: in.Stage.String(), Seen: ago(in.SeenAt, now)}
	}
	for i, e := range st.Events {
		ev := eventView{At: stamp(e.At), Ago: ago(e.At, now), Actor: e.Actor, Kind: e.Kind,
			Version: e.Version, Reason: e.Reason, Detail: e.Detail}
		if e.From != e.To {
			ev.Move = e.From.String() + " → " + e.To.String()
		}
		v.Events[i] = ev
	}
	for _, p := range []expandcontract.Phase{s.Phase - 1, s.Phase + 1} {
		// Contract is final: a move out of it needs Force, which the page
		// does not offer.
		if p.Valid() && p != s.Phase && s.Phase != expandcontract.Contract {
			label := "Move forward to " + p.String()
			if p < s.Phase {
				label = "Move back to " + p.String()
			}
			v.Moves = append(v.Moves, moveView{To: p.String(), Label: label, Version: s.Version})
		}
	}
	return v
}

// stageRange writes the stages a phase allows: "dualwrite to shadow".
func stageRange(stages []cutover.Stage) string {
	switch len(stages) {
	case 0:
		return "none"
	case 1:
		return stages[0].String()
	}
	return stages[0].String() + " to " + stages[len(stages)-1].String()
}

func newBackfillView(st expandcontract.Status) backfillView {
	b, now := st.State.Backfill, st.At
	v := backfillView{barView: barView{Rows: b.Rows, Total: b.Total}, Rate: "—", ETA: "—", Lease: "no runner holds the lease",
		Started: "—", Finished: "—", Checkpoint: b.Checkpoint,
		RateLimit: "the runner's own", BatchSize: "the runner's own", Throttled: b.Throttled}
	if b.RateLimit > 0 {
		v.RateLimit = rate(b.RateLimit) + " rows/s, set by an operator"
	}
	if b.BatchSize > 0 {
		v.BatchSize = group(int64(b.BatchSize)) + " keys, set by an operator"
	}
	switch {
	case b.Done():
		v.State = "done"
	case b.Canceled:
		v.State = "canceled"
	case b.Paused:
		v.State = "paused"
	case b.LeaseOwner != "" && b.LeaseUntil.After(now) && b.Throttled != "":
		v.State = "throttled"
	case b.LeaseOwner != "" && b.LeaseUntil.After(now):
		v.State = "running"
	case b.StartedAt.IsZero():
		v.State = "not started"
	default:
		v.State = "idle"
	}
	switch {
	case b.Done():
		v.Total = max(b.Total, b.Rows, 1)
		v.Rows = v.Total
		v.Percent = "100%"
	case b.Total > 0:
		v.Rows = min(b.Rows, b.Total)
		v.Percent = strconv.FormatFloat(100*float64(v.Rows)/float64(b.Total), 'f', 1, 64) + "%"
	}
	v.Done = group(b.Rows) + " rows copied"
	if b.Total > 0 {
		v.Done += " of about " + group(b.Total)
	}
	if st.Backfill.Rate > 0 {
		v.Rate = rate(st.Backfill.Rate) + " rows/s"
	}
	switch {
	case b.Done():
		v.ETA = "done"
	case st.Backfill.ETA > 0:
		v.ETA = human(st.Backfill.ETA) + " (at " + stamp(now.Add(st.Backfill.ETA)) + ")"
	}
	if b.LeaseOwner != "" {
		if b.LeaseUntil.After(now) {
			v.Lease = b.LeaseOwner + ", until " + stamp(b.LeaseUntil) + " (" + ago(b.LeaseUntil, now) + ")"
		} else {
			v.Lease = "last held by " + b.LeaseOwner + ", ran out " + ago(b.LeaseUntil, now)
		}
	}
	if !b.StartedAt.IsZero() {
		v.Started = stamp(b.StartedAt) + " (" + ago(b.StartedAt, now) + ")"
	}
	if b.Done() {
		v.Finished = stamp(b.DoneAt) + " (" + ago(b.DoneAt, now) + ")"
	}
	return v
}

func newVerificationView(st expandcontract.Status) verificationView {
	ver := st.State.Verification
	if ver.At.IsZero() {
		return verificationView{Never: true, Summary: "never verified"}
	}
	v := verificationView{Clean: ver.Clean, At: stamp(ver.At), Age: human(st.VerificationAge) + " ago",
		Rows: group(ver.Rows), Differences: group(ver.Differences), Detail: ver.Detail}
	switch {
	case ver.Clean:
		v.Summary = "clean"
	case ver.Differences == 1:
		v.Summary = "1 difference"
	case ver.Differences > 0:
		v.Summary = group(ver.Differences) + " differences"
	default:
		v.Summary = "not clean"
	}
	v.Summary += ", " + v.Age
	return v
}

func newVerifyingView(st expandcontract.Status) *verifyingView {
	p, now := st.Verifying, st.At
	if p == nil {
		return nil
	}
	v := &verifyingView{Owner: p.Owner, Compared: group(p.Rows) + " rows compared",
		Started: stamp(p.Started) + " (" + ago(p.Started, now) + ")", Updated: ago(p.UpdatedAt, now)}
	if p.Total > 0 {
		v.Total, v.Rows = p.Total, min(p.Rows, p.Total)
		v.Percent = strconv.FormatFloat(100*float64(v.Rows)/float64(p.Total), 'f', 1, 64) + "%"
		v.Compared += " of about " + group(p.Total)
	}
	if p.Rate > 0 {
		v.Rate = rate(p.Rate) + " rows/s"
	}
	if p.ETA > 0 {
		v.ETA = human(p.ETA) + " (at " + stamp(now.Add(p.ETA)) + ")"
	}
	return v
}

func newRepairsView(st expandcontract.Status) repairsView {
	r := st.Repairs
	v := repairsView{Pending: group(r.Pending), Stuck: group(r.Stuck), Oldest: "—"}
	if !r.Oldest.IsZero() {
		v.Oldest = stamp(r.Oldest) + " (" + ago(r.Oldest, st.At) + ")"
	}
	parts := []string{group(r.Pending) + " pending"}
	if r.Stuck > 0 {
		parts = append(parts, group(r.Stuck)+" stuck")
	}
	if !r.Oldest.IsZero() {
		parts = append(parts, "oldest "+ago(r.Oldest, st.At))
	}
	v.Summary = strings.Join(parts, ", ")
	return v
}

// title is the page title of a migration.
func title(name string) string { return fmt.Sprintf("%s · cutover", name) }

// ceilingText describes the stage ceiling in force in st, or returns ""
// if none is.
func ceilingText(st expandcontract.Status) string {
	c := st.Ceiling
	if c == nil {
		return ""
	}
	s := fmt.Sprintf("no stage above %s until %s (%s left), set by trigger %s on %s", c.Stage, stamp(c.Until),
		human(c.Until.Sub(st.At)), c.Trigger, c.Instance)
	if c.Figures != "" {
		s += ": " + c.Figures
	}
	return s
}
