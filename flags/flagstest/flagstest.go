// Package flagstest provides in-memory feature flags for testing code that
// resolves stages with package flags.
//
// A [Flags] runs a real OpenFeature API of its own (not the global one) with
// the SDK's in-memory provider, so the production [flags.Resolver] code path
// runs unchanged and tests that each create their own Flags can run in
// parallel:
//
//	func TestSave(t *testing.T) {
//		t.Parallel()
//		ff := flagstest.New(t)
//		ff.Set("users-store", cutover.Shadow)
//		ff.SetFor("users-store", "42", cutover.Live)
//		r := ff.Resolver(t, "users-store")
//		// ... build the code under test with r ...
//	}
package flagstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
)

// Flags is a set of in-memory flags served through an OpenFeature client of
// its own. Create it with [New] in a test, or with [Start] elsewhere; the
// zero value is not usable. It is safe for concurrent use: a change made by
// one of the Set methods applies to every evaluation that starts after the
// method returns, and evaluations running at that moment see either the old
// or the new flags, never a mix.
type Flags struct {
	api      *openfeature.EvaluationAPI
	provider *memprovider.InMemoryProvider
	client   *openfeature.Client

	mu    sync.Mutex
	flags map[string]*flagState
}

// flagState is what the Set methods have said about one flag. It changes
// only under Flags.mu; the provider gets immutable copies.
type flagState struct {
	value     any // nil: no value for keys without an override
	overrides map[string]string
}

// New returns flags for the test tb, with no flag defined: until a Set
// method defines one, evaluating it fails with a flag-not-found error, which
// a Resolver turns into its fallback stage. The OpenFeature API is shut down
// when the test ends. New fails the test if the API cannot start.
func New(tb testing.TB) *Flags {
	tb.Helper()
	f, err := Start(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return f
}

// Start returns flags like [New] for code that has no testing.TB, such as
// examples and TestMain. The caller must call [Flags.Close] when done.
func Start(ctx context.Context) (*Flags, error) {
	f := &Flags{
		api:      isolated.NewAPI(),
		provider: memprovider.NewInMemoryProvider(nil),
		flags:    map[string]*flagState{},
	}
	if err := f.api.SetProviderAndWait(ctx, f.provider); err != nil {
		return nil, errors.Join(fmt.Errorf("flagstest: start in-memory provider: %w", err), f.api.Shutdown(ctx))
	}
	f.client = f.api.NewClient()
	return f, nil
}

// Close shuts down the OpenFeature API of f and releases its provider; f
// and its client must not be used afterwards. [New] calls it when the test
// ends.
func (f *Flags) Close(ctx context.Context) error {
	if err := f.api.Shutdown(ctx); err != nil {
		return fmt.Errorf("flagstest: shut down in-memory provider: %w", err)
	}
	return nil
}

// Client returns the OpenFeature client that serves the flags, to pass to
// [flags.New]. Every call returns the same client.
func (f *Flags) Client() *openfeature.Client { return f.client }

// Set makes flag give stage s to every targeting key without an override
// from [Flags.SetFor]; overrides stay in place. A value of s that is not a
// stage is served as its String form, such as "Stage(9)", which a Resolver
// treats as an unknown value.
func (f *Flags) Set(flag string, s cutover.Stage) {
	f.update(flag, func(st *flagState) { st.value = s.String() })
}

// SetFor makes flag give stage s to targeting key key, whatever the flag
// gives everyone else. Targeting keys come from the evaluation context, for
// example through [flags.ContextWithTargetingKey]. Until [Flags.Set] (or
// SetValue) gives the flag a value for everyone, other keys get a
// flag-not-found error.
func (f *Flags) SetFor(flag, key string, s cutover.Stage) {
	f.update(flag, func(st *flagState) {
		// Copy on write: providers may still read the previous map.
		o := maps.Clone(st.overrides)
		if o == nil {
			o = map[string]string{}
		}
		o[key] = s.String()
		st.overrides = o
	})
}

// SetValue makes flag give the raw string value to every targeting key
// without an override, to test values that are not stage names.
func (f *Flags) SetValue(flag, value string) {
	f.update(flag, func(st *flagState) { st.value = value })
}

// SetSampleRate makes the numeric flag give rate to everyone, for
// [flags.WithSampleRateFlag]. rate is served as is, even outside [0, 1], so
// tests can check that such values fall back.
func (f *Flags) SetSampleRate(flag string, rate float64) {
	f.update(flag, func(st *flagState) { st.value = rate })
}

// Resolver returns a [flags.Resolver] of flag served by f, and fails the test
// tb if [flags.New] rejects the options.
func (f *Flags) Resolver(tb testing.TB, flag string, opts ...flags.Option) *flags.Resolver {
	tb.Helper()
	r, err := flags.New(f.client, flag, opts...)
	if err != nil {
		tb.Fatalf("flagstest: resolver for %q: %v", flag, err)
	}
	return r
}

// update changes the state of one flag and hands the provider a new flag
// set. Holding mu across UpdateFlags keeps the provider's updates in the
// order the changes were made.
func (f *Flags) update(flag string, change func(*flagState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.flags[flag]
	if st == nil {
		st = &flagState{}
		f.flags[flag] = st
	}
	change(st)
	set := make(map[string]memprovider.InMemoryFlag, len(f.flags))
	for key, st := range f.flags {
		set[key] = st.memFlag(key)
	}
	f.provider.UpdateFlags(set)
}

const defaultVariant = "default"

// memFlag returns the in-memory flag for the current state. Its evaluator
// captures the state's values, not the state, so it reads an immutable
// snapshot while later changes build new ones.
func (st *flagState) memFlag(key string) memprovider.InMemoryFlag {
	mf := memprovider.InMemoryFlag{Key: key, State: memprovider.Enabled}
	if st.value != nil {
		mf.DefaultVariant = defaultVariant
		mf.Variants = map[string]any{defaultVariant: st.value}
	}
	if len(st.overrides) == 0 && st.value != nil {
		return mf
	}
	value, overrides := st.value, st.overrides
	eval := func(_ memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if tk, ok := fc[openfeature.TargetingKey].(string); ok {
			if v, ok := overrides[tk]; ok {
				return v, openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "key:" + tk}
			}
		}
		if value == nil {
			return nil, openfeature.ProviderResolutionDetail{
				ResolutionError: openfeature.NewFlagNotFoundResolutionError(fmt.Sprintf("flag %s has no value for this targeting key", key)),
				Reason:          openfeature.ErrorReason,
			}
		}
		return value, openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: defaultVariant}
	}
	mf.ContextEvaluator = &eval
	return mf
}
