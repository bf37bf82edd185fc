// Package cdc feeds the new store of a migration from the old PostgreSQL
// database's log (change data capture), in commit order, instead of
// application dual writes: PostgreSQL logical replication, decoded by its
// pgoutput plugin through github.com/jackc/pglogrepl.
//
// [New] returns an [Applier] for a migration of package expandcontract,
// the old database's tables ([Source]), the new store's database and an
// apply function: one of the program's own ([ApplyFunc]), called with
// each committed transaction of the old database ([Txn], its [Change]s
// decoded into Go values) and a transaction of the new store to apply it
// in, or [SQLApply], which upserts and deletes the rows of mapped tables.
// [Applier.Run] creates the migration's publication and replication slot
// ([Slot]; their name derived from the migration's) unless they exist,
// and streams.
//
// # Exactly once, in commit order
//
// The applier commits each group of transactions in one transaction of
// the new store together with the position in the log that the group
// reached (the end of its last commit record), in a small table of the
// new store's database, cutover_cdc_positions; the old server is told
// that stored position only, never one not yet committed. Run starts
// from the stored position and skips every transaction that ends at or
// before it, so a process killed anywhere (while applying, between the
// apply and its commit, or between the commit and telling the server)
// resumes with every transaction applied exactly once, in the order the
// old database committed them. The stored position is moved by
// compare-and-swap, so an applier that another replaced cannot commit
// over it ([ErrFenced]); a slot streams to one applier at a time
// ([ErrSlotActive]).
//
// # Lag, disk, and the end of the migration
//
// A slot keeps every WAL segment the old server writes after the
// position last confirmed: an applier that is down, or a slot left
// behind, fills the old server's disk. [Slot.Lag] reads the bytes kept,
// the applier reports them as the gauge cutover.expandcontract.cdc.lag
// (unit By, attribute cutover.migration) while it runs, and
// [Slot.Throttle] is a throttle hook for backfill.WithThrottle that holds
// a backfill while the applier is behind, or while the slot does not
// exist yet. Bound the risk on the server with max_slot_wal_keep_size,
// which invalidates a slot that keeps more than that: the applier then
// stops with [ErrSlotLost], and the migration goes on from a new slot
// and a backfill, or from a verification and repairs, never silently
// past a hole in the log.
//
// The slot never outlives the migration: a running applier drops the
// slot and the publication, and deletes its stored position, when it sees
// the migration reach contract or go back to expand (the migration
// cancelled), and returns nil; Run started in either phase drops whatever
// is left and returns [ErrWrongPhase]. [Applier.Drop] and [Slot.Drop] do
// it at any time, and [Slot.DropSQL] gives the statements for the SQL of
// an expandcontract.Retire.
//
// # The phases with the log feeding the new store
//
// The service writes only the old store, and the log feeds the new one;
// the phases, guards, verification and repairs are those of package
// expandcontract, unchanged:
//
//   - expand: the new store's schema is created. No slot.
//   - dualwrite: start the applier (it creates the slot) right after the
//     move. The flags select dualwrite, which here means "the old store
//     is authoritative and the new one is written too", by the log: the
//     service's writes go to the old store only, not through a
//     dualwrite.Writer. Reads stay on the old store.
//   - backfill: move here once the slot exists (Slot.Exists; the
//     throttle of Slot.Throttle also holds the backfill until it does).
//     The backfill copies the rows the log does not carry, those written
//     before the slot existed; a verification and the repairs it records
//     then make the stores equal, as with dual writes. Shadow reads
//     (stage shadow) compare the old store's answers with those of the
//     new store, which trails the old one by the applier's lag: a
//     mismatch on a key written within the lag is expected, and a
//     recheck delay (verify.WithRecheck) lets a verification see past
//     it.
//   - switchreads: reads may move to the new store (stages live and
//     rampdown). Those stages also make the new store authoritative for
//     writes, and the service's writes then go to the new store first
//     and to the old one after, which the log applies to the new store
//     once more: the new store ends equal to the old one, but a read
//     from the new store may see an older value for up to the applier's
//     lag. Use per-key versions (the versioned writes of package
//     dualwrite) on the target table, or keep the flags at shadow until
//     the move to contract, to avoid that.
//   - contract: the applier drops the slot and the publication and
//     stops. Retire can run Slot.DropSQL too, for an applier that was
//     not running.
//
// A backfill that copies a row and the log that carries a later change
// of it can race: the copy, read before the change, may be written after
// it. Without a version column on the target, a verification after the
// backfill finds such keys and records them for repair, as it does for
// the races of dual writes.
//
// Everything here is safe for concurrent use; an [Applier] runs one
// [Applier.Run] at a time.
package cdc
