package flags_test

import (
	"context"
	"hash/fnv"
	"math"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
)

func TestStageFromFlag(t *testing.T) {
	t.Parallel()
	fs := map[string]memprovider.InMemoryFlag{}
	for _, s := range cutover.Stages {
		fs["m-"+s.String()] = staticFlag(s.String())
	}
	client := memClient(t, fs)
	rd, opts := telemetryOpts()
	for _, s := range cutover.Stages {
		r, err := flags.New(client, "m-"+s.String(), append(opts, flags.WithFallback(cutover.Complete))...)
		require.NoError(t, err)
		assert.Equal(t, "m-"+s.String(), r.Flag())
		assert.Equal(t, s, r.Stage(t.Context()))
		assert.Equal(t, map[string]int64{s.String() + "/flag": 1}, stageCounts(t, rd, "m-"+s.String()))
	}
}

// TestUnknownValueFallsBack feeds values that are close to stage names but
// are not stages. Each must give the fallback, which is chosen to differ from
// the zero Stage and from every stage the value resembles, and be counted as
// unknown_value.
func TestUnknownValueFallsBack(t *testing.T) {
	t.Parallel()
	values := []string{"", "Shadow", "LIVE", " live", "live ", "on", "true", "2", "dual-write", "shadow\x00"}
	fs := map[string]memprovider.InMemoryFlag{}
	for i, v := range values {
		fs["bad"+strconv.Itoa(i)] = staticFlag(v)
	}
	client := memClient(t, fs)
	for _, fallback := range []cutover.Stage{cutover.DualWrite, cutover.Rampdown} {
		rd, opts := telemetryOpts()
		for i, v := range values {
			flag := "bad" + strconv.Itoa(i)
			r, err := flags.New(client, flag, append(opts, flags.WithFallback(fallback))...)
			require.NoError(t, err)
			for range 3 {
				assert.Equal(t, fallback, r.Stage(t.Context()), "value %q", v)
			}
			assert.Equal(t, map[string]int64{fallback.String() + "/unknown_value": 3}, stageCounts(t, rd, flag), "value %q", v)
		}
	}
}

func TestDefaultFallbackIsOff(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": staticFlag("everything")})
	rd, opts := telemetryOpts()
	r, err := flags.New(client, "m", opts...)
	require.NoError(t, err)
	assert.Equal(t, cutover.Off, r.Stage(t.Context()))
	assert.Equal(t, map[string]int64{"off/unknown_value": 1}, stageCounts(t, rd, "m"))
}

func TestErrorsFallBack(t *testing.T) {
	t.Parallel()
	mem := memClient(t, map[string]memprovider.InMemoryFlag{
		"wrong-type": staticFlag(42),
		"disabled": {
			State:          memprovider.Disabled,
			DefaultVariant: "v",
			Variants:       map[string]any{"v": "complete"},
		},
	})
	failing := newClient(t, &stubProvider{
		str: func(context.Context, string) openfeature.StringResolutionDetail {
			return openfeature.StringResolutionDetail{Value: "complete", ProviderResolutionDetail: generalError()}
		},
	})
	panicking := newClient(t, &stubProvider{
		str: func(context.Context, string) openfeature.StringResolutionDetail { panic("provider bug") },
	})
	tests := []struct {
		name   string
		client flags.Client
		flag   string
		reason string
	}{
		{"provider error", failing, "m", "error"},
		{"flag not found", mem, "missing", "error"},
		{"type mismatch", mem, "wrong-type", "error"},
		{"provider panic", panicking, "m", "error"},
		// A disabled flag is not an error: the SDK answers with the default
		// value, which is the fallback, so the flag decided.
		{"disabled flag", mem, "disabled", "flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rd, opts := telemetryOpts()
			r, err := flags.New(tt.client, tt.flag, append(opts, flags.WithFallback(cutover.DualWrite))...)
			require.NoError(t, err)
			assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()))
			assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()))
			assert.Equal(t, map[string]int64{"dualwrite/" + tt.reason: 2}, stageCounts(t, rd, tt.flag))
		})
	}
}

