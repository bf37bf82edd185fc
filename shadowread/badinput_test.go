package shadowread_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/diff"
	"github.com/cutover-go/cutover/shadowread"
)

// badRecord is the payload of the readers of this file.
type badRecord struct {
	ID   string
	Tags []string
}

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

// badStores counts the reads of each store and answers with values that
// differ, so that every comparison is a mismatch.
type badStores struct{ calls [2]atomic.Int64 }

func (s *badStores) read(_ context.Context, side cutover.Side) (badRecord, error) {
	s.calls[side].Add(1)
	return badRecord{ID: "42", Tags: []string{side.String()}}, nil
}

func (s *badStores) counts() [2]int64 { return [2]int64{s.calls[0].Load(), s.calls[1].Load()} }

var badQuiet = shadowread.WithLogger(slog.New(slog.DiscardHandler))

// TestBadInputNew gives New every argument and option it refuses. Each
// fails with an error that starts "shadowread: " and names the problem,
// and the stage source is never asked.
func TestBadInputNew(t *testing.T) {
	src := &badSource{stage: cutover.Shadow}
	type opts = []shadowread.Option
	for _, tc := range []struct {
		name string
		op   string
		src  cutover.StageSource
		opts opts
		want string
		is   error
	}{
		{"empty operation", "", src, nil, "shadowread: empty operation name", nil},
		{"nil stage source", "op", nil, nil, "shadowread: nil stage source", nil},
		{"negative rate", "op", src, opts{shadowread.WithSampleRate(-0.1)}, "sample rate -0.1 outside [0, 1]", nil},
		{"rate above one", "op", src, opts{shadowread.WithSampleRate(1.5)}, "sample rate 1.5 outside [0, 1]", nil},
		{"NaN rate", "op", src, opts{shadowread.WithSampleRate(math.NaN())}, "sample rate NaN outside [0, 1]", nil},
		{"infinite rate", "op", src, opts{shadowread.WithSampleRate(math.Inf(1))}, "sample rate +Inf outside [0, 1]", nil},
		{"zero timeout", "op", src, opts{shadowread.WithTimeout(0)}, "timeout must be positive, got 0s", nil},
		{"negative timeout", "op", src, opts{shadowread.WithTimeout(-time.Second)}, "got -1s", nil},
		{"no comparisons", "op", src, opts{shadowread.WithMaxConcurrent(0)}, "max concurrent comparisons must be positive, got 0", nil},
		{"negative comparisons", "op", src, opts{shadowread.WithMaxConcurrent(-4)}, "got -4", nil},
		{"compare of another type", "op", src, opts{shadowread.WithCompare(func(a, b string) bool { return a == b })},
			"WithCompare: got func(string, string) bool, want a non-nil func(shadowread_test.badRecord, shadowread_test.badRecord) bool", nil},
		{"nil compare", "op", src, opts{shadowread.WithCompare[badRecord](nil)}, "WithCompare: got func(shadowread_test.badRecord, shadowread_test.badRecord) bool, want a non-nil", nil},
		{"nil normalize", "op", src, opts{shadowread.WithNormalize[badRecord](nil)}, "WithNormalize", nil},
		{"normalize of another type", "op", src, opts{shadowread.WithNormalize(func(s string) string { return s })}, "WithNormalize: got func(string) string", nil},
		{"nil mismatch callback", "op", src, opts{shadowread.WithOnMismatch[badRecord](nil)}, "WithOnMismatch", nil},
		{"mismatch callback of another type", "op", src, opts{shadowread.WithOnMismatch(func(context.Context, *shadowread.Mismatch[string]) {})}, "WithOnMismatch: got", nil},
		{"empty ignore path", "op", src, opts{shadowread.WithIgnore("")}, `shadowread: diff: ignore path "": path is empty`, diff.ErrInvalidOptions},
		{"empty segment", "op", src, opts{shadowread.WithIgnore("Tags..x")}, `ignore path "Tags..x": segment 2 is empty`, diff.ErrInvalidOptions},
		{"leading dot", "op", src, opts{shadowread.WithIgnore(".ID")}, `starts with '.'`, diff.ErrInvalidOptions},
		{"brackets", "op", src, opts{shadowread.WithIgnore("Tags[*]")}, "uses brackets", diff.ErrInvalidOptions},
		{"negative diff count", "op", src, opts{shadowread.WithDiffLimits(-1, 0)}, "shadowread: diff: MaxDiffs is -1", diff.ErrInvalidOptions},
		{"negative diff bytes", "op", src, opts{shadowread.WithDiffLimits(0, -5)}, "MaxBytes is -5", diff.ErrInvalidOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := shadowread.New[badRecord](tc.op, tc.src, append(tc.opts, badQuiet)...)
			assert.Nil(t, r)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "shadowread: "), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
	assert.Zero(t, src.calls.Load(), "the stage source was never asked")
}

// TestBadInputSampler gives the reader a sampler that answers with rates
// outside [0, 1]. They are clamped: NaN and negative rates compare
// nothing, rates above one compare every read. The caller gets the
// authoritative answer every time.
func TestBadInputSampler(t *testing.T) {
	for _, tc := range []struct {
		rate    float64
		compare bool
	}{
		{math.NaN(), false}, {-1, false}, {math.Inf(-1), false}, {7, true}, {math.Inf(1), true},
	} {
		t.Run(fmt.Sprint(tc.rate), func(t *testing.T) {
			log := &badLog{}
			r, err := shadowread.New[badRecord]("op", cutover.Fixed(cutover.Shadow), badQuiet, shadowread.WithSynchronous(),
				shadowread.WithRepairLog(log), shadowread.WithSampler(func(context.Context) float64 { return tc.rate }))
			require.NoError(t, err)
			var stores badStores
			for range 20 {
				got, err := r.Read(t.Context(), "42", stores.read)
				require.NoError(t, err)
				assert.Equal(t, []string{"old"}, got.Tags)
			}
			want := [2]int64{20, 0}
			if tc.compare {
				want = [2]int64{40, 20} // the authoritative read, its recheck, and the other store
			}
			assert.Equal(t, want, stores.counts())
			if !tc.compare {
				assert.Zero(t, log.calls.Load())
			}
		})
	}
}

// TestBadInputStageNotAStage gives the reader a stage source that answers
// with values that are no stage: each read is handled as in off, from the
// old store alone, and nothing is compared.
func TestBadInputStageNotAStage(t *testing.T) {
	for _, bad := range []cutover.Stage{6, 99, 255} {
		log := &badLog{}
		r, err := shadowread.New[badRecord]("op", &badSource{stage: bad}, badQuiet, shadowread.WithSynchronous(), shadowread.WithRepairLog(log))
		require.NoError(t, err)
		var stores badStores
		got, err := r.Read(t.Context(), "42", stores.read)
		require.NoError(t, err)
		assert.Equal(t, []string{"old"}, got.Tags)
		assert.Equal(t, [2]int64{1, 0}, stores.counts(), "stage %d: old store only", bad)
		assert.Zero(t, log.calls.Load())
	}
}

// TestBadInputNilReadFunction passes a nil read function. The library does
// not check for it: the read panics on the caller's goroutine, as calling a
// nil function does, and nothing is compared or recorded. What must never
// happen is a zero value returned as if read.
func TestBadInputNilReadFunction(t *testing.T) {
	for _, stage := range cutover.Stages {
		log := &badLog{}
		r, err := shadowread.New[badRecord]("op", cutover.Fixed(stage), badQuiet, shadowread.WithRepairLog(log))
		require.NoError(t, err)
		panicked := false
		func() {
			defer func() { panicked = recover() != nil }()
			_, err = r.Read(t.Context(), "42", nil)
		}()
		assert.False(t, panicked, stage)
		assert.ErrorIs(t, err, shadowread.ErrNilFunc, stage)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		assert.NoError(t, r.Drain(ctx))
		cancel()
		assert.Zero(t, log.calls.Load())
	}
}
