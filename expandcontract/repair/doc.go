// Package repair keeps the durable repair log of a migration of package
// expandcontract, in the metadata tables, and drains it.
//
// [NewLog] returns the [Log] of a migration: a cutover.RepairLog that the
// dual writers, shadow readers and verifiers of every instance record the
// keys they left apart in. [New] returns a [Repairer] that claims due
// entries, calls a [Func] for each key, marks what it repaired and backs
// off what failed, with any number of repairers in any number of processes
// sharing one log. Entries are never dropped: one whose repair keeps
// failing is kept as stuck until [Log.RetryStuck].
//
// Everything here is safe for concurrent use.
package repair
