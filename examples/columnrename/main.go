// Command columnrename renames customers.customer_phone to phone_number
// while the service keeps reading and writing customers, with every step of
// expand-contract done by cutover:
//
//  1. expand: a phase move adds the phone_number column;
//  2. dualwrite: every save writes both columns;
//  3. backfill: rows written before dual writes began are copied in
//     batches, with a progress bar, then the two columns are verified (a
//     key whose new-column write failed differs until the repair log is
//     drained, so the program drains it and verifies again); shadow reads
//     compare them under traffic;
//  4. switchreads: reads move to phone_number (live, then rampdown);
//  5. contract: only phone_number is used, and once every instance
//     reports that, the old column is dropped.
//
// One OpenFeature flag says which stage a call runs in, as a flag owner
// would set it, and the migration's phase, kept in metadata tables of the
// same database, bounds it: the flag is set ahead of the data at every step
// and never wins. Writes to the new column fail now and then (1%, a
// simulated fault); the keys go to the repair log, which a repairer drains
// in the background.
//
// At the end it prints a summary: rows moved, mismatches, repairs, writes
// lost (which must be 0) and the callers' p99 latency in each phase. It
// exits with status 1 if any acknowledged write was lost.
//
// Run it from the repository root with:
//
//	go -C examples run ./columnrename
//
// On PostgreSQL or MySQL/MariaDB instead of the default embedded SQLite
// (the program drops and recreates its own tables there):
//
//	go -C examples run ./columnrename -driver pgx -dsn 'postgres://user@127.0.0.1:5432/db?sslmode=disable'
//	go -C examples run ./columnrename -driver mysql -dsn 'user@tcp(127.0.0.1:3306)/db'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/shadowread"
)

const (
	migration = "customers-phone"
	flagKey   = "customers-phone"
	instance  = "columnrename-1"
	phaseTTL  = 100 * time.Millisecond // how stale an instance's view of the phase may be
)

type options struct {
	driver, dsn string
	customers   int
	workers     int
	ops         int
}

