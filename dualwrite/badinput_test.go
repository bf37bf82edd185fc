package dualwrite_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testutil"
)

// badStores counts the store calls of a write, by side.
type badStores struct{ calls [2]atomic.Int64 }

func (s *badStores) write(_ context.Context, side cutover.Side) error {
	s.calls[side].Add(1)
	return nil
}

func (s *badStores) counts() [2]int64 { return [2]int64{s.calls[0].Load(), s.calls[1].Load()} }

var badQuiet = dualwrite.WithLogger(testutil.Quiet())

// TestBadInputNew gives New every argument and option it refuses. Each
// fails, without a panic, with an error that starts "dualwrite: invalid
// input: ", wraps ErrInvalidInput and names the problem, and neither the
// stage source nor the repair log is ever called.
func TestBadInputNew(t *testing.T) {
	src, log := testutil.NewSource(cutover.DualWrite), &testutil.Log{}
	var (
		nilSource *testutil.Source
		nilFunc   cutover.StageFunc
		nilMeter  *sdkmetric.MeterProvider
		nilTracer *sdktrace.TracerProvider
	)
	type opts = []dualwrite.Option
	for _, tc := range []struct {
		name   string
		op     string
		stages cutover.StageSource
		log    cutover.RepairLog
		opts   opts
		want   string
	}{
		{"empty operation", "", src, log, nil, "dualwrite: invalid input: empty operation name"},
		{"nil stage source", "op", nil, log, nil, "dualwrite: invalid input: nil stage source"},
		{"typed nil stage source", "op", nilSource, log, nil, "dualwrite: invalid input: nil stage source"},
		{"nil stage func", "op", nilFunc, log, nil, "dualwrite: invalid input: nil stage source"},
		{"nil repair log", "op", src, nil, nil, "dualwrite: invalid input: nil repair log: failed secondary writes must be recorded somewhere"},
		{"zero timeout", "op", src, log, opts{dualwrite.WithTimeout(0)}, "dualwrite: invalid input: secondary timeout must be positive, got 0s"},
		{"negative timeout", "op", src, log, opts{dualwrite.WithTimeout(-time.Millisecond)}, "got -1ms"},
		{"zero record timeout", "op", src, log, opts{dualwrite.WithRecordTimeout(0)}, "record timeout must be positive, got 0s"},
		{"unknown policy", "op", src, log, opts{dualwrite.WithPolicy(2)}, "dualwrite: invalid input: unknown policy 2"},
		{"unknown policy 255", "op", src, log, opts{dualwrite.WithPolicy(255)}, "unknown policy 255"},
		{"nil option", "op", src, log, opts{nil}, "dualwrite: invalid input: option 0 is nil"},
		{"nil breaker", "op", src, log, opts{dualwrite.WithBreaker(nil)}, "WithBreaker: nil breaker"},
		{"nil observer", "op", src, log, opts{dualwrite.WithObserver(nil)}, "WithObserver: nil observer"},
		{"nil logger", "op", src, log, opts{dualwrite.WithLogger(nil)}, "WithLogger: nil logger"},
		{"nil meter provider", "op", src, log, opts{dualwrite.WithMeterProvider(nil)}, "WithMeterProvider: nil meter provider"},
		{"typed nil meter provider", "op", src, log, opts{dualwrite.WithMeterProvider(nilMeter)}, "WithMeterProvider: nil meter provider"},
		{"nil tracer provider", "op", src, log, opts{dualwrite.WithTracerProvider(nil)}, "WithTracerProvider: nil tracer provider"},
		{"typed nil tracer provider", "op", src, log, opts{dualwrite.WithTracerProvider(nilTracer)}, "WithTracerProvider: nil tracer provider"},
		{"every problem at once", "op", src, log, opts{nil, dualwrite.WithTimeout(0), dualwrite.WithLogger(nil)},
			"dualwrite: invalid input: option 0 is nil\nWithLogger: nil logger\nsecondary timeout must be positive, got 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				w   *dualwrite.Writer
				err error
			)
			require.NotPanics(t, func() { w, err = dualwrite.New(tc.op, tc.stages, tc.log, append(tc.opts, badQuiet)...) })
			assert.Nil(t, w)
			require.Error(t, err)
			assert.ErrorIs(t, err, dualwrite.ErrInvalidInput)
			assert.True(t, strings.HasPrefix(err.Error(), "dualwrite: invalid input: "), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Zero(t, src.Calls(), "the stage source was never asked")
	assert.Zero(t, log.Calls(), "nothing was recorded")
}

// TestBadInputStageNotAStage gives the writer a stage source that answers
// with values that are no stage. Each write is handled as in off: the old
// store alone is written, nothing is recorded, no error.
func TestBadInputStageNotAStage(t *testing.T) {
	for _, bad := range []cutover.Stage{6, 7, 200, 255} {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/concurrent=%v", bad, concurrent), func(t *testing.T) {
				log := &testutil.Log{}
				w := badWriter(t, testutil.NewSource(bad), log, concurrent)
				var stores badStores
				require.NoError(t, w.Write(t.Context(), "42", stores.write))
				assert.Equal(t, [2]int64{1, 0}, stores.counts(), "old store only")
				assert.Zero(t, log.Calls())
			})
		}
	}
}

// TestBadInputNilWriteFunction passes a nil store function. The call
// returns ErrNilFunc, which wraps ErrInvalidInput, on every stage and
// without a panic, before any store is written or anything is recorded.
// What must never happen is that such a write returns nil.
func TestBadInputNilWriteFunction(t *testing.T) {
	for _, stage := range cutover.Stages {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/concurrent=%v", stage, concurrent), func(t *testing.T) {
				log := &testutil.Log{}
				w := badWriter(t, cutover.Fixed(stage), log, concurrent)
				for _, call := range []func() error{
					func() error { return w.Write(t.Context(), "42", nil) },
					func() error { _, err := dualwrite.Call[int](t.Context(), w, "42", nil); return err },
				} {
					err, panicked := badCall(call)
					assert.False(t, panicked)
					assert.ErrorIs(t, err, dualwrite.ErrNilFunc)
					assert.ErrorIs(t, err, dualwrite.ErrInvalidInput)
				}
				assert.Zero(t, log.Calls(), "nothing was recorded")
			})
		}
	}
}

// TestBadInputTypedNilRepairLog passes a nil *cutover.MemoryRepairLog: an
// interface holding a nil pointer, whose first Record would panic. New
// refuses it as it refuses a nil interface, so no write can lose a key.
func TestBadInputTypedNilRepairLog(t *testing.T) {
	var nilLog *cutover.MemoryRepairLog
	w, err := dualwrite.New("op", cutover.Fixed(cutover.DualWrite), nilLog, badQuiet)
	assert.Nil(t, w)
	assert.ErrorIs(t, err, dualwrite.ErrInvalidInput)
	assert.ErrorContains(t, err, "dualwrite: invalid input: nil repair log")
}

// badWriter returns a quiet writer of the operation "op", writing both
// stores at once if concurrent is set.
func badWriter(t *testing.T, stages cutover.StageSource, log cutover.RepairLog, concurrent bool) *dualwrite.Writer {
	t.Helper()
	opts := []dualwrite.Option{badQuiet}
	if concurrent {
		opts = append(opts, dualwrite.WithConcurrentWrites())
	}
	w, err := dualwrite.New("op", stages, log, opts...)
	require.NoError(t, err)
	return w
}

// badCall calls f and reports its error, or that it panicked.
func badCall(f func() error) (err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
		}
	}()
	return f(), false
}
