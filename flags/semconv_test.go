package flags_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
)

// The OpenTelemetry semantic conventions' feature flag attributes.
const (
	keyFlagKey    = attribute.Key("feature_flag.key")
	keyVariant    = attribute.Key("feature_flag.result.variant")
	keyFlagReason = attribute.Key("feature_flag.result.reason")
)

// reasonProvider answers every string flag with "shadow" and the reason
// the flag's name gives after "r-".
func reasonProvider() *stubProvider {
	return &stubProvider{str: func(_ context.Context, flag string) openfeature.StringResolutionDetail {
		return openfeature.StringResolutionDetail{Value: "shadow", ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason: openfeature.Reason(strings.TrimPrefix(flag, "r-")), Variant: "v1"}}
	}}
}

func TestFeatureFlagAttributes(t *testing.T) {
	t.Parallel()
	client := newClient(t, reasonProvider())
	rd, opts := telemetryOpts()
	for reason, want := range map[string]string{
		"STATIC": "static", "DEFAULT": "default", "TARGETING_MATCH": "targeting_match", "SPLIT": "split",
		"CACHED": "cached", "DISABLED": "disabled", "UNKNOWN": "unknown", "STALE": "stale", "ERROR": "error",
		"": "unknown", "OUR_OWN": "unknown",
	} {
		flag := "r-" + reason
		r, err := flags.New(client, flag, opts...)
		require.NoError(t, err)
		assert.Equal(t, cutover.Shadow, r.Stage(t.Context()))
		got := counts(t, rd, "cutover.flags.resolutions", keyFlagKey, keyVariant, keyFlagReason, keyFlag, keyStage, keyReason)
		assert.Equal(t, int64(1), got[flag+"/shadow/"+want+"/"+flag+"/shadow/flag"], "provider reason %q: %v", reason, got)
	}
}

// A fallback is counted with the reason error whatever the provider said;
// a clamp keeps the provider's reason, with the clamped stage as the
// variant.
func TestFeatureFlagAttributesOfFallbacksAndClamps(t *testing.T) {
	t.Parallel()
	mem := memClient(t, map[string]memprovider.InMemoryFlag{
		"live":    staticFlag("live"),
		"bad":     staticFlag("nonsense"),
		"wrong":   staticFlag(42),
		"targets": cohortFlag(),
	})
	rd, opts := telemetryOpts()
	upToDualWrite := flags.WithBound(func(_ context.Context, s cutover.Stage) cutover.Stage { return min(s, cutover.DualWrite) })
	noStage := flags.WithBound(func(context.Context, cutover.Stage) cutover.Stage { return cutover.Stage(200) })
	for _, tc := range []struct {
		flag string
		opts []flags.Option
		want string // variant/result reason/cutover.reason
	}{
		{"live", nil, "live/static/flag"},
		{"live", []flags.Option{upToDualWrite}, "dualwrite/static/clamped"},
		{"live", []flags.Option{noStage, flags.WithFallback(cutover.Rampdown)}, "rampdown/error/error"},
		{"bad", []flags.Option{flags.WithFallback(cutover.Rampdown)}, "rampdown/error/unknown_value"},
		{"bad", []flags.Option{upToDualWrite}, "off/error/unknown_value"},
		{"bad", []flags.Option{upToDualWrite, flags.WithFallback(cutover.Complete)}, "dualwrite/error/clamped"},
		{"wrong", nil, "off/error/error"},
		{"missing", nil, "off/error/error"},
		{"targets", nil, "off/default/flag"},
	} {
		r, err := flags.New(mem, tc.flag, append(append([]flags.Option{}, opts...), tc.opts...)...)
		require.NoError(t, err)
		before := counts(t, rd, "cutover.flags.resolutions", keyFlagKey, keyVariant, keyFlagReason, keyReason)
		r.Stage(t.Context())
		after := counts(t, rd, "cutover.flags.resolutions", keyFlagKey, keyVariant, keyFlagReason, keyReason)
		key := tc.flag + "/" + tc.want
		assert.Equal(t, before[key]+1, after[key], "%s with %d options: %v", tc.flag, len(tc.opts), after)
	}
}
