package flags

import (
	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// flagReason is a value of OpenTelemetry's feature_flag.result.reason: how
// the flag system determined the value of a flag. It indexes the
// precomputed metric attribute sets.
type flagReason uint8

const (
	flagStatic         flagReason = iota // no dynamic evaluation
	flagDefault                          // fell back to a pre-configured value
	flagTargetingMatch                   // a rule or user targeting matched
	flagSplit                            // pseudorandom assignment
	flagCached                           // retrieved from a cache
	flagDisabled                         // the flag is disabled in the flag system
	flagUnknown                          // the provider gave no reason, or one of its own
	flagStale                            // possibly out of date
	flagError                            // the value came from an error
	numFlagReasons
)

// flagReasonAttrs are the attributes of the flag reasons, as the semantic
// conventions write them.
var flagReasonAttrs = [numFlagReasons]attribute.KeyValue{
	semconv.FeatureFlagResultReasonStatic,
	semconv.FeatureFlagResultReasonDefault,
	semconv.FeatureFlagResultReasonTargetingMatch,
	semconv.FeatureFlagResultReasonSplit,
	semconv.FeatureFlagResultReasonCached,
	semconv.FeatureFlagResultReasonDisabled,
	semconv.FeatureFlagResultReasonUnknown,
	semconv.FeatureFlagResultReasonStale,
	semconv.FeatureFlagResultReasonError,
}

// staleReason is the OpenFeature reason STALE, which the Go SDK has no
// constant for.
const staleReason openfeature.Reason = "STALE"

// flagReasonOf maps the reason an OpenFeature provider gave for a value
// onto the semantic conventions' reasons, whose names are OpenFeature's in
// lower case. A reason of the provider's own, or none, is unknown.
func flagReasonOf(r openfeature.Reason) flagReason {
	switch r {
	case openfeature.StaticReason:
		return flagStatic
	case openfeature.DefaultReason:
		return flagDefault
	case openfeature.TargetingMatchReason:
		return flagTargetingMatch
	case openfeature.SplitReason:
		return flagSplit
	case openfeature.CachedReason:
		return flagCached
	case openfeature.DisabledReason:
		return flagDisabled
	case staleReason:
		return flagStale
	case openfeature.ErrorReason:
		return flagError
	}
	return flagUnknown
}

// flagReasonFor returns the flag reason a resolution of the library's
// reason rs is counted with, fr being the reason the provider gave:
// fr itself when the flag's value was used, or clamped (a clamp changes
// the stage, not how the flag system determined its value, and
// cutover.reason says it happened); error when the library used its
// fallback instead of the flag's value: a provider error, a value that is
// not a stage, a timeout, a bound that returned no stage.
func flagReasonFor(rs reason, fr flagReason) flagReason {
	if rs == reasonFlag || rs == reasonClamped {
		return fr
	}
	return flagError
}

// stageAttrs returns the attributes of one stage resolution of flag: the
// library's own, and OpenTelemetry's feature_flag ones, with the stage's
// name as the variant.
func stageAttrs(flag, stage string, rs reason, fr flagReason) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.FeatureFlagKey(flag),
		semconv.FeatureFlagResultVariant(stage),
		flagReasonAttrs[flagReasonFor(rs, fr)],
	}
}
