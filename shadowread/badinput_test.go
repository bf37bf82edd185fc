package shadowread_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/diff"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

// badRecord is the payload of the readers of this file.
type badRecord struct {
	ID   string
	Tags []string
}

// badStores counts the reads of each store and answers with values that
// differ, so that every comparison is a mismatch.
type badStores struct{ calls [2]atomic.Int64 }

func (s *badStores) read(_ context.Context, side cutover.Side) (badRecord, error) {
	s.calls[side].Add(1)
	return badRecord{ID: "42", Tags: []string{side.String()}}, nil
}

func (s *badStores) counts() [2]int64 { return [2]int64{s.calls[0].Load(), s.calls[1].Load()} }

var badQuiet = shadowread.WithLogger[badRecord](testutil.Quiet())

// TestBadInputNew gives New every argument and option it refuses. Each
// fails, without a panic, with an error that starts "shadowread: invalid
// input: ", wraps ErrInvalidInput and names the problem, and the stage
// source is never asked. (A compare, normalize or mismatch function of
// another payload type does not compile: see TestBadInputHookOfAnotherType.)
func TestBadInputNew(t *testing.T) {
	src := testutil.NewSource(cutover.Shadow)
	var (
		nilSource *testutil.Source
		nilLog    *testutil.Log
		nilMeter  *sdkmetric.MeterProvider
		nilTracer *sdktrace.TracerProvider
	)
	type opts = []shadowread.Option[badRecord]
	for _, tc := range []struct {
		name string
		op   string
		src  cutover.StageSource
		opts opts
		want string
		is   error
	}{
		{"empty operation", "", src, nil, "shadowread: invalid input: empty operation name", nil},
		{"nil stage source", "op", nil, nil, "shadowread: invalid input: nil stage source", nil},
		{"typed nil stage source", "op", nilSource, nil, "shadowread: invalid input: nil stage source", nil},
		{"negative rate", "op", src, opts{shadowread.WithSampleRate[badRecord](-0.1)}, "sample rate -0.1 outside [0, 1]", nil},
		{"rate above one", "op", src, opts{shadowread.WithSampleRate[badRecord](1.5)}, "sample rate 1.5 outside [0, 1]", nil},
		{"NaN rate", "op", src, opts{shadowread.WithSampleRate[badRecord](math.NaN())}, "sample rate NaN outside [0, 1]", nil},
		{"infinite rate", "op", src, opts{shadowread.WithSampleRate[badRecord](math.Inf(1))}, "sample rate +Inf outside [0, 1]", nil},
		{"zero timeout", "op", src, opts{shadowread.WithTimeout[badRecord](0)}, "timeout must be positive, got 0s", nil},
		{"negative timeout", "op", src, opts{shadowread.WithTimeout[badRecord](-time.Second)}, "got -1s", nil},
		{"no comparisons", "op", src, opts{shadowread.WithMaxConcurrent[badRecord](0)}, "max concurrent comparisons must be positive, got 0", nil},
		{"negative comparisons", "op", src, opts{shadowread.WithMaxConcurrent[badRecord](-4)}, "got -4", nil},
		{"nil option", "op", src, opts{nil}, "shadowread: invalid input: option 0 is nil", nil},
		{"nil compare", "op", src, opts{shadowread.WithCompare[badRecord](nil)}, "shadowread: invalid input: WithCompare: nil function", nil},
		{"nil normalize", "op", src, opts{shadowread.WithNormalize[badRecord](nil)}, "WithNormalize: nil function", nil},
		{"nil mismatch callback", "op", src, opts{shadowread.WithOnMismatch[badRecord](nil)}, "WithOnMismatch: nil function", nil},
		{"nil error comparison", "op", src, opts{shadowread.WithCompareErrors[badRecord](nil)}, "WithCompareErrors: nil function", nil},
		{"nil failure test", "op", src, opts{shadowread.WithFailures[badRecord](nil)}, "WithFailures: nil function", nil},
		{"nil sampler", "op", src, opts{shadowread.WithSampler[badRecord](nil)}, "WithSampler: nil function", nil},
		{"nil breaker", "op", src, opts{shadowread.WithBreaker[badRecord](nil)}, "WithBreaker: nil breaker", nil},
		{"nil observer", "op", src, opts{shadowread.WithObserver[badRecord](nil)}, "WithObserver: nil observer", nil},
		{"nil repair log", "op", src, opts{shadowread.WithRepairLog[badRecord](nil)}, "WithRepairLog: nil repair log", nil},
		{"typed nil repair log", "op", src, opts{shadowread.WithRepairLog[badRecord](nilLog)}, "WithRepairLog: nil repair log", nil},
		{"nil logger", "op", src, opts{shadowread.WithLogger[badRecord](nil)}, "WithLogger: nil logger", nil},
		{"nil meter provider", "op", src, opts{shadowread.WithMeterProvider[badRecord](nil)}, "WithMeterProvider: nil meter provider", nil},
		{"typed nil meter provider", "op", src, opts{shadowread.WithMeterProvider[badRecord](nilMeter)}, "WithMeterProvider: nil meter provider", nil},
		{"nil tracer provider", "op", src, opts{shadowread.WithTracerProvider[badRecord](nil)}, "WithTracerProvider: nil tracer provider", nil},
		{"typed nil tracer provider", "op", src, opts{shadowread.WithTracerProvider[badRecord](nilTracer)}, "WithTracerProvider: nil tracer provider", nil},
		{"empty ignore path", "op", src, opts{shadowread.WithIgnore[badRecord]("")}, `shadowread: invalid input: diff: ignore path "": path is empty`, diff.ErrInvalidOptions},
		{"empty segment", "op", src, opts{shadowread.WithIgnore[badRecord]("Tags..x")}, `ignore path "Tags..x": segment 2 is empty`, diff.ErrInvalidOptions},
		{"leading dot", "op", src, opts{shadowread.WithIgnore[badRecord](".ID")}, `starts with '.'`, diff.ErrInvalidOptions},
		{"brackets", "op", src, opts{shadowread.WithIgnore[badRecord]("Tags[*]")}, "uses brackets", diff.ErrInvalidOptions},
		{"negative diff count", "op", src, opts{shadowread.WithDiffLimits[badRecord](-1, 0)}, "shadowread: invalid input: diff: MaxDiffs is -1", diff.ErrInvalidOptions},
		{"negative diff bytes", "op", src, opts{shadowread.WithDiffLimits[badRecord](0, -5)}, "MaxBytes is -5", diff.ErrInvalidOptions},
		{"negative compare depth", "op", src, opts{shadowread.WithCompareLimits[badRecord](-1, 0)}, "shadowread: invalid input: diff: MaxDepth is -1; want 0 (default 1000) or more", diff.ErrInvalidOptions},
		{"negative compare work", "op", src, opts{shadowread.WithCompareLimits[badRecord](0, -1)}, "MaxWork is -1; want 0 (default 100000) or more", diff.ErrInvalidOptions},
		{"empty sensitive path", "op", src, opts{shadowread.WithSensitive[badRecord]("ID", "")}, `shadowread: invalid input: diff: sensitive path "": path is empty`, diff.ErrInvalidOptions},
		{"sensitive path with brackets", "op", src, opts{shadowread.WithSensitive[badRecord]("Tags[0]")}, `diff: sensitive path "Tags[0]": segment "Tags[0]" uses brackets`, diff.ErrInvalidOptions},
		{"nil redaction key", "op", src, opts{shadowread.WithRedactionKey[badRecord](nil)}, "shadowread: invalid input: WithRedactionKey: key of 0 bytes; want at least 16", nil},
		{"short redaction key", "op", src, opts{shadowread.WithRedactionKey[badRecord]([]byte("fifteen bytes!!"))}, "WithRedactionKey: key of 15 bytes; want at least 16", nil},
		{"every problem at once", "op", src, opts{nil, shadowread.WithTimeout[badRecord](0), shadowread.WithCompare[badRecord](nil)},
			"shadowread: invalid input: option 0 is nil\nWithCompare: nil function\ntimeout must be positive, got 0s", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				r   *shadowread.Reader[badRecord]
				err error
			)
			require.NotPanics(t, func() { r, err = shadowread.New(tc.op, tc.src, append(tc.opts, badQuiet)...) })
			assert.Nil(t, r)
			require.Error(t, err)
			assert.ErrorIs(t, err, shadowread.ErrInvalidInput)
			assert.True(t, strings.HasPrefix(err.Error(), "shadowread: invalid input: "), "%v", err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
	assert.Zero(t, src.Calls(), "the stage source was never asked")
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
			log := &testutil.Log{}
			r, err := shadowread.New[badRecord]("op", cutover.Fixed(cutover.Shadow), badQuiet, shadowread.WithSynchronous[badRecord](),
				shadowread.WithRepairLog[badRecord](log), shadowread.WithSampler[badRecord](func(context.Context) float64 { return tc.rate }))
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
				assert.Zero(t, log.Calls())
			}
		})
	}
}

