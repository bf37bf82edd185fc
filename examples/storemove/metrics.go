package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// counts are the library's cumulative counters that the table shows.
type counts struct {
	newErrors  int64 // calls to the new store that failed, from the duration histograms
	refused    int64 // calls to the new store that its breaker refused
	recorded   int64 // keys the writer recorded for repair
	compared   int64 // shadow comparisons, whatever their result
	mismatches int64 // shadow comparisons that found the stores apart
	writeFalls int64 // writes the old store took because the new one failed
	readFalls  int64 // reads the old store answered because the new one failed
	dropped    int64 // comparisons dropped because too many were running
}

// sub returns the counts accumulated between before and c.
func (c counts) sub(before counts) counts {
	return counts{
		newErrors:  c.newErrors - before.newErrors,
		refused:    c.refused - before.refused,
		recorded:   c.recorded - before.recorded,
		compared:   c.compared - before.compared,
		mismatches: c.mismatches - before.mismatches,
		writeFalls: c.writeFalls - before.writeFalls,
		readFalls:  c.readFalls - before.readFalls,
		dropped:    c.dropped - before.dropped,
	}
}

// collect reads the current value of every counter from reader.
func collect(ctx context.Context, reader *sdkmetric.ManualReader) (counts, error) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return counts{}, err
	}
	failed := func(s attribute.Set) bool {
		store, _ := s.Value("cutover.store")
		outcome, _ := s.Value("cutover.outcome")
		switch outcome.AsString() {
		case "error", "timeout", "panic":
			return store.AsString() == "new"
		}
		return false
	}
	return counts{
		newErrors:  total(rm, "cutover.dualwrite.duration", failed) + total(rm, "cutover.shadowread.duration", failed),
		refused:    total(rm, "cutover.breaker.rejections", nil),
		recorded:   total(rm, "cutover.dualwrite.repairs", nil),
		compared:   total(rm, "cutover.shadowread.comparisons", nil),
		mismatches: total(rm, "cutover.shadowread.mismatches", nil),
		writeFalls: total(rm, "cutover.dualwrite.fallbacks", nil),
		readFalls:  total(rm, "cutover.shadowread.fallbacks", nil),
		dropped:    total(rm, "cutover.shadowread.dropped", nil),
	}, nil
}

// total adds up the data points of the metric name whose attributes match
// (all of them if match is nil): the values of a counter, the number of
// recordings of a histogram.
func total(rm metricdata.ResourceMetrics, name string, match func(attribute.Set) bool) int64 {
	var n int64
	ok := func(s attribute.Set) bool { return match == nil || match(s) }
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if ok(dp.Attributes) {
						n += dp.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					if ok(dp.Attributes) {
						n += int64(dp.Count)
					}
				}
			}
		}
	}
	return n
}