// blockingProvider answers only once release is closed, whatever its
// context says, like a provider stuck on the network.
func blockingProvider(tb testing.TB, value string, rate float64) *stubProvider {
	release := make(chan struct{})
	tb.Cleanup(func() { close(release) })
	return &stubProvider{
		str: func(context.Context, string) openfeature.StringResolutionDetail {
			<-release
			return openfeature.StringResolutionDetail{Value: value}
		},
		flt: func(context.Context, string) openfeature.FloatResolutionDetail {
			<-release
			return openfeature.FloatResolutionDetail{Value: rate}
		},
	}
}

// TestTimeoutFallsBack runs in a synctest bubble: each evaluation of the
// blocked provider gives up exactly when WithTimeout says, on the bubble's
// fake clock, however loaded the machine.
func TestTimeoutFallsBack(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		client := newClient(t, blockingProvider(t, "complete", 1))
		rd, opts := telemetryOpts()
		r, err := flags.New(client, "m", append(opts,
			flags.WithTimeout(5*time.Second),
			flags.WithFallback(cutover.Shadow),
			flags.WithSampleRateFlag("rate", 0.5))...)
		require.NoError(t, err)

		start := time.Now()
		assert.Equal(t, cutover.Shadow, r.Stage(t.Context()))
		assert.Equal(t, 5*time.Second, time.Since(start), "the timeout bounds the call")
		assert.Equal(t, 0.5, r.SampleRate(t.Context()))
		assert.Equal(t, 10*time.Second, time.Since(start))
		assert.Equal(t, map[string]int64{"shadow/timeout": 1}, stageCounts(t, rd, "m"))
		assert.Equal(t, map[string]int64{"rate/timeout": 1},
			counts(t, rd, "cutover.flags.sample_rate_resolutions", keyFlag, keyReason))
	})
}

func TestTimeoutCallerDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		client := newClient(t, blockingProvider(t, "complete", 1))
		rd, opts := telemetryOpts()
		r, err := flags.New(client, "m", append(opts, flags.WithTimeout(time.Hour), flags.WithFallback(cutover.Live))...)
		require.NoError(t, err)

		// The caller's own deadline is shorter than WithTimeout's: it wins.
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		assert.Equal(t, cutover.Live, r.Stage(ctx))
		assert.Equal(t, time.Second, time.Since(start))
		// A cancelled request is an error, not a timeout.
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		assert.Equal(t, cutover.Live, r.Stage(ctx))
		assert.Equal(t, map[string]int64{"live/timeout": 1, "live/error": 1}, stageCounts(t, rd, "m"))
	})
}

func TestTimeoutFastProvider(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": staticFlag("rampdown"), "rate": staticFlag(0.125)})
	rd, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts,
		flags.WithTimeout(time.Minute), flags.WithSampleRateFlag("rate", 1))...)
	require.NoError(t, err)
	assert.Equal(t, cutover.Rampdown, r.Stage(t.Context()))
	assert.Equal(t, 0.125, r.SampleRate(t.Context()))
	assert.Equal(t, map[string]int64{"rampdown/flag": 1}, stageCounts(t, rd, "m"))
}

