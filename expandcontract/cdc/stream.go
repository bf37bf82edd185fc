package cdc

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// stream is one run of an applier: its replication connection and what
// it holds of the log.
type stream struct {
	a    *Applier
	conn *pgconn.PgConn
	dec  *decoder
	rels map[uint32]*relation

	durable LSN // the position stored and committed in the new store
	applied LSN // the end of the last transaction applied, committed or in the open group
	walEnd  LSN // the server's position from a keepalive received between transactions

	group        *sqlx.Tx // the open transaction of the new store, or nil
	groupTxns    int
	groupChanges int
	groupStart   time.Time
	counts       [Copy + 1]int64 // changes of the open group, by operation

	cur  *Txn // the transaction being received, nil between transactions
	skip bool // cur ends at or before the stored position

	nextStatus, nextPoll time.Time
	phase                expandcontract.Phase // as the last poll read it

	// The watermark backfill.
	chunk      *chunk  // the chunk waiting for its watermarks, or nil
	chunkKey   *string // the checkpoint of a chunk applied in the open group
	checkpoint *string // the checkpoint committed; nil before the first chunk
	chunksDone bool
	nextMark   int64
}

// run streams until ctx is done, an error, or the end of the migration.
func (s *stream) run(ctx context.Context) (err error) {
	defer func() {
		if s.group != nil { // an error or a panic on the way
			_ = s.group.Rollback()
			s.group = nil
		}
	}()
	a := s.a
	now := time.Now()
	s.nextPoll = now.Add(a.cfg.poll)
	a.readLag(ctx)
	if err := s.status(ctx); err != nil {
		return err
	}
	for {
		now = time.Now()
		if !now.Before(s.nextPoll) {
			done, err := s.poll(ctx)
			if done || err != nil {
				return err
			}
			s.nextPoll = now.Add(a.cfg.poll)
		}
		if s.group != nil && s.cur == nil && now.Sub(s.groupStart) >= a.cfg.flush {
			if err := s.commit(ctx); err != nil {
				return err
			}
		}
		if a.chunks != nil && !s.chunksDone && s.cur == nil {
			switch {
			case s.chunk == nil && s.group == nil && s.chunkKey == nil && s.phase == expandcontract.Backfill:
				if err := s.startChunk(ctx); err != nil {
					return err
				}
			case s.chunk != nil && !s.chunk.read && !now.Before(s.chunk.check):
				s.chunk.check = now.Add(5 * time.Millisecond)
				if err := s.readChunk(ctx); err != nil {
					return err
				}
			}
		}
		if !now.Before(s.nextStatus) {
			if s.group == nil && s.cur == nil && s.walEnd > s.durable {
				if err := s.advance(ctx, s.walEnd); err != nil {
					return err
				}
			}
			if err := s.status(ctx); err != nil {
				return err
			}
			a.readLag(ctx)
		}
		deadline := s.nextPoll
		if s.nextStatus.Before(deadline) {
			deadline = s.nextStatus
		}
		if s.group != nil && s.cur == nil && s.groupStart.Add(a.cfg.flush).Before(deadline) {
			deadline = s.groupStart.Add(a.cfg.flush)
		}
		if s.chunk != nil && !s.chunk.read && s.chunk.check.Before(deadline) {
			deadline = s.chunk.check // to see whether the chunk can be read
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return s.stop(ctx)
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("cdc: %q: receive from slot %s: %w", a.name, a.slot.name, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("cdc: %q: slot %s: %w", a.name, a.slot.name, pgconn.ErrorResponseToPgError(msg))
		default:
			return fmt.Errorf("cdc: %q: slot %s: unexpected message %T", a.name, a.slot.name, msg)
		}
	}
}

// stop ends a run whose ctx is done: it commits the open group if no
// transaction is half applied, tells the server, and returns ctx's error.
func (s *stream) stop(ctx context.Context) error {
	cause := fmt.Errorf("cdc: %q: %w", s.a.name, ctx.Err())
	if s.group == nil || s.cur != nil {
		return cause
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.commit(bg); err != nil {
		return fmt.Errorf("%w (and committing the applied group failed: %v)", cause, err)
	}
	return cause
}

// poll reads the phase and, at the end of the migration, drops the slot.
// It reports whether the run is over.
func (s *stream) poll(ctx context.Context) (bool, error) {
	a := s.a
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := a.m.State(pctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return true, s.stop(ctx)
		}
		if ok, suppressed := a.logs.Allow(); ok {
			a.logger.WarnContext(ctx, "cutover: cdc: reading the migration's phase failed; applying on",
				"migration", a.name, "err", err, "suppressed", suppressed)
		}
		return false, nil
	}
	s.phase = st.Phase
	if a.chunks != nil && s.chunksDone && st.Phase == expandcontract.Backfill && !st.Backfill.Done() {
		if err := s.markDone(ctx); err != nil {
			return true, err
		}
	}
	if !ended(st.Phase) {
		return false, nil
	}
	if s.group != nil {
		_ = s.group.Rollback()
		s.group = nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = s.conn.Close(cctx)
	cancel()
	if err := a.Drop(ctx); err != nil {
		return true, fmt.Errorf("cdc: %q reached %s: %w", a.name, st.Phase, err)
	}
	a.logger.InfoContext(ctx, "cutover: cdc: the migration reached "+st.Phase.String()+"; slot and publication dropped",
		"migration", a.name, "slot", a.slot.name, "position", s.durable.String())
	return true, nil
}

// copyData handles one message of the replication stream.
func (s *stream) copyData(ctx context.Context, data []byte) error {
	a := s.a
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("cdc: %q: %w", a.name, err)
		}
		if s.cur == nil {
			s.walEnd = max(s.walEnd, LSN(k.ServerWALEnd))
		}
		if k.ReplyRequested {
			s.nextStatus = time.Time{}
		}
		return nil
	case pglogrepl.XLogDataByteID:
	default:
		return nil
	}
	x, err := pglogrepl.ParseXLogData(data[1:])
	if err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	m, err := pglogrepl.Parse(x.WALData)
	if err != nil {
		return fmt.Errorf("cdc: %q: decode the log: %w", a.name, err)
	}
	switch m := m.(type) {
	case *pglogrepl.RelationMessage:
		s.rels[m.RelationID] = newRelation(m)
	case *pglogrepl.BeginMessage:
		s.cur = &Txn{XID: m.Xid, CommitLSN: LSN(m.FinalLSN), CommitTime: m.CommitTime}
		s.skip = LSN(m.FinalLSN) < s.applied
	case *pglogrepl.InsertMessage:
		return s.change(ctx, Insert, m.RelationID, m.Tuple, nil)
	case *pglogrepl.UpdateMessage:
		return s.change(ctx, Update, m.RelationID, m.NewTuple, m.OldTuple)
	case *pglogrepl.DeleteMessage:
		return s.change(ctx, Delete, m.RelationID, nil, m.OldTuple)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := s.change(ctx, Truncate, id, nil, nil); err != nil {
				return err
			}
		}
	case *pglogrepl.CommitMessage:
		return s.commitMsg(ctx, m)
	}
	return nil
}

