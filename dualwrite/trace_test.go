package dualwrite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/internal/testutil"
)

func TestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	stores := dualwritetest.NewPair[string]()
	stage := cutover.Shadow
	w, err := dualwrite.New("users.save", cutover.StageFunc(func(context.Context) cutover.Stage { return stage }),
		new(cutover.MemoryRepairLog), dualwrite.WithTracerProvider(tp), dualwrite.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	save := func(ctx context.Context) {
		require.NoError(t, w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
			return stores.Side(side).Put(ctx, "42", "Ada")
		}))
	}

	save(t.Context())
	assert.Empty(t, rec.Ended(), "a request that is not traced gets no spans")

	ctx, parent := tp.Tracer("test").Start(t.Context(), "request")
	save(ctx)
	stage = cutover.Off
	save(ctx)
	parent.End()

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	require.Len(t, byName, 4, "request, the write and one child per store; off adds none")
	op := byName["dualwrite users.save"]
	require.NotNil(t, op)
	assert.Equal(t, parent.SpanContext().SpanID(), op.Parent().SpanID())
	for _, child := range []string{"users.save old", "users.save new"} {
		require.Contains(t, byName, child)
		assert.Equal(t, op.SpanContext().SpanID(), byName[child].Parent().SpanID())
	}
}
