// Package faults is the fault-injection suite of the library: it proves,
// over real TCP against real PostgreSQL and MariaDB servers, that a
// migration walked through every stage loses no acknowledged write and
// never lets a sick new store fail or hold its callers.
//
// For each database the suite creates an old store (a users table, reached
// directly) and a new store (the same table in a second database, reached
// through a toxiproxy proxy run inside the test on 127.0.0.1). The
// application side is the library as a service embeds it: a dualwrite
// Writer and a shadowread Reader sharing one breaker, a short secondary
// timeout, the durable repair log of package repair in the old database,
// and a Repairer draining it in the background through the same
// connections. Sixteen goroutines write their own keys, each write a new
// version of the key, and read random keys, bounded in count per window
// and in time.
//
// The walk moves the migration's phase and stage together: off, dualwrite,
// a backfill with the library's Backfiller, shadow, a verification under
// load before reads move, live, rampdown and complete. In each stage that
// uses the new store, the new store gets, one window each, no fault,
// latency beyond the secondary timeout, a timeout that swallows requests,
// connection resets, a bandwidth limit, sliced replies and a full outage,
// then recovers. Each fault has a proxy of its own, and holds for every
// request sent while it lasts (see [Proxy]). Every window checks that each
// caller error came from the store that answers for the stage (none at all
// before complete: the old store stands in for the new one), that reads of
// the freshest store are not stale, and that the p99 of the callers'
// latency stays within a bound set by the secondary timeout. A caller error
// that says the repair log did not record a key is counted in the unrec
// column and fails the window like any error from the wrong store: the log
// has a budget of its own (dualwrite.WithRecordTimeout), which
// TestRepairLogSlowerThanSecondaryTimeout checks on its own.
//
// After rampdown, with the load stopped and the repair log drained, a
// verification must find the two stores identical and both must hold the
// last acknowledged version of every key; at the end the new store alone
// must.
//
// The report, one row per window and one per fault, gives writes attempted
// and acknowledged, acknowledged writes lost, caller errors, p50, p99 and
// maximum caller latency, fallbacks, breaker refusals, mismatches, keys
// recorded for repair and entries repaired. It is logged with -v, and
// written to the file that CUTOVER_FAULT_REPORT names. The package lives
// in the module e2e, apart from the library's, so that the library's users
// never download toxiproxy. Run the suite, from the repository's root, with
//
//	scripts/test.sh -race -run TestFaults -v
//
// (which runs the tests of both modules, on servers it starts once), or on
// its own (the test starts its own servers, or uses the ones
// CUTOVER_POSTGRES_DSN and CUTOVER_MYSQL_DSN name; see internal/testdb)
//
//	go -C e2e test -race -run TestFaults -v ./faults/
//
// The flag -faults.long, given after the package, makes every window last
// 10 seconds instead of one; the walk then needs a longer -timeout:
//
//	go -C e2e test -race -timeout 60m -run TestFaults -v ./faults/ -faults.long
//
// TestHotKeys walks the same stages with the sixteen workers all writing
// the same eight keys, each request picking its own stage where the walk
// allows two (shadow or live, live or rampdown), verifications running
// under load, and a check of both stores at the end of each part of
// switchreads: once with versioned writes (dualwrite.Writer.WriteVersioned
// and package sqlrow), which must leave no store older than an
// acknowledged write, and once without versions, whose outcome it only
// measures and logs. Run it with
//
//	go -C e2e test -race -count=1 -run TestHotKeys -v ./faults/
//
// TestAutoDemotion, TestNoFalseDemotion and TestLatencyAlarmOnly prove
// the automatic back-off of package trigger. A walker takes a migration
// to switchreads; then two service instances (api-1 and api-2) serve it
// with the flag at live, each with its own connection pools, metadata
// store handle, bound (TTL fleetTTL), trigger.Monitor (demoting with
// trigger.DemoteTo to shadow, recording alarms with
// trigger.WithAlarmHistory), breaker, writer and reader, sharing the
// repair log and its repairer. The monitors and the bounds run on one
// fake clock that the test moves by fleetStep per round of load, and
// each round's load is bounded in operations: a monitor evaluates at the
// start of each round, as Monitor.Run would once per interval, and once a
// ceiling changed a TTL ago by that clock the round waits, bounded in real
// time, until every bound's background read has brought it. So "demoted
// within the trigger's window plus the bound's TTL" is counted in the fake
// clock and does not depend on how busy the machine is; the real times
// are logged. TestAutoDemotion puts 2 s of latency and then a full outage
// on the new store; TestNoFalseDemotion runs a fault-free minute (flag
// -autodemote.calm) with the default rules and the test's; and
// TestLatencyAlarmOnly slows the new store by 20 ms a reply. Each round's
// callers get the checks of every window of the walk. Run them with
//
//	go -C e2e test -race -count=1 -run 'TestAutoDemotion|TestNoFalseDemotion|TestLatencyAlarmOnly' -v ./faults/
package faults
