package backfill

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReplicaStatus(t *testing.T) {
	v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	null := sql.NullString{}
	mariadb := []string{"Connection_name", "Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master"}
	mysql8 := []string{"Replica_IO_Running", "Replica_SQL_Running", "Seconds_Behind_Source", "Channel_Name"}
	for _, tc := range []struct {
		name    string
		cols    []string
		rows    [][]sql.NullString
		want    time.Duration
		wantErr string
	}{
		{"one source", mariadb, [][]sql.NullString{{v(""), v("Yes"), v("Yes"), v("12")}}, 12 * time.Second, ""},
		{"the worst of several sources", mariadb,
			[][]sql.NullString{{v("a"), v("Yes"), v("Yes"), v("3")}, {v("b"), v("Yes"), v("Yes"), v("40")}}, 40 * time.Second, ""},
		{"MySQL 8 names", mysql8, [][]sql.NullString{{v("Yes"), v("Yes"), v("0"), v("")}}, 0, ""},
		{"threads stopped", mariadb, [][]sql.NullString{{v("b"), v("No"), v("Yes"), null}}, 0,
			`replication of source "b" reports no lag (Seconds_Behind_Master is NULL; IO thread "No", SQL thread "Yes")`},
		{"not a replica", mariadb, nil, 0, "not a replica: its replica status has no row"},
		{"no lag column", []string{"Slave_IO_Running"}, nil, 0, "no column Seconds_Behind_Master or Seconds_Behind_Source among 1 columns"},
		{"not a number", mariadb, [][]sql.NullString{{v(""), v("Yes"), v("Yes"), v("soon")}}, 0,
			`replication: Seconds_Behind_Master is "soon", not a number of seconds`},
		{"short row", mariadb, [][]sql.NullString{{v("")}}, 0, "a row of 1 values for 4 columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseReplicaStatus(tc.cols, tc.rows)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestLagCheckHysteresis feeds the decision of the lag throttle lags in
// turn: it holds the backfill over the bound, and lets it go again only
// once the lag fell to three quarters of it.
func TestLagCheckHysteresis(t *testing.T) {
	l := &lagThrottle{lagConfig: lagConfig{max: 4 * time.Second, maxBytes: 1000}}
	for i, tc := range []struct {
		lag   time.Duration
		bytes int64
		want  string
	}{
		{time.Second, 10, ""},
		{5 * time.Second, 10, "replica lag 5s > 4s on r"},
		{3500 * time.Millisecond, 10, "replica lag 4s > 3s on r"}, // 3.5s rounds to 4s; the bound is 3s now
		{3 * time.Second, 10, ""},
		{3500 * time.Millisecond, 10, ""},
		{0, 1001, "replica replay 1001 bytes behind > 1000 on r"},
		{0, 800, "replica replay 800 bytes behind > 750 on r"},
		{0, 750, ""},
	} {
		got := l.decide([]replicaLag{{where: "r", lag: tc.lag, bytes: tc.bytes}})
		assert.Equal(t, tc.want, got, "step %d", i)
	}
}