// TestBadInputStageNotAStage gives the reader a stage source that answers
// with values that are no stage: each read is handled as in off, from the
// old store alone, and nothing is compared.
func TestBadInputStageNotAStage(t *testing.T) {
	for _, bad := range []cutover.Stage{6, 99, 255} {
		log := &testutil.Log{}
		r, err := shadowread.New[badRecord]("op", testutil.NewSource(bad), badQuiet, shadowread.WithSynchronous[badRecord](), shadowread.WithRepairLog[badRecord](log))
		require.NoError(t, err)
		var stores badStores
		got, err := r.Read(t.Context(), "42", stores.read)
		require.NoError(t, err)
		assert.Equal(t, []string{"old"}, got.Tags)
		assert.Equal(t, [2]int64{1, 0}, stores.counts(), "stage %d: old store only", bad)
		assert.Zero(t, log.Calls())
	}
}

// TestBadInputNilReadFunction passes a nil read function. The read returns
// ErrNilFunc, which wraps ErrInvalidInput, on every stage and without a
// panic, and nothing is compared or recorded. What must never happen is a
// zero value returned as if read.
func TestBadInputNilReadFunction(t *testing.T) {
	for _, stage := range cutover.Stages {
		log := &testutil.Log{}
		r, err := shadowread.New[badRecord]("op", cutover.Fixed(stage), badQuiet, shadowread.WithRepairLog[badRecord](log))
		require.NoError(t, err)
		panicked := false
		func() {
			defer func() { panicked = recover() != nil }()
			_, err = r.Read(t.Context(), "42", nil)
		}()
		assert.False(t, panicked, stage)
		assert.ErrorIs(t, err, shadowread.ErrNilFunc, stage)
		assert.ErrorIs(t, err, shadowread.ErrInvalidInput, stage)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		assert.NoError(t, r.Drain(ctx))
		cancel()
		assert.Zero(t, log.Calls())
	}
}

