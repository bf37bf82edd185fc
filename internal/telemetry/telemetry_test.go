package telemetry

import (
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
