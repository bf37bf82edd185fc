package flagstest_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/flags/flagstest"
)

func user(ctx context.Context, id string) context.Context {
	return flags.ContextWithTargetingKey(ctx, id)
}

func TestSetAppliesToNextEvaluation(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	r := ff.Resolver(t, "m", flags.WithFallback(cutover.Complete))

	// Not defined yet: flag not found, so the fallback.
	assert.Equal(t, cutover.Complete, r.Stage(t.Context()))
	for _, s := range cutover.Stages {
		ff.Set("m", s)
		assert.Equal(t, s, r.Stage(t.Context()))
		assert.Equal(t, s, r.Stage(user(t.Context(), "42")))
	}
	ff.Set("m", cutover.Shadow)
	assert.Equal(t, cutover.Shadow, r.Stage(t.Context()))
}

func TestSetForOverridesOneKey(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	r := ff.Resolver(t, "m", flags.WithFallback(cutover.Rampdown))

	// Overrides without a value for everyone: the others get the fallback.
	ff.SetFor("m", "42", cutover.Live)
	assert.Equal(t, cutover.Live, r.Stage(user(t.Context(), "42")))
	assert.Equal(t, cutover.Rampdown, r.Stage(user(t.Context(), "7")))
	assert.Equal(t, cutover.Rampdown, r.Stage(t.Context()))

	ff.Set("m", cutover.Off)
	ff.SetFor("m", "7", cutover.Shadow)
	assert.Equal(t, cutover.Live, r.Stage(user(t.Context(), "42")))
	assert.Equal(t, cutover.Shadow, r.Stage(user(t.Context(), "7")))
	assert.Equal(t, cutover.Off, r.Stage(user(t.Context(), "8")))
	assert.Equal(t, cutover.Off, r.Stage(t.Context()))

	// Set changes everyone else and keeps the overrides; SetFor again
	// replaces one.
	ff.Set("m", cutover.DualWrite)
	ff.SetFor("m", "42", cutover.Complete)
	assert.Equal(t, cutover.Complete, r.Stage(user(t.Context(), "42")))
	assert.Equal(t, cutover.Shadow, r.Stage(user(t.Context(), "7")))
	assert.Equal(t, cutover.DualWrite, r.Stage(user(t.Context(), "8")))

	// Other flags are not affected.
	other := ff.Resolver(t, "other", flags.WithFallback(cutover.Shadow))
	assert.Equal(t, cutover.Shadow, other.Stage(user(t.Context(), "42")))
}

func TestSetValueUnknownFallsBack(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	r := ff.Resolver(t, "m", flags.WithFallback(cutover.DualWrite))
	ff.SetValue("m", "Live")
	assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()))
	ff.SetValue("m", "live")
	assert.Equal(t, cutover.Live, r.Stage(t.Context()))
	ff.Set("m", cutover.Stage(9))
	assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()))

	// An override wins over a raw value too.
	ff.SetValue("m", "???")
	ff.SetFor("m", "1", cutover.Shadow)
	assert.Equal(t, cutover.Shadow, r.Stage(user(t.Context(), "1")))
	assert.Equal(t, cutover.DualWrite, r.Stage(user(t.Context(), "2")))
}

func TestSetSampleRate(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	r := ff.Resolver(t, "m", flags.WithSampleRateFlag("rate", 0.5))
	assert.Equal(t, 0.5, r.SampleRate(t.Context()), "undefined flag")
	ff.SetSampleRate("rate", 0.25)
	assert.Equal(t, 0.25, r.SampleRate(t.Context()))
	ff.SetSampleRate("rate", 0)
	assert.Equal(t, 0.0, r.SampleRate(t.Context()))
	ff.SetSampleRate("rate", 1.5)
	assert.Equal(t, 0.5, r.SampleRate(t.Context()), "out of range")
}

func TestClientIsOpenFeature(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	ff.Set("m", cutover.Live)
	require.Same(t, ff.Client(), ff.Client())
	v, err := ff.Client().StringValue(t.Context(), "m", "off", openfeature.EvaluationContext{})
	require.NoError(t, err)
	assert.Equal(t, "live", v)
}

// TestFlagsAreIsolated runs tests in parallel that give the same flag key
// different stages; each must see only its own.
func TestFlagsAreIsolated(t *testing.T) {
	t.Parallel()
	for _, s := range cutover.Stages {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			ff := flagstest.New(t)
			ff.Set("shared", s)
			ff.SetFor("shared", "vip", s)
			r := ff.Resolver(t, "shared", flags.WithFallback(cutover.Off))
			for range 50 {
				require.Equal(t, s, r.Stage(t.Context()))
				require.Equal(t, s, r.Stage(user(t.Context(), "vip")))
			}
		})
	}
}

// TestConcurrentSetAndResolve changes flags while other goroutines resolve
// them, for the race detector, and checks that every answer is one that was
// set.
func TestConcurrentSetAndResolve(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	ff.Set("m", cutover.Off)
	r := ff.Resolver(t, "m", flags.WithFallback(cutover.Complete), flags.WithSampleRateFlag("rate", 1))

	const workers, rounds = 4, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				s := r.Stage(user(t.Context(), strconv.Itoa((w+i)%10)))
				assert.True(t, s == cutover.Off || s == cutover.Shadow || s == cutover.Live, "stage %v", s)
				rate := r.SampleRate(t.Context())
				assert.True(t, rate == 1 || rate == 0.5, "rate %v", rate)
			}
		})
	}
	for i := range rounds {
		ff.SetFor("m", strconv.Itoa(i%10), cutover.Live)
		ff.Set("m", []cutover.Stage{cutover.Off, cutover.Shadow}[i%2])
		ff.SetSampleRate("rate", 0.5)
	}
	wg.Wait()

	// After the loop every key 0..9 has the override.
	for i := range 10 {
		assert.Equal(t, cutover.Live, r.Stage(user(t.Context(), strconv.Itoa(i))))
	}
	assert.Equal(t, cutover.Shadow, r.Stage(user(t.Context(), "10")))
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestResolverFailsTheTest(t *testing.T) {
	t.Parallel()
	ff := flagstest.New(t)
	tb := &fatalTB{TB: t}
	r := ff.Resolver(tb, "m", flags.WithTimeout(-1))
	assert.Nil(t, r)
	assert.Contains(t, tb.msg, `flagstest: resolver for "m": flags: `)
	assert.Contains(t, tb.msg, "negative")
}

func TestStartAndClose(t *testing.T) {
	t.Parallel()
	ff, err := flagstest.Start(t.Context())
	require.NoError(t, err)
	ff.Set("m", cutover.Live)
	r, err := flags.New(ff.Client(), "m")
	require.NoError(t, err)
	assert.Equal(t, cutover.Live, r.Stage(t.Context()))
	require.NoError(t, ff.Close(t.Context()))
}
