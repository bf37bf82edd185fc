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
// ([Monitor.Readiness]) answers 503 while it fires. An [Alarm] trigger calls
// the [AlarmFunc] of [WithAlarm], or logs. A trigger's action is called when
// it fires, again at most once per window while it stays firing, and at the
// next evaluation if it failed; the trigger re-arms after a whole window
// without a breach. Lifting a demotion is an operator's move: the monitor
// never lifts one.
//
// # Cost
//
// An observation costs a few atomic additions to the current bucket, with
// no clock read and no allocation; a wrapper without an observer pays
// nothing. Evaluation, on
// [Monitor.Run]'s goroutine once per interval, sums each window's buckets.
// BenchmarkObserved in this package measures the cost per wrapped call
// against the same wrapper without an observer, on a busy 2-core machine:
// with the OpenTelemetry SDK, whose histogram makes the wrapper time each
// store call already, a live write costs 36 ns more (x1.03); with the
// global meter provider that records nothing, the wrapper reads the clock
// around each store call for the observer alone, and a write costs 260 to
// 320 ns more (x1.7 to x1.8 of a wrapped write over an in-memory map), a
// synchronous shadow read 256 ns more: most of that is the four clock
// reads (about 45 ns each here). One observation alone, contended by two
// goroutines, is 48 ns (BenchmarkObserveCall); an evaluation of the four
// default triggers about 1 µs (BenchmarkEvaluate).
package trigger