// change adds a row change to the transaction being received.
func (s *stream) change(ctx context.Context, op Op, relID uint32, newT, oldT *pglogrepl.TupleData) error {
	a := s.a
	if s.cur == nil {
		return fmt.Errorf("cdc: %q: a %s outside a transaction", a.name, op)
	}
	if s.skip {
		return nil
	}
	rel := s.rels[relID]
	if rel == nil {
		return fmt.Errorf("cdc: %q: a %s of relation %d, which the log did not describe", a.name, op, relID)
	}
	c := Change{Op: op, Table: rel.table, Columns: rel.columns}
	var err error
	if c.New, err = s.dec.tuple(rel, newT); err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	if c.Old, err = s.dec.tuple(rel, oldT); err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	if a.chunks != nil {
		if rel.table == a.chunks.marks {
			s.watermark(&c)
			return nil
		}
		s.noteKey(&c)
	}
	s.cur.Changes = append(s.cur.Changes, c)
	if len(s.cur.Changes) >= a.cfg.maxChanges {
		return s.applyPart(ctx, false)
	}
	return nil
}

// commitMsg ends the transaction being received: it applies it, unless
// it was applied before, and commits the group once it is full.
func (s *stream) commitMsg(ctx context.Context, m *pglogrepl.CommitMessage) error {
	if s.cur == nil {
		return fmt.Errorf("cdc: %q: a commit outside a transaction", s.a.name)
	}
	if s.skip {
		s.cur, s.skip = nil, false
		return nil
	}
	s.cur.EndLSN = LSN(m.TransactionEndLSN)
	if err := s.applyPart(ctx, true); err != nil {
		return err
	}
	s.applied = LSN(m.TransactionEndLSN)
	s.groupTxns++
	s.cur = nil
	if s.groupTxns >= s.a.cfg.maxGroup || s.groupChanges >= s.a.cfg.maxChanges || time.Since(s.groupStart) >= s.a.cfg.flush {
		return s.commit(ctx)
	}
	return nil
}

