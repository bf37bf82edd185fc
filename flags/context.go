package flags

import (
	"context"

	"github.com/open-feature/go-sdk/openfeature"
)

// ContextWithTargetingKey returns a copy of ctx whose OpenFeature transaction
// context has targeting key key, merged with the transaction context ctx
// already carries: its attributes are kept, and its targeting key is
// replaced unless key is empty. Every evaluation made with the returned context, by a
// [Resolver] or directly through an OpenFeature client, targets key. It
// allocates, so call it once per request rather than once per evaluation.
func ContextWithTargetingKey(ctx context.Context, key string) context.Context {
	return openfeature.MergeTransactionContext(ctx, openfeature.NewEvaluationContext(key, nil))
}