func TestBoundClamps(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{
		"live": staticFlag("live"),
		"off":  staticFlag("off"),
		"bad":  staticFlag("nonsense"),
	})
	var mu sync.Mutex
	var seen []cutover.Stage
	upToDualWrite := func(_ context.Context, s cutover.Stage) cutover.Stage {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
		return min(s, cutover.DualWrite)
	}
	rd, opts := telemetryOpts()
	opts = append(opts, flags.WithBound(upToDualWrite))

	live, err := flags.New(client, "live", opts...)
	require.NoError(t, err)
	assert.Equal(t, cutover.DualWrite, live.Stage(t.Context()))
	assert.Equal(t, map[string]int64{"dualwrite/clamped": 1}, stageCounts(t, rd, "live"))

	off, err := flags.New(client, "off", opts...)
	require.NoError(t, err)
	assert.Equal(t, cutover.Off, off.Stage(t.Context()))
	assert.Equal(t, map[string]int64{"off/flag": 1}, stageCounts(t, rd, "off"))

	// The fallback goes through the bound too.
	bad, err := flags.New(client, "bad", append(opts, flags.WithFallback(cutover.Complete))...)
	require.NoError(t, err)
	assert.Equal(t, cutover.DualWrite, bad.Stage(t.Context()))
	assert.Equal(t, map[string]int64{"dualwrite/clamped": 1}, stageCounts(t, rd, "bad"))

	assert.Equal(t, []cutover.Stage{cutover.Live, cutover.Off, cutover.Complete}, seen)
}

func TestBoundInvalidStageFallsBack(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": staticFlag("live")})
	rd, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts,
		flags.WithFallback(cutover.DualWrite),
		flags.WithBound(func(context.Context, cutover.Stage) cutover.Stage { return cutover.Stage(200) }))...)
	require.NoError(t, err)
	assert.Equal(t, cutover.DualWrite, r.Stage(t.Context()))
	assert.Equal(t, map[string]int64{"dualwrite/error": 1}, stageCounts(t, rd, "m"))
}

// inShadowCohort puts a quarter of the ids, by hash bucket, in the shadow
// cohort.
func inShadowCohort(id string) bool {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()%100 < 25
}

func cohortFlag() memprovider.InMemoryFlag {
	eval := func(_ memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if id, _ := fc[openfeature.TargetingKey].(string); id != "" && inShadowCohort(id) {
			return "shadow", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "shadow"}
		}
		return "off", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason, Variant: "off"}
	}
	return memprovider.InMemoryFlag{
		State:            memprovider.Enabled,
		DefaultVariant:   "off",
		Variants:         map[string]any{"off": "off", "shadow": "shadow"},
		ContextEvaluator: &eval,
	}
}

func TestTargetingSplitsTraffic(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": cohortFlag()})
	rd, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts, flags.WithFallback(cutover.Complete))...)
	require.NoError(t, err)

	const users = 1000
	want := map[cutover.Stage]int64{}
	for i := range users {
		id := "user-" + strconv.Itoa(i)
		expected := cutover.Off
		if inShadowCohort(id) {
			expected = cutover.Shadow
		}
		want[expected]++
		got := r.Stage(flags.ContextWithTargetingKey(t.Context(), id))
		require.Equal(t, expected, got, "user %s", id)
	}
	require.Positive(t, want[cutover.Shadow])
	require.Positive(t, want[cutover.Off])
	t.Logf("shadow %d, off %d", want[cutover.Shadow], want[cutover.Off])
	assert.Equal(t, map[string]int64{
		"shadow/flag": want[cutover.Shadow],
		"off/flag":    want[cutover.Off],
	}, stageCounts(t, rd, "m"))

	// Without a targeting key everyone gets the default variant.
	assert.Equal(t, cutover.Off, r.Stage(t.Context()))
}

func TestContextWithTargetingKeyKeepsAttributes(t *testing.T) {
	t.Parallel()
	ctx := openfeature.WithTransactionContext(t.Context(),
		openfeature.NewEvaluationContext("old", map[string]any{"tenant": "acme"}))
	ctx = flags.ContextWithTargetingKey(ctx, "new")
	ec := openfeature.TransactionContext(ctx)
	assert.Equal(t, "new", ec.TargetingKey())
	assert.Equal(t, "acme", ec.Attribute("tenant"))

	ec = openfeature.TransactionContext(flags.ContextWithTargetingKey(ctx, ""))
	assert.Equal(t, "new", ec.TargetingKey())
}

type tenantKey struct{}

