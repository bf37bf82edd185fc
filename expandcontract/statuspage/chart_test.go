package statuspage

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
)

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ v, want float64 }{
		{0, 1}, {-5, 1}, {0.3, 0.5}, {1, 1}, {1.01, 2}, {2, 2}, {3, 5}, {7, 10}, {10, 10}, {11, 20},
		{120, 200}, {4999, 5000}, {5001, 10000},
	} {
		assert.InDelta(t, tc.want, niceCeil(tc.v), tc.want*1e-9, "niceCeil(%v)", tc.v)
	}
}

func TestRateSeries(t *testing.T) {
	s := []expandcontract.Sample{
		{At: at, Rows: 0},
		{At: at.Add(10 * time.Second), Rows: 1000},
		{At: at.Add(10 * time.Second), Rows: 1200}, // same time: skipped
		{At: at.Add(30 * time.Second), Rows: 1200},
		{At: at.Add(40 * time.Second), Rows: 500}, // fewer rows: drawn as 0, never below
	}
	assert.Equal(t, []point{
		{at.Add(10 * time.Second), 100},
		{at.Add(30 * time.Second), 0},
		{at.Add(40 * time.Second), 0},
	}, rateSeries(s))
	assert.Empty(t, rateSeries(s[:1]))
	assert.Empty(t, rateSeries(nil))
}

// TestChartInFrame: every point of a chart lies in its frame, the first at
// its left edge and the highest at its top.
func TestChartInFrame(t *testing.T) {
	pts := []point{{at, 3}, {at.Add(time.Minute), 40}, {at.Add(2 * time.Minute), 12}}
	c := newChart("c", "Things", pts, at.Add(4*time.Minute), rate, "things")
	require.False(t, c.Empty)
	assert.Equal(t, "50", c.YMax)
	assert.Equal(t, "−4m 00s", c.From)
	assert.Equal(t, "Things: 12 things now, over the last 4m 00s", c.Caption)
	assert.Equal(t, "50k", newChart("c", "Things", []point{{at, 40000}}, at, rate, "things").YMax)
	xy := strings.Fields(c.Line)
	require.Len(t, xy, 3)
	for i, p := range xy {
		x, y, ok := strings.Cut(p, ",")
		require.True(t, ok)
		xf, err := strconv.ParseFloat(x, 64)
		require.NoError(t, err)
		yf, err := strconv.ParseFloat(y, 64)
		require.NoError(t, err)
		assert.True(t, xf >= float64(c.X0) && xf <= float64(c.X1), "x of point %d: %v", i, xf)
		assert.True(t, yf >= float64(c.Y0) && yf <= float64(c.Y1), "y of point %d: %v", i, yf)
	}
	assert.Equal(t, coord(chartLeft)+","+coord(chartTop+(1-3.0/50)*(chartH-chartTop-chartBottom)), xy[0])
	assert.True(t, strings.HasPrefix(c.Area, c.Line+" "))
	assert.Equal(t, c.LastX+","+c.LastY, xy[2])

	// A point after now moves the end of the span, never out of the frame.
	c = newChart("c", "Things", []point{{at, 1}, {at.Add(time.Minute), 1}}, at, compact, "things")
	assert.Equal(t, coord(chartW-chartRight)+","+coord(chartTop), strings.Fields(c.Line)[1])

	// One point at now: the span is never empty.
	c = newChart("c", "Things", []point{{at, 0}}, at, compact, "things")
	assert.False(t, c.Empty)
	assert.Equal(t, "1", c.YMax)

	c = newChart("c", "Things", nil, at, compact, "things")
	assert.True(t, c.Empty)
	assert.Equal(t, "Things: no samples yet", c.Caption)
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 999 * time.Millisecond: "<1s", 42 * time.Second: "42s", 200 * time.Second: "3m 20s",
		2*time.Hour + 5*time.Minute + 59*time.Second: "2h 05m", 76 * time.Hour: "3d 4h", -5 * time.Second: "5s",
	} {
		assert.Equal(t, want, human(d), "%v", d)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 123456789: "123,456,789"} {
		assert.Equal(t, want, group(n), "%d", n)
	}
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 800: "800", 1500: "1.5k", 20000: "20k", 3e6: "3M", 2e9: "2G"} {
		assert.Equal(t, want, compact(v), "%v", v)
	}
	for v, want := range map[float64]string{0.25: "0.2", 9.96: "10.0", 12.4: "12", 12345.6: "12,346"} {
		assert.Equal(t, want, rate(v), "%v", v)
	}
	assert.Equal(t, "in 20s", ago(at.Add(20*time.Second), at))
	assert.Equal(t, "1m 00s ago", ago(at.Add(-time.Minute), at))
}
