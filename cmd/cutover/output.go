package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
)

// writeJSON prints v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statusParts are the backfill and the running verification of a status,
// as the library's document of a status (docs/status.md) writes them.
type statusParts struct {
	Backfill  json.RawMessage `json:"backfill"`
	Verifying json.RawMessage `json:"verifying"`
}

// partsOf returns the parts of the document of s.
func partsOf(s expandcontract.Status) (statusParts, error) {
	var p statusParts
	b, err := json.Marshal(s)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	return p, err
}

// table prints rows under header, in columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields prints name-value pairs in two columns.
func fields(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}

// timeOrNil returns &t, or nil for the zero time, for an optional JSON
// time.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// when shows t for people, with how long ago it was from now: "2026-12-02
// 03:51:00Z (5m ago)", or "-" for the zero time.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + ago(t, now) + ")"
}

// ago shows how long before now t was: "5m ago", or "in 3s" for a time to
// come.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + short(-d)
	}
	return short(d) + " ago"
}

// short shows d rounded for people: "850ms", "42s", "5m30s", "3h5m", "2d4h".
func short(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return trimZeroSeconds(d.Round(time.Second).String())
	case d < 48*time.Hour:
		return trimZeroSeconds(d.Round(time.Minute).String())
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}

// trimZeroSeconds drops the "0s" of "5m0s".
func trimZeroSeconds(s string) string {
	if strings.HasSuffix(s, "m0s") {
		return s[:len(s)-2]
	}
	return s
}

// seconds returns d in seconds, the unit of durations in JSON.
func seconds(d time.Duration) float64 { return d.Seconds() }

// plural shows n and what it counts: "1 difference", "3 differences".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// orDash returns s, or "-" if it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine makes s fit on one line of a table: newlines and tabs become
// spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