func TestWithEvaluationContext(t *testing.T) {
	t.Parallel()
	eval := func(_ memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if fc["tenant"] == "acme" && fc[openfeature.TargetingKey] == "u1" {
			return "live", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason}
		}
		return "off", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason}
	}
	client := memClient(t, map[string]memprovider.InMemoryFlag{"m": {
		State: memprovider.Enabled, ContextEvaluator: &eval,
	}})
	_, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts,
		flags.WithEvaluationContext(func(ctx context.Context) openfeature.EvaluationContext {
			tenant, _ := ctx.Value(tenantKey{}).(string)
			return openfeature.NewTargetlessEvaluationContext(map[string]any{"tenant": tenant})
		}),
		flags.WithTimeout(time.Minute))...) // the context is built before the evaluation goroutine starts
	require.NoError(t, err)

	ctx := context.WithValue(t.Context(), tenantKey{}, "acme")
	// The transaction context still supplies the targeting key.
	assert.Equal(t, cutover.Live, r.Stage(flags.ContextWithTargetingKey(ctx, "u1")))
	assert.Equal(t, cutover.Off, r.Stage(flags.ContextWithTargetingKey(ctx, "u2")))
	assert.Equal(t, cutover.Off, r.Stage(flags.ContextWithTargetingKey(t.Context(), "u1")))
}

func TestSampleRate(t *testing.T) {
	t.Parallel()
	client := memClient(t, map[string]memprovider.InMemoryFlag{
		"quarter": staticFlag(0.25),
		"zero":    staticFlag(0),
		"one":     staticFlag(1),
		"above":   staticFlag(1.5),
		"below":   staticFlag(-0.1),
		"nan":     staticFlag(math.NaN()),
		"inf":     staticFlag(math.Inf(1)),
		"text":    staticFlag("half"),
	})
	rd, opts := telemetryOpts()

	plain, err := flags.New(client, "m", opts...)
	require.NoError(t, err)
	assert.Equal(t, 1.0, plain.SampleRate(t.Context()), "no sample rate flag compares every read")

	tests := []struct {
		flag   string
		want   float64
		reason string
	}{
		{"quarter", 0.25, "flag"},
		{"zero", 0, "flag"},
		{"one", 1, "flag"},
		{"above", 0.1, "out_of_range"},
		{"below", 0.1, "out_of_range"},
		{"nan", 0.1, "out_of_range"},
		{"inf", 0.1, "out_of_range"},
		{"text", 0.1, "error"},
		{"missing", 0.1, "error"},
	}
	for _, tt := range tests {
		r, err := flags.New(client, "m", append(opts, flags.WithSampleRateFlag(tt.flag, 0.1))...)
		require.NoError(t, err)
		assert.Equal(t, tt.want, r.SampleRate(t.Context()), tt.flag)
	}
	got := counts(t, rd, "cutover.flags.sample_rate_resolutions", keyFlag, keyReason)
	for _, tt := range tests {
		assert.Equal(t, int64(1), got[tt.flag+"/"+tt.reason], tt.flag)
	}
	assert.Len(t, got, len(tests))
}

func TestSampleRatePanicFallsBack(t *testing.T) {
	t.Parallel()
	client := newClient(t, &stubProvider{
		flt: func(context.Context, string) openfeature.FloatResolutionDetail { panic("provider bug") },
	})
	_, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts, flags.WithSampleRateFlag("rate", 0.3))...)
	require.NoError(t, err)
	assert.Equal(t, 0.3, r.SampleRate(t.Context()))
}

