// Package spantest reads the spans a test produced through an
// OpenTelemetry SDK tracer provider with a span recorder.
package spantest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Recorder keeps the spans of one test. It is safe for concurrent use.
type Recorder struct {
	rec      *tracetest.SpanRecorder
	provider *sdktrace.TracerProvider
}

// New returns a recorder whose provider samples every span and is shut
// down when the test ends.
func New(tb testing.TB) *Recorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{rec: rec, provider: tp}
}

// Provider returns the tracer provider to hand to the code under test.
func (r *Recorder) Provider() trace.TracerProvider { return r.provider }

// Ended returns the spans ended so far, in the order they ended.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Named returns the spans named name ended so far, in the order they
// ended.
func (r *Recorder) Named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Reset forgets the spans ended so far.
func (r *Recorder) Reset() { r.rec.Reset() }

// Attrs returns the attributes of s, each value as its Emit method gives
// it.
func Attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := make(map[string]string, len(s.Attributes()))
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// ChildrenOf returns those of spans whose parent is parent.
func ChildrenOf(parent sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.Parent().TraceID() == parent.SpanContext().TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// Only returns the one span of spans, and fails the test, saying what was
// wanted, if there are none or more.
func Only(tb testing.TB, spans []sdktrace.ReadOnlySpan, what string) sdktrace.ReadOnlySpan {
	tb.Helper()
	if len(spans) != 1 {
		tb.Fatalf("spantest: %d spans, want one: %s", len(spans), what)
	}
	return spans[0]
}

// CheckError fails the test unless s ended with the status Error, a
// description containing text, and one exception event, as
// span.RecordError adds, whose message contains text.
func CheckError(tb testing.TB, s sdktrace.ReadOnlySpan, text string) {
	tb.Helper()
	if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, text) {
		tb.Errorf("spantest: span %s: status %v %q, want Error containing %q", s.Name(), s.Status().Code, s.Status().Description, text)
	}
	var messages []string
	for _, ev := range s.Events() {
		if ev.Name != semconv.ExceptionEventName {
			continue
		}
		for _, kv := range ev.Attributes {
			if kv.Key == semconv.ExceptionMessageKey {
				messages = append(messages, kv.Value.AsString())
			}
		}
	}
	if len(messages) != 1 || !strings.Contains(messages[0], text) {
		tb.Errorf("spantest: span %s: recorded errors %q, want one containing %q", s.Name(), messages, text)
	}
}
