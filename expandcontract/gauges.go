package expandcontract

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// gauges are the observable gauges of a store opened with
// [WithMeterProvider]: the figures of [Status] for every migration.
type gauges struct {
	phase, rows, total, clean, diffs, pending, stuck, instances, throttled, ceiling metric.Int64ObservableGauge
	rate, eta, age                                                                  metric.Float64ObservableGauge
}

// registerGauges creates the store's gauges and registers the one callback
// that reads the metadata for all of them.
func (s *Store) registerGauges() error {
	var g gauges
	m := s.meter
	var err error
	i64 := func(dst *metric.Int64ObservableGauge, name, desc, unit string) {
		if err == nil {
			*dst, err = m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		}
	}
	f64 := func(dst *metric.Float64ObservableGauge, name, desc, unit string) {
		if err == nil {
			*dst, err = m.Float64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		}
	}
	i64(&g.phase, "cutover.expandcontract.status.phase",
		"The phase of the migration: 0 expand, 1 dualwrite, 2 backfill, 3 switchreads, 4 contract.", "{phase}")
	i64(&g.rows, "cutover.expandcontract.status.backfill.rows", "Rows the backfill has copied, as recorded.", "{row}")
	i64(&g.total, "cutover.expandcontract.status.backfill.total", "Rows the backfill is estimated to copy in all.", "{row}")
	i64(&g.throttled, "cutover.expandcontract.status.backfill.throttled",
		"1 while a throttle holds the backfill's runner before its next batch, such as for replication lag; 0 otherwise.", "1")
	f64(&g.rate, "cutover.expandcontract.status.backfill.rate",
		"Rows per second the backfill's runner copied over its recent batches; 0 if none copied lately.", "{row}/s")
	f64(&g.eta, "cutover.expandcontract.status.backfill.eta",
		"Time left of the backfill at its rate; 0 if done or unknown.", "s")
	f64(&g.age, "cutover.expandcontract.status.verification.age",
		"Time since the last verification; reported once there is one.", "s")
	i64(&g.clean, "cutover.expandcontract.status.verification.clean",
		"1 if the last verification found no difference, 0 if it did; reported once there is one.", "1")
	i64(&g.diffs, "cutover.expandcontract.status.verification.differences",
		"Keys the last verification found to differ; reported once there is one.", "{key}")
	i64(&g.pending, "cutover.expandcontract.status.repairs.pending",
		"Repair-log entries not repaired yet, the stuck ones included.", "{entry}")
	i64(&g.stuck, "cutover.expandcontract.status.repairs.stuck",
		"Repair-log entries that used up their attempts and wait to be retried.", "{entry}")
	i64(&g.instances, "cutover.expandcontract.status.instances",
		"Instances that reported a stage within the instance window, by the stage they resolve.", "{instance}")
	i64(&g.ceiling, "cutover.expandcontract.status.ceiling",
		"The stage ceiling in force: 0 off, 1 dualwrite, 2 shadow, 3 live, 4 rampdown; -1 if none is.", "{stage}")
	if err != nil {
		return err
	}
	s.gauges, err = m.RegisterCallback(g.observe(s), g.phase, g.rows, g.total, g.rate, g.eta, g.age, g.clean, g.diffs,
		g.pending, g.stuck, g.instances, g.throttled, g.ceiling)
	return err
}

// observe returns the callback that reads the status of every migration
// of s, with four statements, and reports it. A migration whose row is
// corrupt is left out, and so is an instance whose stage is, with a
// warning logged at most once a minute, so that the others are reported.
func (g *gauges) observe(s *Store) metric.Callback {
	logs := telemetry.NewLimiter(time.Minute, 1, nil)
	skip := func(err error) {
		if ok, suppressed := logs.Allow(); ok {
			s.m.Logger.Warn("cutover: status gauges leave out corrupt metadata", "err", err, "suppressed", suppressed)
		}
	}
	return func(ctx context.Context, o metric.Observer) error {
		sts, err := s.statuses(ctx, "", false, skip)
		if err != nil {
			return fmt.Errorf("expandcontract: status gauges: %w", err)
		}
		for _, st := range sts {
			mig := telemetry.KeyMigration.String(st.State.Name)
			attrs := metric.WithAttributeSet(attribute.NewSet(mig))
			b := st.State.Backfill
			o.ObserveInt64(g.phase, int64(st.State.Phase), attrs)
			o.ObserveInt64(g.rows, b.Rows, attrs)
			o.ObserveInt64(g.total, b.Total, attrs)
			o.ObserveInt64(g.throttled, int64(meta.BoolInt(b.Throttled != "")), attrs)
			o.ObserveFloat64(g.rate, st.Backfill.Rate, attrs)
			o.ObserveFloat64(g.eta, st.Backfill.ETA.Seconds(), attrs)
			if v := st.State.Verification; !v.At.IsZero() {
				o.ObserveFloat64(g.age, st.VerificationAge.Seconds(), attrs)
				o.ObserveInt64(g.clean, int64(meta.BoolInt(v.Clean)), attrs)
				o.ObserveInt64(g.diffs, v.Differences, attrs)
			}
			ceiling := int64(-1)
			if st.Ceiling != nil {
				ceiling = int64(st.Ceiling.Stage)
			}
			o.ObserveInt64(g.ceiling, ceiling, attrs)
			o.ObserveInt64(g.pending, st.Repairs.Pending, attrs)
			o.ObserveInt64(g.stuck, st.Repairs.Stuck, attrs)
			for _, stage := range cutover.Stages {
				o.ObserveInt64(g.instances, int64(st.ByStage[stage]),
					metric.WithAttributeSet(attribute.NewSet(mig, telemetry.KeyStage.String(stage.String()))))
			}
		}
		return nil
	}
}

// Close unregisters the gauges that [Open] registered for
// [WithMeterProvider]. It closes no database and stops nothing else: the
// store, and the handles of its migrations, work on, without the gauges.
// Close is safe to call more than once, and on a store without gauges.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.gauges != nil {
			if err = s.gauges.Unregister(); err != nil {
				err = fmt.Errorf("expandcontract: unregister the status gauges: %w", err)
			}
		}
	})
	return err
}
