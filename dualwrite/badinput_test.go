package dualwrite_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
)

// badSource is a stage source that counts its calls.
type badSource struct {
	calls atomic.Int64
	stage cutover.Stage
}

func (s *badSource) Stage(context.Context) cutover.Stage {
	s.calls.Add(1)
	return s.stage
}

// badLog is a repair log that counts what it records.
type badLog struct{ calls atomic.Int64 }

func (l *badLog) Record(context.Context, cutover.Repair) error {
	l.calls.Add(1)
	return nil
}

// badStores counts the store calls of a write, by side.
type badStores struct{ calls [2]atomic.Int64 }

func (s *badStores) write(_ context.Context, side cutover.Side) error {
	s.calls[side].Add(1)
	return nil
}

func (s *badStores) counts() [2]int64 { return [2]int64{s.calls[0].Load(), s.calls[1].Load()} }

var badQuiet = dualwrite.WithLogger(slog.New(slog.DiscardHandler))

// TestBadInputNew gives New every argument and option it refuses. Each
// fails with an error that starts "dualwrite: " and names the problem, and
// neither the stage source nor the repair log is ever called.
func TestBadInputNew(t *testing.T) {
	src, log := &badSource{stage: cutover.DualWrite}, &badLog{}
	for _, tc := range []struct {
		name   string
		op     string
		stages cutover.StageSource
		log    cutover.RepairLog
		opts   []dualwrite.Option
		want   string
	}{
		{"empty operation", "", src, log, nil, "dualwrite: empty operation name"},
		{"nil stage source", "op", nil, log, nil, "dualwrite: nil stage source"},
		{"nil repair log", "op", src, nil, nil, "dualwrite: nil repair log: failed secondary writes must be recorded somewhere"},
		{"zero timeout", "op", src, log, []dualwrite.Option{dualwrite.WithTimeout(0)}, "dualwrite: secondary timeout must be positive, got 0s"},
		{"negative timeout", "op", src, log, []dualwrite.Option{dualwrite.WithTimeout(-time.Millisecond)}, "got -1ms"},
		{"unknown policy", "op", src, log, []dualwrite.Option{dualwrite.WithPolicy(2)}, "dualwrite: unknown policy 2"},
		{"unknown policy 255", "op", src, log, []dualwrite.Option{dualwrite.WithPolicy(255)}, "unknown policy 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := dualwrite.New(tc.op, tc.stages, tc.log, append(tc.opts, badQuiet)...)
			assert.Nil(t, w)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "dualwrite: "), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Zero(t, src.calls.Load(), "the stage source was never asked")
	assert.Zero(t, log.calls.Load(), "nothing was recorded")
}

// TestBadInputStageNotAStage gives the writer a stage source that answers
// with values that are no stage. Each write is handled as in off: the old
// store alone is written, nothing is recorded, no error.
func TestBadInputStageNotAStage(t *testing.T) {
	for _, bad := range []cutover.Stage{6, 7, 200, 255} {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/concurrent=%v", bad, concurrent), func(t *testing.T) {
				log := &badLog{}
				opts := []dualwrite.Option{badQuiet}
				if concurrent {
					opts = append(opts, dualwrite.WithConcurrentWrites())
				}
				w, err := dualwrite.New("op", &badSource{stage: bad}, log, opts...)
				require.NoError(t, err)
				var stores badStores
				require.NoError(t, w.Write(t.Context(), "42", stores.write))
				assert.Equal(t, [2]int64{1, 0}, stores.counts(), "old store only")
				assert.Zero(t, log.calls.Load())
			})
		}
	}
}

// TestBadInputNilWriteFunction passes a nil store function. The library
// does not check for it: the call panics on the caller's goroutine, as
// calling a nil function does, before any store is written or anything is
// recorded. What must never happen is that such a write returns nil.
func TestBadInputNilWriteFunction(t *testing.T) {
	for _, stage := range cutover.Stages {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/concurrent=%v", stage, concurrent), func(t *testing.T) {
				log := &badLog{}
				opts := []dualwrite.Option{badQuiet}
				if concurrent {
					opts = append(opts, dualwrite.WithConcurrentWrites())
				}
				w, err := dualwrite.New("op", cutover.Fixed(stage), log, opts...)
				require.NoError(t, err)
				for _, call := range []func() error{
					func() error { return w.Write(t.Context(), "42", nil) },
					func() error { _, err := dualwrite.Call[int](t.Context(), w, "42", nil); return err },
				} {
					err, panicked := badCall(call)
					assert.False(t, panicked)
					assert.ErrorIs(t, err, dualwrite.ErrNilFunc)
				}
				assert.Zero(t, log.calls.Load(), "nothing was recorded")
			})
		}
	}
}

// TestBadInputTypedNilRepairLog passes a nil *cutover.MemoryRepairLog: an
// interface holding a nil pointer, which New cannot tell from a log. The
// first secondary failure to record must not pass silently: the write
// fails or panics, and the authoritative store is written only once.
func TestBadInputTypedNilRepairLog(t *testing.T) {
	var nilLog *cutover.MemoryRepairLog
	w, err := dualwrite.New("op", cutover.Fixed(cutover.DualWrite), nilLog, badQuiet)
	assert.Nil(t, w)
	assert.ErrorContains(t, err, "dualwrite: nil repair log")
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
