package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
)

// watchJSON is one line of status --watch --json.
type watchJSON struct {
	Migration string `json:"migration"`
	At        string `json:"at"`
	Phase     string `json:"phase"`
	statusParts
	Ended string `json:"ended,omitempty"` // why the watch ended, on its last line
}

// watchStatus prints the progress of m's backfill, and of a verification
// of m while one runs, every interval until no verification runs and the
// backfill is done, canceled or not in its phase, or until the command is
// interrupted, which ends it without an error.
func watchStatus(c *call, m *expandcontract.Migration, interval time.Duration) error {
	redraw := c.env.terminal && !c.json
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s, err := readStatus(c, m)
		if err != nil {
			if c.ctx.Err() != nil {
				return endWatch(c, redraw)
			}
			return err
		}
		ended := ""
		if s.Verifying == nil {
			ended = watchEnded(s.State)
		}
		if c.json {
			var parts statusParts
			if parts, err = partsOf(s); err == nil {
				err = writeJSON1(c, watchJSON{Migration: m.Name(), At: s.At.UTC().Format(time.RFC3339Nano),
					Phase: s.State.Phase.String(), statusParts: parts, Ended: ended})
			}
		} else {
			line := m.Name() + ": " + backfillLine(s)
			if ended != "" && !s.State.Backfill.Done() {
				line += "  (" + ended + ")"
			}
			if s.Verifying != nil {
				line += "; verifying " + verifyingLine(s)
			}
			if redraw {
				_, err = fmt.Fprint(c.out(), "\r\033[K"+line)
			} else {
				_, err = fmt.Fprintln(c.out(), line)
			}
		}
		if err != nil {
			return err
		}
		if ended != "" {
			return endWatch(c, redraw)
		}
		select {
		case <-c.ctx.Done():
			return endWatch(c, redraw)
		case <-t.C:
		}
	}
}

// endWatch ends the redrawn line.
func endWatch(c *call, redraw bool) error {
	if redraw {
		fmt.Fprintln(c.out())
	}
	return nil
}

// watchEnded says why there is nothing more to watch, or "" while the
// backfill may go on.
func watchEnded(st expandcontract.State) string {
	switch {
	case st.Backfill.Done():
		return "done"
	case st.Backfill.Canceled:
		return "canceled"
	case st.Phase != expandcontract.Backfill:
		return "not in the backfill phase but in " + st.Phase.String()
	}
	return ""
}

// writeJSON1 prints v as JSON on one line.
func writeJSON1(c *call, v any) error { return json.NewEncoder(c.out()).Encode(v) }
