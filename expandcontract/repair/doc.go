// Package repair keeps the durable repair log of a migration of package
// expandcontract, in the metadata tables, and drains it.
//
// [NewLog] returns the [Log] of a migration: a cutover.RepairLog that the
// dual writers, shadow readers and verifiers of every instance record the
// keys they left apart in. A key has one pending entry per operation and
// target, which later records of it join, so that the log grows with the
// keys left apart, not with the writes: an outage of the new store that
// 3000 writes to 3 keys meet leaves 3 entries. [New] returns a [Repairer]
// that claims due entries, calls a [Func] for each key, marks what it
// repaired and backs off what failed, with any number of repairers in any
// number of processes sharing one log; an entry recorded again while its
// repair ran is repaired again. Entries are never dropped unrepaired: one
// whose repair keeps failing is kept as stuck until [Log.RetryStuck] or a
// new record of its key. Repaired entries are deleted by the repairers
// once older than their retention ([WithRetention], a week by default).
//
// # Tracing
//
// With a tracer provider ([expandcontract.WithTracerProvider], or the
// global one), each round of [Repairer.RunOnce] (and so of [Repairer.Run])
// that finds due entries is a span named
// cutover.expandcontract.repair.round, from the read of those entries,
// with the attributes cutover.migration, cutover.repair.due,
// cutover.repair.claimed, cutover.repair.repaired, cutover.repair.failed,
// cutover.repair.stuck, cutover.repair.recorded_again and
// cutover.outcome: "ok", "canceled" or "error". A round that finds none
// makes no span, so that a repairer polling an empty log adds nothing to
// the traces. Each call of the [Func] is a child span,
// cutover.expandcontract.repair.call, with cutover.operation, cutover.store
// (the target), cutover.reason, cutover.repair.claimed (the entries the
// call repairs), cutover.attempt (from 1) and cutover.outcome: "ok",
// "error", "panic", "timeout" ([WithTimeout] ran out) or "canceled"; the
// function gets it in its context. Errors are recorded on their spans,
// with the status Error. No attribute holds the key (the log lines of
// failed repairs name it); the function's error, recorded as it is, may.
//
// Everything here is safe for concurrent use.
package repair
