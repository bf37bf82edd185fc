package trigger_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/trigger"
)

func Example() {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	// A service wires demote to the migration's demotion (the ceiling in
	// the metadata) and runs m.Run(ctx) on a goroutine of its own.
	demote := func(_ context.Context, f trigger.Firing) (trigger.Result, error) {
		fmt.Println("demote:", f)
		return trigger.Result{}, nil
	}
	m, err := trigger.New("users-email", demote, trigger.WithInstance("api-1"),
		trigger.WithClock(func() time.Time { return now }), trigger.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer m.Close()

	stores := dualwritetest.NewPair[string]()
	saves, err := dualwrite.New("users.save", cutover.Fixed(cutover.Live), new(cutover.MemoryRepairLog),
		dualwrite.WithObserver(m), dualwrite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	stores.New.FailNext(10, nil) // the new store has a bad minute
	for i := range 100 {
		id := fmt.Sprint(i)
		_ = saves.Write(ctx, id, func(ctx context.Context, side cutover.Side) error {
			return stores.Side(side).Put(ctx, id, "Ada")
		})
	}
	now = now.Add(time.Second)
	m.Evaluate(ctx)

	rec := httptest.NewRecorder()
	m.Readiness().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Println("readiness:", rec.Code)
	for _, t := range m.Health().Triggers {
		if t.Action != trigger.Demote {
			continue // the alarms: latency, whose figure is the fake stores' real latencies, and mismatches
		}
		fmt.Printf("%s %s %.2f over %d\n", t.Kind, t.State, t.Figure, t.Samples)
	}
	// Output:
	// demote: users-email demote: error_rate 0.1 (threshold 0.05) over 5m0s, 100 samples
	// demote: users-email demote: availability 0.9 (threshold 0.95) over 2m0s, 100 samples
	// readiness: 503
	// error_rate firing 0.10 over 100
	// availability firing 0.90 over 100
}