// applyPart passes the changes received of the current transaction to
// the apply function, in the open group, which it begins if need be.
func (s *stream) applyPart(ctx context.Context, last bool) error {
	a := s.a
	if s.group == nil {
		// Not bound to ctx, which database/sql would roll it back with,
		// so that a run stopped between transactions can still commit
		// what it applied.
		tx, err := a.target.BeginTxx(context.WithoutCancel(ctx), nil)
		if err != nil {
			return fmt.Errorf("cdc: %q: begin a transaction of the new store: %w", a.name, err)
		}
		s.group, s.groupTxns, s.groupChanges, s.groupStart = tx, 0, 0, time.Now()
		clear(s.counts[:])
	}
	t := s.cur
	t.Last = last
	if len(t.Changes) > 0 || t.Part > 0 {
		if err := a.apply(ctx, s.group, t); err != nil {
			return fmt.Errorf("cdc: %q: apply transaction %d (commit %s, part %d): %w", a.name, t.XID, t.CommitLSN, t.Part, err)
		}
	}
	s.groupChanges += len(t.Changes)
	for _, c := range t.Changes {
		s.counts[c.Op]++
	}
	t.Changes = make([]Change, 0, len(t.Changes))
	t.Part++
	return nil
}

// commit commits the open group with its position, and tells the server.
func (s *stream) commit(ctx context.Context) error {
	a := s.a
	tx := s.group
	if s.chunkKey != nil {
		if err := a.pos.setChunk(ctx, tx, a.slot.name, s.chunkKey, false); err != nil {
			return fmt.Errorf("cdc: %q: %w", a.name, err)
		}
	}
	if err := a.pos.move(ctx, tx, a.slot.name, s.durable, s.applied, meta.Micros(time.Now())); err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	s.group = nil
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cdc: %q: commit up to %s: %w", a.name, s.applied, err)
	}
	s.durable = s.applied
	if s.chunkKey != nil {
		s.checkpoint, s.chunkKey = s.chunkKey, nil
	}
	a.txns.Add(ctx, int64(s.groupTxns), a.attrs)
	for op := Insert; op <= Copy; op++ {
		if n := s.counts[op]; n > 0 {
			a.changes.Add(ctx, n, a.opAttrs[op])
		}
	}
	return s.status(ctx)
}

// advance stores a position past which the log holds nothing to apply,
// read from a keepalive between transactions, so that a slot whose tables
// do not change does not keep WAL for ever.
func (s *stream) advance(ctx context.Context, to LSN) error {
	a := s.a
	tx, err := a.target.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cdc: %q: begin a transaction of the new store: %w", a.name, err)
	}
	if err := a.pos.move(ctx, tx, a.slot.name, s.durable, to, meta.Micros(time.Now())); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cdc: %q: store position %s: %w", a.name, to, err)
	}
	s.durable, s.applied = to, to
	return nil
}

// status tells the server the stored position, and only that: what is
// not committed in the new store must be sent again after a crash.
func (s *stream) status(ctx context.Context) error {
	a := s.a
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pglogrepl.LSN(s.durable)})
	if err != nil {
		return fmt.Errorf("cdc: %q: send the position to the server: %w", a.name, err)
	}
	s.nextStatus = time.Now().Add(a.cfg.status)
	return nil
}

// readLag reads the slot's lag for the gauge; a failure is logged at
// most once a minute.
func (a *Applier) readLag(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lag, err := a.slot.Lag(lctx)
	if err != nil {
		if ok, suppressed := a.logs.Allow(); ok && ctx.Err() == nil {
			a.logger.WarnContext(ctx, "cutover: cdc: reading the slot's lag failed", "migration", a.name, "err", err, "suppressed", suppressed)
		}
		return
	}
	a.lag.Store(lag)
	a.lagKnown.Store(true)
}