func main() {
	var o options
	flag.StringVar(&o.driver, "driver", "sqlite", "database driver: sqlite, pgx or mysql")
	flag.StringVar(&o.dsn, "dsn", "", "data source name (default: a new SQLite file in a temporary directory)")
	flag.IntVar(&o.customers, "customers", 20000, "customers in the table before the migration")
	flag.IntVar(&o.workers, "workers", 8, "goroutines calling the repository")
	flag.IntVar(&o.ops, "ops", 2000, "repository calls in each step")
	flag.Parse()
	lost, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "columnrename:", err)
		os.Exit(1)
	}
	if lost > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (lost int, err error) {
	if o.customers < o.workers || o.workers < 1 || o.ops < 1 {
		return 0, fmt.Errorf("need at least one worker, one call per step and as many customers as workers")
	}
	db, cleanup, err := open(o.driver, o.dsn)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	if err := seed(ctx, db, o.customers); err != nil {
		return 0, err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	metrics := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
	defer mp.Shutdown(ctx)

	store, err := expandcontract.Open(ctx, db, expandcontract.WithTablePrefix("columnrename_"),
		expandcontract.WithLockTimeout(time.Second), expandcontract.WithLogger(quiet), expandcontract.WithMeterProvider(mp))
	if err != nil {
		return 0, err
	}
	mig, err := store.Migration(migration)
	if err != nil {
		return 0, err
	}
	if _, err := mig.Ensure(ctx, instance); err != nil {
		return 0, err
	}
	repairs, err := repair.NewLog(mig)
	if err != nil {
		return 0, err
	}

	// The flag owner's flag, bounded by the migration's phase.
	api := isolated.NewAPI()
	defer api.Shutdown(ctx)
	provider := memprovider.NewInMemoryProvider(nil)
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		return 0, err
	}
	setFlag := func(s cutover.Stage) {
		provider.UpdateFlags(map[string]memprovider.InMemoryFlag{flagKey: {
			Key: flagKey, State: memprovider.Enabled, DefaultVariant: "v", Variants: map[string]any{"v": s.String()}}})
	}
	bound, err := mig.Bound(phaseTTL, instance)
	if err != nil {
		return 0, err
	}
	stage, err := flags.New(api.NewClient(), flagKey, flags.WithBound(bound.Clamp),
		flags.WithLogger(quiet), flags.WithMeterProvider(mp))
	if err != nil {
		return 0, err
	}

	saves, err := dualwrite.New("customers.save_phone", stage, repairs,
		dualwrite.WithLogger(quiet), dualwrite.WithMeterProvider(mp))
	if err != nil {
		return 0, err
	}
	gets, err := shadowread.New[Customer]("customers.get", stage,
		shadowread.WithRepairLog[Customer](repairs), shadowread.WithLogger[Customer](quiet), shadowread.WithMeterProvider[Customer](mp),
		shadowread.WithFailures[Customer](func(err error) bool { return errors.Is(err, errInjected) }))
	if err != nil {
		return 0, err
	}
	repo := &migratingRepo{stores: [2]columnStore{
		cutover.Old: {db: db, column: "customer_phone"},
		cutover.New: {db: db, column: "phone_number", failRate: 0.01},
	}, saves: saves, gets: gets}

	repairer, err := repair.New(repairs, repairFunc(db), repair.WithPollInterval(50*time.Millisecond),
		repair.WithBackoff(10*time.Millisecond, time.Second))
	if err != nil {
		return 0, err
	}
	defer repairer.Close()
	repairCtx, stopRepairs := context.WithCancel(ctx)
	defer stopRepairs()
	repairsDone := make(chan error, 1)
	go func() { repairsDone <- repairer.Run(repairCtx) }()

	t := newTraffic(repo, o)
	var sum summary
	fmt.Printf("renaming customers.customer_phone to phone_number on %s: %d customers, %d goroutines, %d calls a step\n\n",
		o.driver, o.customers, o.workers, o.ops)
	fmt.Printf("%-12s %-10s %-10s %8s %8s %10s %10s\n", "phase", "flag", "stage", "calls", "errors", "mismatch", "p99")

	step := func(flagStage cutover.Stage) error {
		setFlag(flagStage)
		if err := waitForPhase(ctx, mig, bound, stage); err != nil {
			return err
		}
		before := readMetrics(ctx, metrics)
		res := t.run(ctx)
		if err := gets.Drain(ctx); err != nil {
			return err
		}
		after := readMetrics(ctx, metrics)
		sum.mismatches += after.mismatches - before.mismatches
		phase, _ := bound.Phase()
		fmt.Printf("%-12s %-10s %-10s %8d %8d %10d %10s\n", phase, flagStage, stage.Stage(ctx),
			res.calls, res.errors, after.mismatches-before.mismatches, res.p99.Round(10*time.Microsecond))
		sum.errors += res.errors
		return nil
	}
	moveTo := func(p expandcontract.Phase, why string, sql ...string) error {
		_, err := mig.Move(ctx, expandcontract.Move{To: p, Actor: "operator", Reason: why, SQL: sql})
		return err
	}

	// The flag owner is eager: the flag is always a stage ahead of the phase.
	if err := step(cutover.DualWrite); err != nil {
		return 0, err
	}
	if err := moveTo(expandcontract.DualWrite, "expand: add the new column",
		`ALTER TABLE customers ADD COLUMN phone_number VARCHAR(40)`); err != nil {
		return 0, err
	}
	if err := step(cutover.Shadow); err != nil {
		return 0, err
	}
	if err := moveTo(expandcontract.Backfill, "dual writes are on everywhere"); err != nil {
		return 0, err
	}
	// Shadow reads would only report the rows the backfill has not reached.
	setFlag(cutover.DualWrite)
	if sum.backfilled, err = runBackfill(ctx, mig, db, t); err != nil {
		return 0, err
	}
	// Verify; keys still waiting in the repair log differ, so drain it and
	// verify again, as an operator would, until the result is clean.
	verifier, err := verify.New(mig,
		&verify.SQLRows{DB: db, Table: "customers", Key: "id", Kind: expandcontract.IntKeys, Value: "customer_phone"},
		&verify.SQLRows{DB: db, Table: "customers", Key: "id", Kind: expandcontract.IntKeys, Value: "phone_number"},
		verify.WithRecheck(20*time.Millisecond))
	if err != nil {
		return 0, err
	}
	var ver verify.Result
	for attempt := 1; ; attempt++ {
		ver, err = verifier.Run(ctx)
		if err != nil {
			return 0, err
		}
		fmt.Printf("verify       %d rows compared, %d differences, %s\n", ver.Rows, ver.Differences, ver.Duration.Round(time.Millisecond))
		if ver.Clean() {
			break
		}
		if attempt == 3 {
			return 0, fmt.Errorf("verification found %d differing keys after %d repairs: %v", ver.Differences, attempt, ver.Keys)
		}
		if err := drainRepairs(ctx, repairs); err != nil {
			return 0, err
		}
	}
	if err := step(cutover.Live); err != nil {
		return 0, err
	}
	if err := moveTo(expandcontract.SwitchReads, "backfill done and verified"); err != nil {
		return 0, err
	}
	if err := step(cutover.Live); err != nil {
		return 0, err
	}
	if err := step(cutover.Complete); err != nil {
		return 0, err
	}
	if err := drainRepairs(ctx, repairs); err != nil {
		return 0, err
	}
	if err := moveTo(expandcontract.Contract, "reads on phone_number, no mismatches"); err != nil {
		return 0, err
	}
	if err := step(cutover.Complete); err != nil {
		return 0, err
	}
	if err := retire(ctx, mig, bound, stage); err != nil {
		return 0, err
	}
	if err := step(cutover.Complete); err != nil {
		return 0, err
	}

	stopRepairs()
	if err := <-repairsDone; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	m := readMetrics(ctx, metrics)
	lost, err = t.lost(ctx, db)
	if err != nil {
		return 0, err
	}
	pending, err := repairs.Pending(ctx)
	if err != nil {
		return 0, err
	}
	fmt.Println()
	fmt.Printf("rows moved by the backfill:   %d\n", sum.backfilled)
	fmt.Printf("shadow mismatches:            %d\n", sum.mismatches)
	fmt.Printf("keys recorded for repair:     %d (repaired %d, pending %d)\n", m.recorded, m.repaired, pending)
	fmt.Printf("caller errors:                %d (the simulated faults of phone_number, once in complete it has no fallback)\n", sum.errors)
	fmt.Printf("writes lost:                  %d (%d acknowledged saves checked)\n", lost, t.acknowledged())
	return lost, nil
}