// TestBadInputHookOfAnotherType type-checks callers that give a reader of
// one payload type a compare, normalize or mismatch function of another.
// None compiles: the mistake is caught before any test or request runs. The
// same calls with the reader's own type compile.
func TestBadInputHookOfAnotherType(t *testing.T) {
	check := typeChecker(t)
	const header = `package p

import (
	"context"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/shadowread"
)

type User struct{ ID string }

var (
	_ = context.Background
	_ = cutover.Fixed(cutover.Shadow)
)

func f() {
	_, _ = shadowread.New[User]("users.get", cutover.Fixed(cutover.Shadow), `
	for _, tc := range []struct{ name, wrong, right string }{
		{"compare", `shadowread.WithCompare(func(a, b string) bool { return a == b })`,
			`shadowread.WithCompare(func(a, b User) bool { return a == b })`},
		{"normalize", `shadowread.WithNormalize(func(s string) string { return s })`,
			`shadowread.WithNormalize(func(u User) User { return u })`},
		{"mismatch callback", `shadowread.WithOnMismatch(func(context.Context, *shadowread.Mismatch[string]) {})`,
			`shadowread.WithOnMismatch(func(context.Context, *shadowread.Mismatch[User]) {})`},
		{"untyped option of another type", `shadowread.WithTimeout[string](1)`, `shadowread.WithTimeout[User](1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(header + tc.wrong + ")\n}\n")
			require.Error(t, err, "a %s of another payload type compiled", tc.name)
			assert.Contains(t, err.Error(), "cannot use")
			assert.Contains(t, err.Error(), "as shadowread.Option[User] value")
			require.NoError(t, check(header+tc.right+")\n}\n"))
		})
	}
}
