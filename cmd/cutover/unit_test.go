package main

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"users-email", "--json"}, []string{"users-email"}, true},
		{[]string{"--json", "users-email", "backfill"}, []string{"users-email", "backfill"}, true},
		{[]string{"users-email", "--", "--json"}, []string{"users-email", "--json"}, false},
		{[]string{"-json=false", "a", "b", "-json"}, []string{"a", "b"}, true},
		{nil, nil, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		j := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tc.args)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.pos, pos, tc.args)
		assert.Equal(t, tc.json, *j, tc.args)
	}
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:                       "850ms",
		42*time.Second + 400*time.Millisecond:        "42s",
		5*time.Minute + 30*time.Second:               "5m30s",
		5 * time.Minute:                              "5m",
		3*time.Hour + 5*time.Minute + 10*time.Second: "3h5m",
		52 * time.Hour:                               "2d4h",
	} {
		assert.Equal(t, want, short(d), d)
	}
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	assert.Equal(t, "2026-12-02 03:55:00Z (5m ago)", when(now.Add(-5*time.Minute), now))
	assert.Equal(t, "in 30s", ago(now.Add(30*time.Second), now))
	assert.Equal(t, "-", when(time.Time{}, now))
}

func TestProgress(t *testing.T) {
	assert.Equal(t, "[#########.....................]  31%  3100/10000 rows", progress(3100, 10000))
	assert.Equal(t, "[##############################] 100%  10/10 rows", progress(10, 10))
	assert.Equal(t, "[##############################] 100%  12/10 rows", progress(12, 10), "an estimate the copy passed")
	assert.Equal(t, "250 rows", progress(250, 0))
}

func TestSQLiteDSN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	for dsn, want := range map[string]string{
		path: path + "?_pragma=busy_timeout(5000)",
		"file:" + path + "?_pragma=foreign_keys(1)": "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)",
		path + "?_pragma=busy_timeout(100)":         path + "?_pragma=busy_timeout(100)",
		"file:x?mode=memory":                        "file:x?mode=memory&_pragma=busy_timeout(5000)",
	} {
		got, err := sqliteDSN(dsn)
		require.NoError(t, err, dsn)
		assert.Equal(t, want, got)
	}
	_, err := sqliteDSN(filepath.Join(t.TempDir(), "missing.db"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestBackfillThrottledLine(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	var s expandcontract.Status
	s.At = now
	s.State.Backfill = expandcontract.BackfillState{Rows: 10, Total: 40, StartedAt: now.Add(-time.Minute),
		LeaseOwner: "web-1", LeaseUntil: now.Add(20 * time.Second), Throttled: "replica lag 12s > 5s on walreceiver (127.0.0.1:5433)"}
	assert.Equal(t, "[#######.......................]  25%  10/40 rows  throttled: replica lag 12s > 5s on walreceiver (127.0.0.1:5433)",
		backfillLine(s))
	assert.Equal(t, "25% of 40, throttled", backfillShort(s))
	parts, err := partsOf(s)
	require.NoError(t, err)
	var b struct{ Throttled string }
	require.NoError(t, json.Unmarshal(parts.Backfill, &b))
	assert.Equal(t, "replica lag 12s > 5s on walreceiver (127.0.0.1:5433)", b.Throttled)
}

func TestBackfillRangesLine(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	var s expandcontract.Status
	s.At = now
	s.State.Backfill = expandcontract.BackfillState{Rows: 20, Total: 40, StartedAt: now.Add(-time.Minute)}
	assert.Equal(t, "[###############...............]  50%  20/40 rows", backfillLine(s), "a backfill not split shows no ranges")
	assert.NotContains(t, string(backfillDoc(t, s)), `"ranges"`)

	s.Backfill.Ranges = expandcontract.Ranges{Total: 4, Done: 2, Leased: 2}
	assert.Equal(t, "[###############...............]  50%  20/40 rows  ranges 2/4 done, 2 leased", backfillLine(s))
	var b struct {
		Ranges *struct{ Total, Done, Leased int } `json:"ranges"`
	}
	require.NoError(t, json.Unmarshal(backfillDoc(t, s), &b))
	require.NotNil(t, b.Ranges)
	assert.Equal(t, [3]int{4, 2, 2}, [3]int{b.Ranges.Total, b.Ranges.Done, b.Ranges.Leased})
}

// backfillDoc returns the backfill of s's document, as the command prints it.
func backfillDoc(t *testing.T, s expandcontract.Status) json.RawMessage {
	t.Helper()
	parts, err := partsOf(s)
	require.NoError(t, err)
	return parts.Backfill
}
