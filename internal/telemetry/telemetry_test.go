package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(time.Second, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow(); !ok {
			t.Fatalf("event %d of the burst was held back", i)
		}
	}
	for range 5 {
		if ok, _ := l.Allow(); ok {
			t.Fatal("an event beyond the burst went through")
		}
	}
	now = now.Add(time.Second)
	ok, suppressed := l.Allow()
	if !ok || suppressed != 5 {
		t.Fatalf("after a second: ok=%v suppressed=%d, want true 5", ok, suppressed)
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("one token a second, not two")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow(); !ok {
			t.Fatalf("the burst refills only up to its size: event %d held back", i)
		}
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("the burst grew past its size")
	}
	var zero *Limiter
	if ok, _ := zero.Allow(); ok {
		t.Fatal("a nil limiter lets nothing through")
	}
}

func TestSettings(t *testing.T) {
	var p Providers
	var nilMeter *sdkmetric.MeterProvider
	for _, tc := range []struct {
		s    Setting
		want string
	}{
		{Meter(nil), "WithMeterProvider: nil meter provider"},
		{Meter(nilMeter), "WithMeterProvider: nil meter provider"},
		{Tracer(nil), "WithTracerProvider: nil tracer provider"},
		{Logger(nil), "WithLogger: nil logger"},
	} {
		if err := tc.s(&p); err == nil || err.Error() != tc.want {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	if p != (Providers{}) {
		t.Fatalf("a refused setting changed the providers: %+v", p)
	}
	mp, tp, lg := noop.NewMeterProvider(), tracenoop.NewTracerProvider(), slog.New(slog.DiscardHandler)
	for _, s := range []Setting{Meter(mp), Tracer(tp), Logger(lg)} {
		if err := s(&p); err != nil {
			t.Fatal(err)
		}
	}
	if p.Meter != mp || p.Tracer != tp || p.Logger != lg {
		t.Fatalf("settings not applied: %+v", p)
	}
}

// TestChild checks that work under a span that is not recording, such as
// the span of a backfill run without a tracer provider, gets no span and
// allocates nothing, and that work under a recording span gets a child.
func TestChild(t *testing.T) {
	opt := trace.WithAttributes(KeyMigration.String("m"))
	for name, tp := range map[string]trace.TracerProvider{"global": otel.GetTracerProvider(), "noop": tracenoop.NewTracerProvider()} {
		tracer := tp.Tracer("test")
		ctx, run := tracer.Start(context.Background(), "run")
		if run.IsRecording() {
			t.Fatalf("%s: the run's span records", name)
		}
		allocs := testing.AllocsPerRun(100, func() {
			c, span := Child(ctx, tracer, "batch", opt)
			if c != ctx || span != NoSpan {
				t.Fatalf("%s: a span was started under a span that does not record", name)
			}
			EndSpan(span, OK.String(), nil)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per untraced child, want 0", name, allocs)
		}
	}

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, run := tp.Tracer("test").Start(context.Background(), "run")
	_, span := Child(ctx, tp.Tracer("test"), "batch", opt)
	EndSpan(span, Error.String(), errors.New("boom"), KeyRows.Int(3))
	run.End()
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "batch" || ended[0].Parent().SpanID() != run.SpanContext().SpanID() {
		t.Fatalf("spans %v, want the batch under the run", ended)
	}
	got := map[attribute.Key]string{}
	for _, kv := range ended[0].Attributes() {
		got[kv.Key] = kv.Value.Emit()
	}
	want := map[attribute.Key]string{KeyMigration: "m", KeyOutcome: "error", KeyRows: "3"}
	if !maps.Equal(got, want) || ended[0].Status().Code != codes.Error || ended[0].Status().Description != "boom" {
		t.Errorf("batch: attributes %v, status %v; want %v and error boom", got, ended[0].Status(), want)
	}
}
