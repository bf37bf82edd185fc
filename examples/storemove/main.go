// Command storemove moves a users repository from one SQLite database to
// another while the service keeps serving, the way a service embeds cutover.
//
// The service's UserRepo is wrapped in a migratingRepo: saves go through a
// dualwrite.Writer and gets through a shadowread.Reader, and one OpenFeature
// flag (served by the SDK's in-memory provider and read through a
// flags.Resolver) says, call by call, which store is written and read. Eight
// goroutines save and get random users while the program changes only that
// flag, as a flag owner would: off, dualwrite, shadow, live, rampdown,
// complete. The new store is flaky: it fails 2% of its calls, and every call
// for a stretch of the live stage, long enough to trip its circuit breaker.
//
// Between stages the program does what operators do: after dualwrite it
// backfills the rows the new store lacks, after every stage it empties the
// repair log by bringing the two copies of each recorded key together,
// and before complete it checks that both stores hold the same rows.
//
// It prints one line per stage: the saves that callers saw succeed and
// fail, and what the library's OpenTelemetry metrics counted. Shadow
// mismatches have three causes here: a new store left behind by a failed
// write (in live, also by the writes that fell back to the old store during
// the outage), a failed read of the new store, and a save landing between
// the two reads of one comparison. Every such key goes to the repair log; a
// repair (package sqlrow's) copies the newer version of a row over the
// older one, so entries left by races do no harm.
//
// Finally it checks that no acknowledged write was lost: for each user, the
// new store must end with the last save that its caller saw succeed. It
// exits with status 1 if a write was lost or the stores differ.
//
// Run it from the repository root with:
//
//	go -C examples run ./storemove
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/shadowread"
)

const (
	numUsers     = 1000 // rows in the table before the migration
	hotUsers     = 200  // the users that traffic reads and writes
	numWorkers   = 8
	opsPerStage  = 2000            // saves and gets, shared by the workers
	stageTimeout = 2 * time.Second // a stage stops early if it takes longer
	failRate     = 0.02            // share of the new store's calls that fail
	stageFlagKey = "users-migration"
)

func main() {
	lost, err := run(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "storemove:", err)
		os.Exit(1)
	}
	if lost {
		os.Exit(1)
	}
}

