package flags_test

import (
	"context"
	"fmt"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
)

func Example() {
	ctx := context.Background()

	// The flag "users-store" moves user 42 to shadow reads; everyone else
	// stays on the old store. Any OpenFeature provider works the same way.
	cohort := func(_ memprovider.InMemoryFlag, fc openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if fc[openfeature.TargetingKey] == "42" {
			return "shadow", openfeature.ProviderResolutionDetail{Reason: openfeature.TargetingMatchReason, Variant: "shadow"}
		}
		return "off", openfeature.ProviderResolutionDetail{Reason: openfeature.DefaultReason, Variant: "off"}
	}
	provider := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"users-store": {State: memprovider.Enabled, ContextEvaluator: &cohort},
		"users-store-sample": {
			State:          memprovider.Enabled,
			DefaultVariant: "tenth",
			Variants:       map[string]any{"tenth": 0.1},
		},
		"orders-store": {
			State:          memprovider.Enabled,
			DefaultVariant: "typo",
			Variants:       map[string]any{"typo": "shaddow"},
		},
	})
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		fmt.Println(err)
		return
	}
	client := api.NewClient()

	users, err := flags.New(client, "users-store", flags.WithSampleRateFlag("users-store-sample", 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, id := range []string{"41", "42"} {
		ctx := flags.ContextWithTargetingKey(ctx, id)
		fmt.Printf("user %s: %v\n", id, users.Stage(ctx))
	}
	fmt.Println("compare", users.SampleRate(ctx), "of shadow reads")

	// A value that is not a stage falls back (and is counted and logged).
	orders, err := flags.New(client, "orders-store", flags.WithFallback(cutover.DualWrite))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("orders:", orders.Stage(ctx))

	// Output:
	// user 41: off
	// user 42: shadow
	// compare 0.1 of shadow reads
	// orders: dualwrite
}
