package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// counts are the totals, so far, of the library's counters that the
// summary shows.
type counts struct {
	mismatches int64 // cutover.shadowread.mismatches
	recorded   int64 // keys the writes and reads recorded for repair
	repaired   int64 // repair-log entries the repairer completed
}

func readMetrics(ctx context.Context, r *sdkmetric.ManualReader) counts {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(ctx, &rm); err != nil {
		return counts{}
	}
	sum := func(name, key, value string) int64 {
		var total int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
					for _, p := range d.DataPoints {
						if v, ok := p.Attributes.Value(attribute.Key(key)); key == "" || ok && v.Emit() == value {
							total += p.Value
						}
					}
				}
			}
		}
		return total
	}
	return counts{
		mismatches: sum("cutover.shadowread.mismatches", "", ""),
		recorded:   sum("cutover.dualwrite.repairs", "", "") + sum("cutover.shadowread.mismatches", "", ""),
		repaired:   sum("cutover.expandcontract.repairs.done", "cutover.reason", "repaired"),
	}
}
