package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cutover-go/cutover/breaker"
)

func Example() {
	b, err := breaker.New("users-db",
		breaker.WithSettings(breaker.Settings{
			ReadyToTrip: func(c breaker.Counts) bool { return c.ConsecutiveFailures >= 2 },
		}),
		breaker.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	down := func(context.Context) error { return errors.New("connection refused") }
	for range 3 {
		err := b.Do(ctx, down)
		fmt.Println(b.State(), errors.Is(err, breaker.ErrOpen))
	}
	// Output:
	// closed false
	// open false
	// open true
}
