// Package trigger backs a migration off by itself when its new store
// degrades: a [Monitor] watches what the dualwrite and shadowread wrappers
// already see, as their cutover.Observer, and fires a trigger's action
// when a figure over a sliding window crosses its threshold.
//
// Four figures, each over its own window of fixed time buckets (see
// [Kind]): the new store's error rate; its mean latency against the old
// store's; the shadow mismatch rate; and the availability of the new store
// where it is authoritative (answered without a fallback). The defaults
// ([DefaultRules]) are the zero-downtime playbook's automatic rollback:
// error rate above 5% over 5 minutes and availability below 95% over
// 2 minutes demote the migration; latency above twice the old store's over
// 10 minutes and a mismatch rate above 1% over 10 minutes raise an alarm
// for a person to confirm.
//
// # Latency: the mean, against the old store
//
// The old store is the live baseline: in every two-store stage it serves
// the same requests, from the same instance, at the same moment, so the
// ratio of the two means cancels out load and network that a fixed figure
// would not. The mean is used rather than the p99 because it is two
// counters per bucket (a sum and a count) that a store call adds to with
// two atomic additions, while a per-bucket quantile needs a histogram per
// store per bucket; a tail that doubles shows in the error rate once it
// reaches the wrappers' timeouts. Only successful calls are timed: a
// failure's latency is the error rate's business.
//
// # Actions
//
// A [Demote] trigger calls the [DemoteFunc] given to [New]; [DemoteTo]
// makes the one that writes the fleet-wide ceiling into the migration's
// metadata ([expandcontract.Migration.Demote]), which every instance's
// bound applies within its TTL, and the monitor's readiness endpoint
// ([Monitor.Readiness]) answers 503 while it fires. An [Alarm] trigger is
// for a person to decide: [WithAlarmHistory] records it in the
// migration's history ([expandcontract.Migration.Alarm]), once per the
// rule's window for the whole fleet, and the [AlarmFunc] of [WithAlarm]
// tells a person, from the instance that recorded it; without either it
// is logged. A trigger's action is called when it fires, again at most
// once per window while it stays firing, and at the next evaluation if it
// failed; the trigger re-arms after a whole window without a breach.
// Lifting a demotion is an operator's move: the monitor never lifts one.
//
// Each action says what it did in a [Result], which the health shows as
// the trigger's [Outcome] and detail: done (the ceiling set, the alarm
// recorded), skipped (another instance's demotion came first, or a ceiling
// as low is in force, or the quiet period after a lift held it back; an
// alarm another instance recorded within its window), or failed (and
// retried). Of the skipped demotions only those the quiet period held back
// reach the history, as one event of kind "held" per trigger per lift;
// the demotion that applied is the record of the others.
//
// # Holding a backfill
//
// [Monitor.Hold] is a hold for the backfill's runner
// (backfill.WithHold): while a [Latency] trigger fires, the new store is
// already slower than its budget, and the backfill waits rather than add
// its batches to the load. The backfill's state names the figure while it
// waits, as the status, the cutover command and the gauge
// cutover.expandcontract.status.backfill.throttled show.
//
// # Cost
//
// An observation costs a few atomic additions to the current bucket, with
// no clock read and no allocation; a wrapper without an observer pays
// nothing. A monitor without a [Latency] rule tells the wrappers that it
// uses no latency ([Monitor.ObservesLatency], [cutover.LatencyObserver]),
// and they read no clock for it. Evaluation, on
// [Monitor.Run]'s goroutine once per interval, sums each window's buckets.
// BenchmarkObserved in this package measures the cost per wrapped call
// against the same wrapper without an observer, on a busy 2-core machine:
// with the OpenTelemetry SDK, whose histogram makes the wrapper time each
// store call already, a live write costs 36 ns more (x1.03); with the
// global meter provider that records nothing, the wrapper reads the clock
// around each store call for the observer alone, and a write costs 260 to
// 320 ns more (x1.7 to x1.8 of a wrapped write over an in-memory map), a
// synchronous shadow read 256 ns more: most of that is the four clock
// reads (about 45 ns each here). Without a latency rule the clock reads
// are gone: in one run of the write/live and write/live/no-latency-rule
// cases, 154 to 164 ns more with the default rules (x1.9) against 51 to
// 57 ns more (x1.3) without a latency rule. One observation
// alone, contended by two goroutines, is 48 ns (BenchmarkObserveCall); an
// evaluation of the four default triggers about 1 µs (BenchmarkEvaluate).
package trigger