// run migrates the users and reports whether anything was lost on the way.
func run(ctx context.Context) (failed bool, err error) {
	dir, err := os.MkdirTemp("", "storemove-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	var stores [2]*sqlRepo
	for side, name := range [2]string{"old.db", "new.db"} {
		if stores[side], err = openSQLite(filepath.Join(dir, name)); err != nil {
			return false, err
		}
		defer stores[side].db.Close()
	}
	acked, workers, err := seed(ctx, stores[cutover.Old])
	if err != nil {
		return false, err
	}

	// What a service sets up once: telemetry, the stage flag, the breaker
	// around the new store, the repair log, and the wrapped repository.
	metrics := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
	defer mp.Shutdown(ctx)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	flagAPI := isolated.NewAPI()
	provider := memprovider.NewInMemoryProvider(stageFlag(cutover.Off))
	if err := flagAPI.SetProviderAndWait(ctx, provider); err != nil {
		return false, err
	}
	defer flagAPI.Shutdown(ctx)
	stage, err := flags.New(flagAPI.NewClient(), stageFlagKey, flags.WithMeterProvider(mp), flags.WithLogger(logger))
	if err != nil {
		return false, err
	}

	cb, err := breaker.New("users-new-db", breaker.WithMeterProvider(mp), breaker.WithLogger(logger),
		breaker.WithSettings(breaker.Settings{
			Timeout:     10 * time.Millisecond,
			ReadyToTrip: func(c breaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
			IsFailure: func(err error) bool {
				return !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrStale)
			},
		}))
	if err != nil {
		return false, err
	}
	repairs := &cutover.MemoryRepairLog{}
	saves, err := dualwrite.New("users.save", stage, repairs, dualwrite.WithBreaker(cb),
		dualwrite.WithMeterProvider(mp), dualwrite.WithLogger(logger))
	if err != nil {
		return false, err
	}
	gets, err := shadowread.New[User]("users.get", stage, shadowread.WithBreaker[User](cb),
		shadowread.WithRepairLog[User](repairs), shadowread.WithMeterProvider[User](mp), shadowread.WithLogger[User](logger),
		// An unreachable store has no answer to compare; "not found" is one.
		shadowread.WithFailures[User](func(err error) bool { return errors.Is(err, errInjected) }))
	if err != nil {
		return false, err
	}
	newStore := &flakyRepo{next: stores[cutover.New], failRate: failRate}
	repo := &migratingRepo{stores: [2]UserRepo{stores[cutover.Old], newStore}, saves: saves, gets: gets}

	fmt.Printf("moving %d users from old.db to new.db while %d goroutines save and get %d of them,\n",
		numUsers, numWorkers, hotUsers)
	fmt.Printf("%d calls per stage; the new store fails %.0f%% of its calls, and every call for a sixth of live\n\n",
		opsPerStage, failRate*100)
	fmt.Printf("%-10s %7s %7s %9s %8s %9s %9s %9s %14s %8s %11s\n", "stage", "writes", "failed",
		"new errs", "refused", "recorded", "compared", "mismatch", "fallbacks w/r", "dropped", "repair log")

	var before counts
	var backfilled, logged, repaired, rows int
	same := false
	for _, s := range cutover.Stages {
		provider.UpdateFlags(stageFlag(s)) // the one change a flag owner makes
		var during func(n int64)
		if s == cutover.Live {
			during = outage(newStore, opsPerStage/3, opsPerStage/2)
		}
		ok, bad := traffic(ctx, repo, workers, during)
		newStore.down.Store(false)
		if err := gets.Drain(ctx); err != nil {
			return false, err
		}
		now, err := collect(ctx, metrics)
		if err != nil {
			return false, err
		}
		d := now.sub(before)
		before = now
		fmt.Printf("%-10s %7d %7d %9d %8d %9d %9d %9d %14s %8d %11d\n", s, ok, bad, d.newErrors, d.refused,
			d.recorded, d.compared, d.mismatches, fmt.Sprintf("%d/%d", d.writeFalls, d.readFalls), d.dropped, repairs.Len())

		// Between stages: backfill, repair, verify.
		if s == cutover.DualWrite {
			if backfilled, err = backfill(ctx, stores[cutover.Old], stores[cutover.New], 50); err != nil {
				return false, err
			}
		}
		n, copied, err := repair(ctx, repairs, stores)
		if err != nil {
			return false, err
		}
		logged, repaired = logged+n, repaired+copied
		if s == cutover.Rampdown { // the last stage that writes the old store
			if same, rows, err = identical(ctx, stores); err != nil {
				return false, err
			}
		}
	}

	writes := 0
	for _, w := range workers {
		for id, u := range w.acked {
			acked[id] = u
		}
		writes += w.saves
	}
	lost, err := lostWrites(ctx, stores[cutover.New], acked)
	if err != nil {
		return false, err
	}
	fmt.Printf("\nbackfill copied %d rows to the new store after dualwrite\n", backfilled)
	fmt.Printf("repairs: %d repair-log entries drained, %d keys repaired\n", logged, repaired)
	fmt.Printf("stores identical: %t (%d rows, checked after rampdown)\n", same, rows)
	fmt.Printf("writes lost: %d (%d acknowledged saves; last one of each of %d users checked)\n", len(lost), writes, len(acked))
	if len(lost) > 0 {
		fmt.Printf("users whose last acknowledged save is missing: %v\n", lost)
	}
	return !same || len(lost) > 0, nil
}

// stageFlag returns the flag set of the in-memory provider with the stage
// flag serving s. Every stage is a variant; moving the migration means
// choosing another default variant.
func stageFlag(s cutover.Stage) map[string]memprovider.InMemoryFlag {
	variants := map[string]any{}
	for _, st := range cutover.Stages {
		variants[st.String()] = st.String()
	}
	return map[string]memprovider.InMemoryFlag{stageFlagKey: {
		Key: stageFlagKey, State: memprovider.Enabled, DefaultVariant: s.String(), Variants: variants,
	}}
}

// worker is one goroutine of traffic. It saves only its own users, so the
// last save of each user that succeeded is well defined.
type worker struct {
	users []string
	acked map[string]User  // last acknowledged save of each of its users
	tried map[string]int64 // highest version tried for each of its users
	saves int              // saves acknowledged
}

// seed writes the users to the old store, as they were before the
// migration, and hands the hot ones out to the workers. It returns every
// user as written, the state the stores must keep for users nobody saves.
func seed(ctx context.Context, old *sqlRepo) (map[string]User, []*worker, error) {
	workers := make([]*worker, numWorkers)
	for i := range workers {
		workers[i] = &worker{acked: map[string]User{}, tried: map[string]int64{}}
	}
	seeded := map[string]User{}
	for i := range numUsers {
		u := user(userID(i), 1)
		if err := old.Save(ctx, u); err != nil {
			return nil, nil, fmt.Errorf("seed: %w", err)
		}
		seeded[u.ID] = u
		if i < hotUsers {
			w := workers[i%numWorkers]
			w.users = append(w.users, u.ID)
			w.acked[u.ID], w.tried[u.ID] = u, 1
		}
	}
	return seeded, workers, nil
}

func userID(i int) string { return fmt.Sprintf("user-%04d", i) }

func user(id string, version int64) User {
	return User{ID: id, Name: "User " + id, Email: fmt.Sprintf("%s.v%d@example.com", id, version), Version: version}
}

// save saves one of w's users with a new version and reports whether the
// repository acknowledged it.
func (w *worker) save(ctx context.Context, repo UserRepo) bool {
	id := w.users[rand.IntN(len(w.users))]
	w.tried[id]++
	u := user(id, w.tried[id])
	if err := repo.Save(ctx, u); err != nil {
		return false
	}
	w.acked[id] = u
	w.saves++
	return true
}

// traffic runs the workers until they have made opsPerStage calls between
// them, half saves and half gets, or stageTimeout has passed. during, if
// not nil, is called before the n-th call. It returns the saves that
// succeeded and failed.
func traffic(ctx context.Context, repo UserRepo, workers []*worker, during func(n int64)) (ok, failed int64) {
	ctx, cancel := context.WithTimeout(ctx, stageTimeout)
	defer cancel()
	var next, okN, failN atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > opsPerStage {
					return
				}
				if during != nil {
					during(n)
				}
				switch {
				case rand.IntN(2) == 0:
					_, _ = repo.Get(ctx, userID(rand.IntN(hotUsers)))
				case w.save(ctx, repo):
					okN.Add(1)
				default:
					failN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}

// outage returns a hook for traffic that takes the store down from the
// from-th call to the to-th.
func outage(s *flakyRepo, from, to int64) func(n int64) {
	return func(n int64) {
		switch n {
		case from:
			s.down.Store(true)
		case to:
			s.down.Store(false)
		}
	}
}