func TestNewRejectsBadInput(t *testing.T) {
	t.Parallel()
	client := memClient(t, nil)
	bound := func(_ context.Context, s cutover.Stage) cutover.Stage { return s }
	tests := []struct {
		name   string
		client flags.Client
		flag   string
		opts   []flags.Option
		want   string
	}{
		{"nil client", nil, "m", nil, "flags: invalid input: nil client"},
		{"typed nil client", (*openfeature.Client)(nil), "m", nil, "flags: invalid input: nil client"},
		{"empty flag", client, "", nil, "flags: invalid input: empty flag key"},
		{"negative timeout", client, "m", []flags.Option{flags.WithTimeout(-time.Second)}, "timeout -1s: negative"},
		{"fallback not a stage", client, "m", []flags.Option{flags.WithFallback(cutover.Stage(6))}, "fallback Stage(6): cutover: unknown stage"},
		{"rate fallback above 1", client, "m", []flags.Option{flags.WithSampleRateFlag("r", 1.01)}, "sample rate fallback 1.01: outside [0, 1]"},
		{"rate fallback below 0", client, "m", []flags.Option{flags.WithSampleRateFlag("r", -1)}, "outside [0, 1]"},
		{"rate fallback NaN", client, "m", []flags.Option{flags.WithSampleRateFlag("r", math.NaN())}, "sample rate fallback NaN"},
		{"empty rate flag", client, "m", []flags.Option{flags.WithSampleRateFlag("", 1)}, "sample rate flag: empty flag key"},
		{"nil bound", client, "m", []flags.Option{flags.WithBound(nil)}, "bound: nil function"},
		{"nil evaluation context", client, "m", []flags.Option{flags.WithEvaluationContext(nil)}, "evaluation context: nil function"},
		{"nil option", client, "m", []flags.Option{nil}, "option 0 is nil"},
		{"valid then invalid", client, "m", []flags.Option{flags.WithBound(bound), flags.WithTimeout(-1)}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := flags.New(tt.client, tt.flag, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.ErrorIs(t, err, flags.ErrInvalidInput)
			assert.Regexp(t, `^flags: invalid input: `, err.Error())
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	err := func() error {
		_, err := flags.New(client, "m", flags.WithFallback(cutover.Stage(9)))
		return err
	}()
	require.ErrorIs(t, err, cutover.ErrUnknownStage)
	assert.Contains(t, err.Error(), `flag "m"`)
}

func TestNewAcceptsEdgeValues(t *testing.T) {
	t.Parallel()
	client := memClient(t, nil)
	_, err := flags.New(client, "m",
		flags.WithTimeout(0),
		flags.WithSampleRateFlag("r", 0),
		flags.WithSampleRateFlag("r", 1),
		flags.WithFallback(cutover.Complete))
	require.NoError(t, err)
}

// TestConcurrentUse resolves from many goroutines while the flag changes, for
// the race detector.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	p := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{"m": cohortFlag(), "rate": staticFlag(0.5)})
	client := newClient(t, p)
	rd, opts := telemetryOpts()
	r, err := flags.New(client, "m", append(opts,
		flags.WithSampleRateFlag("rate", 1),
		flags.WithBound(func(_ context.Context, s cutover.Stage) cutover.Stage { return min(s, cutover.Live) }))...)
	require.NoError(t, err)
	timed, err := flags.New(client, "m", append(opts, flags.WithTimeout(time.Minute))...)
	require.NoError(t, err)

	const workers, calls = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				ctx := flags.ContextWithTargetingKey(t.Context(), strconv.Itoa(w*calls+i))
				s := r.Stage(ctx)
				assert.True(t, s == cutover.Off || s == cutover.Shadow || s == cutover.Live, "stage %v", s)
				_ = timed.Stage(ctx)
				rate := r.SampleRate(ctx)
				assert.True(t, rate == 0.5 || rate == 0.75, "rate %v", rate)
			}
		})
	}
	for i := range calls {
		v := "shadow"
		if i%2 == 0 {
			v = "complete"
		}
		fs := map[string]memprovider.InMemoryFlag{"m": staticFlag(v), "rate": staticFlag(0.75)}
		if i%3 == 0 {
			fs["m"] = cohortFlag()
		}
		p.UpdateFlags(fs)
	}
	wg.Wait()

	var total int64
	for _, n := range stageCounts(t, rd, "m") {
		total += n
	}
	assert.Equal(t, int64(2*workers*calls), total)
}
