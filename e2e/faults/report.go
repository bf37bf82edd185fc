package faults

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is the line of the report for one window of the walk, or a sum of
// windows.
type Row struct {
	DB, Stage, Fault string
	Duration         time.Duration

	Writes, Acked, WriteErrs int64 // writes attempted, acknowledged, failed
	Reads, ReadErrs          int64
	Foreign                  int64 // caller errors not from the authoritative store: must be 0
	Unrecorded               int64 // caller errors because the repair log failed to record the key
	Stale                    int64 // reads of a worker's own key older than its last acknowledged write
	Lost                     int64 // acknowledged writes missing at the checks: must be 0

	P50, P99, Max time.Duration // caller latency, reads and writes

	Fallbacks  int64 // calls the old store answered because the authoritative new one failed or was refused
	Refused    int64 // new-store calls the breaker refused
	Opened     int64 // times the breaker opened
	Mismatches int64 // shadow reads that found the stores apart
	Recorded   int64 // keys recorded in the repair log
	Repaired   int64 // repair-log entries the repairer marked done
}

// ErrorRate returns the share of operations whose caller got an error.
func (r Row) ErrorRate() float64 {
	n := r.Writes + r.Reads
	if n == 0 {
		return 0
	}
	return float64(r.WriteErrs+r.ReadErrs) / float64(n)
}

// Add adds the counts of o to r, keeping the larger latencies: a sum of
// windows reports the worst window's p99.
func (r *Row) Add(o Row) {
	r.Duration += o.Duration
	r.Writes += o.Writes
	r.Acked += o.Acked
	r.WriteErrs += o.WriteErrs
	r.Reads += o.Reads
	r.ReadErrs += o.ReadErrs
	r.Foreign += o.Foreign
	r.Unrecorded += o.Unrecorded
	r.Stale += o.Stale
	r.Lost += o.Lost
	r.P50, r.P99, r.Max = max(r.P50, o.P50), max(r.P99, o.P99), max(r.Max, o.Max)
	r.Fallbacks += o.Fallbacks
	r.Refused += o.Refused
	r.Opened += o.Opened
	r.Mismatches += o.Mismatches
	r.Recorded += o.Recorded
	r.Repaired += o.Repaired
}

// Report is the result of the walk on one database.
type Report struct {
	DB      string
	Windows []Row
	// Summary lines: totals, the checks at the end, the settings.
	Notes []string
}

// ByFault sums the windows of each fault over the stages, in the order the
// faults first appear.
func (r *Report) ByFault() []Row {
	var out []Row
	index := map[string]int{}
	for _, w := range r.Windows {
		i, ok := index[w.Fault]
		if !ok {
			i = len(out)
			index[w.Fault] = i
			out = append(out, Row{DB: w.DB, Stage: "all", Fault: w.Fault})
		}
		out[i].Add(w)
	}
	return out
}

// Total sums every window.
func (r *Report) Total() Row {
	t := Row{DB: r.DB, Stage: "all", Fault: "all"}
	for _, w := range r.Windows {
		t.Add(w)
	}
	return t
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

// writeTable writes rows as an aligned table.
func writeTable(b *strings.Builder, rows []Row) {
	tw := tabwriter.NewWriter(b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tfault\twrites\tacked\tw.err\treads\tr.err\terr%\tforeign\tunrec\tstale\tlost\tp50ms\tp99ms\tmaxms\tfallback\trefused\topened\tmismatch\trecorded\trepaired\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
			r.Stage, r.Fault, r.Writes, r.Acked, r.WriteErrs, r.Reads, r.ReadErrs, 100*r.ErrorRate(),
			r.Foreign, r.Unrecorded, r.Stale, r.Lost, ms(r.P50), ms(r.P99), ms(r.Max),
			r.Fallbacks, r.Refused, r.Opened, r.Mismatches, r.Recorded, r.Repaired)
	}
	tw.Flush()
}

// String renders the report: every window, then the sums per fault and in
// all, then the notes.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "== %s: every window ==\n", r.DB)
	writeTable(&b, r.Windows)
	fmt.Fprintf(&b, "\n== %s: per fault, over the stages (p50/p99/max: worst window) ==\n", r.DB)
	writeTable(&b, append(r.ByFault(), r.Total()))
	b.WriteString("\n")
	for _, n := range r.Notes {
		b.WriteString(n)
		b.WriteString("\n")
	}
	return b.String()
}