type summary struct {
	backfilled int64
	mismatches int64
	errors     int
}

// open connects to the database, or creates a SQLite file.
func open(driver, dsn string) (*sqlx.DB, func(), error) {
	cleanup := func() {}
	if dsn == "" {
		if driver != "sqlite" {
			return nil, nil, fmt.Errorf("-dsn is required with -driver %s", driver)
		}
		dir, err := os.MkdirTemp("", "columnrename-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		dsn = "file:" + filepath.Join(dir, "customers.db") +
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if driver == "sqlite" {
		db.SetMaxOpenConns(4)
	}
	return db, func() { db.Close(); cleanup() }, nil
}

// seed creates the customers table as it is before the migration, and the
// metadata tables empty, dropping whatever an earlier run left.
func seed(ctx context.Context, db *sqlx.DB, n int) error {
	drops := []string{"customers"}
	for _, t := range []string{"migrations", "events", "repairs", "instances", "schema"} {
		drops = append(drops, "columnrename_"+t)
	}
	for _, t := range drops {
		if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return err
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE customers (
		id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, customer_phone VARCHAR(40))`); err != nil {
		return err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	const chunk = 500
	for lo := 1; lo <= n; lo += chunk {
		var sb strings.Builder
		sb.WriteString("INSERT INTO customers (id, name, customer_phone) VALUES ")
		for id := lo; id < lo+chunk && id <= n; id++ {
			if id > lo {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "(%d, 'customer %d', '%s')", id, id, phone(id, 0))
		}
		if _, err := tx.ExecContext(ctx, sb.String()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// phone returns the phone number of customer id after its n-th change.
func phone(id, n int) string { return fmt.Sprintf("+1-555-%04d-%03d", id%10000, n%1000) }

// backfill copies customer_phone to phone_number for every row, in batches,
// while traffic goes on, drawing a progress bar.
func runBackfill(ctx context.Context, mig *expandcontract.Migration, db *sqlx.DB, t *traffic) (int64, error) {
	// On a terminal the bar redraws in place; in a log it prints a line a
	// quarter.
	fi, _ := os.Stdout.Stat()
	terminal := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	lastQuarter := -1
	b, err := backfill.New(mig,
		backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.IntKeys},
		backfill.SQLBatch(`UPDATE customers SET phone_number = customer_phone WHERE id > :from AND id <= :to`),
		backfill.WithBatchSize(500), backfill.WithOwner(instance),
		backfill.WithProgress(func(p backfill.Progress) {
			bar, frac := progressBar(p)
			switch {
			case terminal && p.Done:
				fmt.Printf("\r%s\n", bar)
			case terminal:
				fmt.Printf("\r%s", bar)
			case int(frac*4) > lastQuarter:
				lastQuarter = int(frac * 4)
				fmt.Println(bar)
			}
		}))
	if err != nil {
		return 0, err
	}
	// The service keeps serving during the backfill.
	bctx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { t.background(bctx); close(served) }()
	err = b.Run(ctx)
	stop()
	<-served
	if err != nil {
		return 0, err
	}
	m, err := mig.State(ctx)
	if err != nil {
		return 0, err
	}
	return m.Backfill.Rows, nil
}

// progressBar draws p as a bar of 20 steps, and returns the fraction done.
func progressBar(p backfill.Progress) (string, float64) {
	frac := 1.0
	if p.Total > 0 && !p.Done {
		frac = min(1, float64(p.Rows)/float64(p.Total))
	}
	n := int(frac * 20)
	return fmt.Sprintf("backfill     [%s%s] %3.0f%% %d/%d rows, %.0f rows/s, ETA %s",
		strings.Repeat("#", n), strings.Repeat(".", 20-n), frac*100, p.Rows, p.Total, p.Rate,
		p.ETA.Round(10*time.Millisecond)), frac
}

// waitForPhase returns once the bound has read the migration's current
// phase, as every instance does within the phase TTL.
func waitForPhase(ctx context.Context, mig *expandcontract.Migration, bound *expandcontract.Bound, stage *flags.Resolver) error {
	m, err := mig.State(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		stage.Stage(ctx) // resolving refreshes the bound once its TTL has passed
		if p, ok := bound.Phase(); ok && p == m.Phase {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the phase bound did not see phase %s within 10s", m.Phase)
		}
		time.Sleep(phaseTTL / 4)
	}
}

// drainRepairs waits until the repair log is empty.
func drainRepairs(ctx context.Context, repairs *repair.Log) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := repairs.Pending(ctx)
		if err != nil || n == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d repairs still pending after 30s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// retire drops the old column once this instance has reported that it
// resolves only complete.
func retire(ctx context.Context, mig *expandcontract.Migration, bound *expandcontract.Bound, stage *flags.Resolver) error {
	drop := expandcontract.Retire{Actor: "operator", Reason: "rename done",
		SQL: []string{`ALTER TABLE customers DROP COLUMN customer_phone`}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := mig.Retire(ctx, drop)
		if !errors.Is(err, expandcontract.ErrGuard) || time.Now().After(deadline) {
			if err == nil {
				fmt.Println("retire       dropped customers.customer_phone")
			}
			return err
		}
		stage.Stage(ctx) // the bound reports this instance's stages when it refreshes
		time.Sleep(phaseTTL / 2)
	}
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*99)/100]
}
