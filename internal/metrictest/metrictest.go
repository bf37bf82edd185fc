// Package metrictest reads the metrics a test produced through an
// OpenTelemetry SDK meter provider with a manual reader.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader collects the metrics of one test. It is safe for concurrent use.
type Reader struct {
	tb       testing.TB
	reader   *sdkmetric.ManualReader
	provider *sdkmetric.MeterProvider
}

// New returns a reader whose provider is shut down when the test ends.
func New(tb testing.TB) *Reader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &Reader{tb: tb, reader: r, provider: mp}
}

// Provider returns the meter provider to hand to the code under test.
func (r *Reader) Provider() metric.MeterProvider { return r.provider }

// Sum returns the total of the instrument name over the data points whose
// attribute key has value (all points if key is empty): the sum of a
// counter or up-down counter, the count of a histogram, the last value of a
// gauge.
func (r *Reader) Sum(name, key, value string) int64 {
	r.tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.tb.Fatalf("metrictest: collect: %v", err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes, key, value) {
						total += p.Value
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes, key, value) {
						total += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if has(p.Attributes, key, value) {
						total += int64(p.Count)
					}
				}
			}
		}
	}
	return total
}

func has(set attribute.Set, key, value string) bool {
	if key == "" {
		return true
	}
	v, ok := set.Value(attribute.Key(key))
	return ok && v.Emit() == value
}

// GaugePoints returns the data points of the int64 gauge name whose
// attribute key has value (all points if key is empty), as their values:
// none if the gauge reported nothing.
func (r *Reader) GaugePoints(name, key, value string) []int64 {
	r.tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.tb.Fatalf("metrictest: collect: %v", err)
	}
	var out []int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name {
				for _, p := range g.DataPoints {
					if has(p.Attributes, key, value) {
						out = append(out, p.Value)
					}
				}
			}
		}
	}
	return out
}
