package flagstest_test

import (
	"context"
	"fmt"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/flags/flagstest"
)

// In a test, flagstest.New(t) replaces Start and Close, and ff.Resolver(t,
// ...) replaces flags.New and its error check.
func Example() {
	ctx := context.Background()
	ff, err := flagstest.Start(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = ff.Close(ctx) }()

	ff.Set("users-store", cutover.DualWrite)
	ff.SetFor("users-store", "42", cutover.Shadow)
	ff.SetSampleRate("users-store-sample", 0.5)

	r, err := flags.New(ff.Client(), "users-store", flags.WithSampleRateFlag("users-store-sample", 1))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, id := range []string{"41", "42"} {
		fmt.Printf("user %s: %v\n", id, r.Stage(flags.ContextWithTargetingKey(ctx, id)))
	}
	fmt.Println("sample rate:", r.SampleRate(ctx))

	// The next evaluation sees the change.
	ff.Set("users-store", cutover.Live)
	fmt.Println("user 41 now:", r.Stage(flags.ContextWithTargetingKey(ctx, "41")))

	// Output:
	// user 41: dualwrite
	// user 42: shadow
	// sample rate: 0.5
	// user 41 now: live
}
