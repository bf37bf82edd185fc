package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/cutover-go/cutover/expandcontract/repair"
)

var repairsListCommand = &command{
	name: "repairs list", args: "MIGRATION", min: 1, max: 1,
	summary: "the pending entries of the repair log",
	about: "Repairs list prints the pending entries of the migration's repair log, in the order they were\n" +
		"first recorded: the keys the dual writes, shadow reads and verifications left apart, with their\n" +
		"attempts and last error. An entry is stuck once it used up its attempts; it waits for\n" +
		"'cutover repairs retry'.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		stuck := fs.Bool("stuck", false, "list only the stuck entries")
		limit := fs.Int("limit", 100, "list at most N entries")
		after := fs.Int64("after", 0, "list only entries whose ID is greater, to page through a long log")
		return func(c *call) error {
			switch {
			case *limit < 1:
				return usageErrorf("--limit must be positive, got %d", *limit)
			case *after < 0:
				return usageErrorf("--after must not be negative, got %d", *after)
			}
			log, err := c.repairLog(c.args[0])
			if err != nil {
				return err
			}
			var entries []repair.Entry
			for q := (repair.Query{AfterID: *after, Limit: *limit}); len(entries) < *limit; {
				page, err := log.Entries(c.ctx, q)
				if err != nil {
					return err
				}
				for _, e := range page {
					if (!*stuck || e.Stuck) && len(entries) < *limit {
						entries = append(entries, e)
					}
				}
				if len(page) < q.Limit || !*stuck {
					break
				}
				q.AfterID = page[len(page)-1].ID
			}
			return printRepairs(c, log.Name(), entries)
		}
	},
}

// entryJSON is an entry of the repair log in JSON.
type entryJSON struct {
	ID            int64      `json:"id"`
	Op            string     `json:"op"`
	Key           string     `json:"key"`
	Target        string     `json:"target"`
	Stage         string     `json:"stage"`
	Reason        string     `json:"reason"`
	Error         string     `json:"error"`
	FirstRecorded time.Time  `json:"first_recorded"`
	LastRecorded  time.Time  `json:"last_recorded"`
	Records       int64      `json:"records"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	Stuck         bool       `json:"stuck"`
}

func printRepairs(c *call, name string, entries []repair.Entry) error {
	if c.json {
		out := struct {
			Migration string      `json:"migration"`
			Entries   []entryJSON `json:"entries"`
		}{Migration: name, Entries: make([]entryJSON, len(entries))}
		for i, e := range entries {
			errText := ""
			if e.Repair.Err != nil {
				errText = e.Repair.Err.Error()
			}
			out.Entries[i] = entryJSON{ID: e.ID, Op: e.Repair.Op, Key: e.Repair.Key, Target: e.Repair.Target.String(),
				Stage: e.Repair.Stage.String(), Reason: string(e.Repair.Reason), Error: errText,
				FirstRecorded: e.FirstRecorded.UTC(), LastRecorded: e.Repair.Time.UTC(), Records: e.Records,
				Attempts: e.Attempts, NextAttemptAt: timeOrNil(e.NextAttemptAt), LastError: e.LastError, Stuck: e.Stuck}
		}
		return writeJSON(c.out(), out)
	}
	now := time.Now()
	rows := make([][]string, len(entries))
	for i, e := range entries {
		next := when(e.NextAttemptAt, now)
		switch {
		case e.Stuck:
			next = "stuck"
		case !e.NextAttemptAt.After(now):
			next = "due"
		}
		rows[i] = []string{strconv.FormatInt(e.ID, 10), e.Repair.Op, strconv.Quote(e.Repair.Key), e.Repair.Target.String(),
			string(e.Repair.Reason), strconv.Itoa(e.Attempts), strconv.FormatInt(e.Records, 10),
			when(e.FirstRecorded, now), next, orDash(oneLine(e.LastError))}
	}
	return table(c.out(), []string{"ID", "OP", "KEY", "TARGET", "REASON", "ATTEMPTS", "RECORDS", "FIRST RECORDED", "NEXT", "LAST ERROR"}, rows)
}

var repairsRetryCommand = &command{
	name: "repairs retry", args: "MIGRATION", min: 1, max: 1,
	summary: "make the stuck entries of the repair log due again",
	about: "Repairs retry makes every stuck entry of the migration's repair log due at once, with its\n" +
		"attempts counted from zero, as repair.Log.RetryStuck does. Run it once the cause of their\n" +
		"failures is fixed; the service's repairers then take them.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		return func(c *call) error {
			log, err := c.repairLog(c.args[0])
			if err != nil {
				return err
			}
			n, err := log.RetryStuck(c.ctx)
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.out(), struct {
					Migration string `json:"migration"`
					Retried   int64  `json:"retried"`
				}{log.Name(), n})
			}
			fmt.Fprintf(c.out(), "%s: %s due again\n", log.Name(), plural(n, "stuck entry", "stuck entries"))
			return nil
		}
	},
}

// repairLog returns the repair log of the migration name, which must
// exist.
func (c *call) repairLog(name string) (*repair.Log, error) {
	m, _, err := c.migration(name)
	if err != nil {
		return nil, err
	}
	return repair.NewLog(m)
}
