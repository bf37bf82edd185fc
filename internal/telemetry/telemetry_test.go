package telemetry

import (
	"testing"
	"time"
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
