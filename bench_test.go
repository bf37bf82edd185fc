package cutover_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/internal/testutil"
	"github.com/cutover-go/cutover/shadowread"
)

// The whole operation, stage resolution included, against its floor: one
// bare OpenFeature string evaluation on the same in-memory provider plus
// the direct call of the same fake store function.

type kv struct {
	mu sync.RWMutex
	m  map[string]string
}

func (s *kv) Put(_ context.Context, key, value string) error {
	s.mu.Lock()
	s.m[key] = value
	s.mu.Unlock()
	return nil
}

func (s *kv) Get(_ context.Context, key string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[key], nil
}

func openFeatureClient(b *testing.B, stage cutover.Stage) *openfeature.Client {
	b.Helper()
	return testutil.MemClient(b, map[string]memprovider.InMemoryFlag{"users-migration": testutil.StaticFlag(stage.String())})
}

// handoff returns a floor for an asynchronous shadow read: the flag, then
// get on the authoritative store, then get on the other store on a
// goroutine of its own, at most shadowread.DefaultMaxConcurrent at once,
// dropping the call when that many are running.
func handoff(b *testing.B, flag func() error, get func(s *kv) error, stores [2]*kv) func() error {
	sem := make(chan struct{}, shadowread.DefaultMaxConcurrent)
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	return func() error {
		if err := flag(); err != nil {
			return err
		}
		if err := get(stores[0]); err != nil {
			return err
		}
		select {
		case sem <- struct{}{}:
		default:
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = get(stores[1])
			<-sem
		}()
		return nil
	}
}

// BenchmarkOperationWithOpenFeature measures each operation against its
// floor, one bare evaluation of the flag on the same client plus the direct
// calls of the stores the operation calls, called in alternating rounds in
// the same benchmark (x-floor, ns-over-floor, allocs-over-floor; see
// testutil.Paired), and with the OpenTelemetry SDK against the same
// operation without it (x-nosdk, ns-over-nosdk):
//
//	go test -run '^$' -bench 'BenchmarkOperationWithOpenFeature' .
func BenchmarkOperationWithOpenFeature(b *testing.B) {
	ctx := context.Background()
	quiet := testutil.Quiet()
	for _, stage := range []cutover.Stage{cutover.Off, cutover.DualWrite, cutover.Shadow} {
		client := openFeatureClient(b, stage)
		stores := [2]*kv{{m: map[string]string{"42": "Ada"}}, {m: map[string]string{"42": "Ada"}}}
		n := 2 // the stores an operation calls
		if stage == cutover.Off {
			n = 1
		}
		resolver := func(b *testing.B, mp *sdkmetric.MeterProvider) *flags.Resolver {
			opts := []flags.Option{flags.WithLogger(quiet)}
			if mp != nil {
				opts = append(opts, flags.WithMeterProvider(mp))
			}
			r, err := flags.New(client, "users-migration", opts...)
			require.NoError(b, err)
			return r
		}
		// flag evaluates the flag bare.
		flag := func() error {
			d, err := client.StringValueDetails(ctx, "users-migration", "off", openfeature.EvaluationContext{})
			if err != nil || d.Value != stage.String() {
				return fmt.Errorf("flag: %q, %w", d.Value, err)
			}
			return nil
		}
		// floor evaluates the flag and calls op on the first n stores.
		floor := func(op func(s *kv) error) func() error {
			return func() error {
				if err := flag(); err != nil {
					return err
				}
				for _, s := range stores[:n] {
					if err := op(s); err != nil {
						return err
					}
				}
				return nil
			}
		}
		write := func(b *testing.B, mp *sdkmetric.MeterProvider) func() error {
			wopts := []dualwrite.Option{dualwrite.WithLogger(quiet)}
			if mp != nil {
				wopts = append(wopts, dualwrite.WithMeterProvider(mp))
			}
			w, err := dualwrite.New("users.save", resolver(b, mp), new(cutover.MemoryRepairLog), wopts...)
			require.NoError(b, err)
			return func() error {
				return w.Write(ctx, "42", func(ctx context.Context, side cutover.Side) error {
					return stores[side].Put(ctx, "42", "Ada")
				})
			}
		}
		read := func(b *testing.B, opts ...shadowread.Option[string]) func() error {
			r, err := shadowread.New("users.get", resolver(b, nil), append(opts, shadowread.WithLogger[string](quiet))...)
			require.NoError(b, err)
			b.Cleanup(func() { require.NoError(b, r.Drain(context.Background())) })
			return func() error {
				_, err := r.Read(ctx, "42", func(ctx context.Context, side cutover.Side) (string, error) {
					return stores[side].Get(ctx, "42")
				})
				return err
			}
		}

		b.Run(stage.String()+"/write", func(b *testing.B) {
			testutil.Paired(b, "floor", floor(func(s *kv) error { return s.Put(ctx, "42", "Ada") }), write(b, nil))
		})
		b.Run(stage.String()+"/write/sdk-metrics", func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			testutil.Paired(b, "nosdk", write(b, nil), write(b, mp))
		})
		if stage == cutover.DualWrite {
			continue // reads one store, as in off
		}
		getOne := func(s *kv) error { _, err := s.Get(ctx, "42"); return err }
		get := floor(getOne)
		b.Run(stage.String()+"/read", func(b *testing.B) { testutil.Paired(b, "floor", get, read(b)) })
		if stage == cutover.Shadow {
			// An asynchronous read hands its comparison to a goroutine,
			// which on two cores costs the caller as much as a store call:
			// this floor makes the same handoff by hand, the other store's
			// call on a goroutine of its own under the same bound.
			b.Run(stage.String()+"/read/handoff", func(b *testing.B) {
				testutil.Paired(b, "handoff-floor", handoff(b, flag, getOne, stores), read(b))
			})
			b.Run(stage.String()+"/read/sync", func(b *testing.B) {
				testutil.Paired(b, "floor", get, read(b, shadowread.WithSynchronous[string]()))
			})
		}
	}
}
