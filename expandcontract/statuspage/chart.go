package statuspage

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
)

// A chart is a small line chart of one series over the recent past, drawn
// on the server as inline SVG, so that the page needs no script. Its
// geometry, in SVG user units:
const (
	chartW      = 320
	chartH      = 120
	chartLeft   = 36 // room for the labels of the value axis
	chartRight  = 8
	chartTop    = 10
	chartBottom = 20 // room for the labels of the time axis
)

// point is one value of a series at one time.
type point struct {
	at time.Time
	v  float64
}

// chartView is what the chart template draws.
type chartView struct {
	ID, Label string // the svg element's id, and its accessible name
	Empty     bool   // no point to draw: the chart says so
	Line      string // the polyline's points, "x,y x,y ..."
	Area      string // the polygon under the line
	LastX     string // where the last point is drawn
	LastY     string
	YMax      string // the value at the top of the value axis
	From, To  string // the labels of the ends of the time axis
	Caption   string // the latest value and the span, in words
	// The frame, fixed: in the view so that the template holds no numbers.
	W, H, X0, X1, Y0, Y1 int
	YMaxY, TimeY         int
}

// newChart returns the chart of pts, oldest first, over the span from the
// first point to now. The value axis is labelled short ([compact]); the
// caption writes the last value with format, followed by unit.
func newChart(id, label string, pts []point, now time.Time, format func(float64) string, unit string) chartView {
	c := chartView{ID: id, Label: label, W: chartW, H: chartH,
		X0: chartLeft, X1: chartW - chartRight, Y0: chartTop, Y1: chartH - chartBottom,
		YMaxY: chartTop + 4, TimeY: chartH - 6}
	if len(pts) == 0 {
		c.Empty = true
		c.YMax, c.From, c.To = compact(1), "", "now"
		c.Caption = label + ": no samples yet"
		return c
	}
	from, to := pts[0].at, now
	if last := pts[len(pts)-1].at; last.After(to) {
		to = last
	}
	span := to.Sub(from)
	if span <= 0 {
		span = time.Second
	}
	top := 0.0
	for _, p := range pts {
		top = max(top, p.v)
	}
	ymax := niceCeil(top)
	c.YMax = compact(ymax)
	c.From, c.To = "−"+human(span), "now"
	x := func(t time.Time) float64 {
		return chartLeft + float64(t.Sub(from))/float64(span)*float64(chartW-chartLeft-chartRight)
	}
	y := func(v float64) float64 {
		v = min(max(v, 0), ymax)
		return float64(chartTop) + (1-v/ymax)*float64(chartH-chartTop-chartBottom)
	}
	var line strings.Builder
	for i, p := range pts {
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(coord(x(p.at)) + "," + coord(y(p.v)))
	}
	c.Line = line.String()
	base := coord(float64(chartH - chartBottom))
	last := pts[len(pts)-1]
	c.Area = c.Line + " " + coord(x(last.at)) + "," + base + " " + coord(x(pts[0].at)) + "," + base
	c.LastX, c.LastY = coord(x(last.at)), coord(y(last.v))
	c.Caption = label + ": " + format(last.v) + " " + unit + " now, over the last " + human(span)
	return c
}

// coord writes one coordinate, to a tenth of a unit.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceCeil returns the smallest of 1, 2 and 5 times a power of ten that is
// at least v, and 1 for v of 0 or less: the top of a value axis.
func niceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// rateSeries returns the backfill's rate, rows per second, between each
// two consecutive samples, at the later one's time.
func rateSeries(samples []expandcontract.Sample) []point {
	var pts []point
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		dt := b.At.Sub(a.At).Seconds()
		if dt <= 0 {
			continue
		}
		pts = append(pts, point{at: b.At, v: max(0, float64(b.Rows-a.Rows)/dt)})
	}
	return pts
}

// backlogSeries returns the repair backlog's pending entries over time.
func backlogSeries(h []expandcontract.BacklogSample) []point {
	pts := make([]point, len(h))
	for i, s := range h {
		pts[i] = point{at: s.At, v: float64(s.Pending)}
	}
	return pts
}
