package cdc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// Backfill configures the watermark backfill of [WithWatermarkBackfill].
type Backfill struct {
	// Table is the table to copy, one of [Source].Tables. Required.
	Table string
	// Key is its key column: unique and not NULL, usually the primary
	// key, validated and quoted. Required.
	Key string
	// Kind is the type of the key: [expandcontract.IntKeys] (the zero
	// value) or [expandcontract.TextKeys].
	Kind expandcontract.KeyKind
	// ChunkSize is the number of rows a chunk copies; 0 means 1000.
	ChunkSize int
}

// WithWatermarkBackfill makes the applier copy the rows of b.Table that
// the log does not carry, those written before the slot existed, while
// the migration is in the backfill phase, with the watermarks of
// Netflix's DBLog, so that a copied row never overwrites a newer change,
// without version columns. For each chunk, the applier, between two
// transactions of the log, writes a low watermark (a row of the table
// cdc_watermarks under the metadata's prefix, which it creates in the old
// database and adds to the publication), waits until every transaction
// that committed before it is visible, reads the next ChunkSize rows by
// key, and writes a high watermark. Streaming on, it notes the keys of
// b.Table that the log changes between the two watermarks, and at the
// high watermark passes the chunk's other rows to the apply function as
// changes of [Copy], in the high watermark's place in commit order: the
// log's changes of a dropped key, being newer than the chunk's read,
// come before, and every later change after. The chunk's last key is
// committed with the position, so a crash resumes with the next chunk,
// and a chunk whose high watermark was not applied is read again. When
// no row is left, the backfill is recorded done in the migration
// (backfill.MarkDone), which the move to switchreads requires.
//
// The read waits for the transactions that were running when the low
// watermark committed: a long transaction on the old database holds the
// backfill, never the log. Bad input is reported by [New], wrapping
// [ErrInvalidInput].
func WithWatermarkBackfill(b Backfill) Option {
	return optionFunc(func(c *config) { c.backfill = &b })
}

// chunker is the watermark backfill of one applier, checked and quoted.
type chunker struct {
	Backfill
	table   string // "schema.table", as the log names it
	quoted  string // the table, quoted
	key     string // the key column, quoted
	marks   string // the watermark table as the log names it
	qMarks  string // and quoted
	qMark   string // the upsert of a watermark
	qFirst  string // the first chunk
	qNext   string // the chunks after a key
	ensure  string // the watermark table's DDL
	startAt int64  // the first mark of this process's chunks
}

func (a *Applier) newChunker(b *Backfill, prefix string) (*chunker, error) {
	d := a.slot.dialect()
	if b.ChunkSize < 0 {
		return nil, fmt.Errorf("backfill chunk size must not be negative, got %d", b.ChunkSize)
	}
	if b.ChunkSize == 0 {
		b.ChunkSize = 1000
	}
	if b.Kind != expandcontract.IntKeys && b.Kind != expandcontract.TextKeys {
		return nil, fmt.Errorf("backfill: unknown key kind %v", b.Kind)
	}
	c := &chunker{Backfill: *b, table: b.Table}
	if !strings.Contains(c.table, ".") {
		c.table = "public." + c.table
	}
	found := false
	for i, t := range a.tables {
		if t == c.table {
			c.quoted, found = a.quoted[i], true
		}
	}
	if !found {
		return nil, fmt.Errorf("backfill table %q is not among Source.Tables", b.Table)
	}
	var err error
	if c.key, err = quoteColumn(d, b.Key); err != nil {
		return nil, fmt.Errorf("backfill key: %w", err)
	}
	c.marks = "public." + prefix + "cdc_watermarks"
	if c.qMarks, err = d.QuoteIdent(c.marks); err != nil {
		return nil, fmt.Errorf("watermark table: %w", err)
	}
	c.ensure = `CREATE TABLE IF NOT EXISTS ` + c.qMarks + ` (slot text PRIMARY KEY, mark bigint NOT NULL)`
	c.qMark = `INSERT INTO ` + c.qMarks + ` (slot, mark) VALUES ($1, $2) ON CONFLICT (slot) DO UPDATE SET mark = excluded.mark`
	sel := `SELECT * FROM ` + c.quoted
	c.qFirst = sel + ` WHERE ` + c.key + ` IS NOT NULL ORDER BY ` + c.key + ` LIMIT ` + strconv.Itoa(c.ChunkSize)
	c.qNext = sel + ` WHERE ` + c.key + ` > $1 ORDER BY ` + c.key + ` LIMIT ` + strconv.Itoa(c.ChunkSize)
	return c, nil
}

// chunk is a chunk read between its watermarks, waiting for them in the
// log.
type chunk struct {
	low, high int64
	open      bool      // the low watermark was seen, the high not yet
	xmax      string    // the next transaction id when the low watermark committed
	read      bool      // the rows are read and the high watermark written
	check     time.Time // when readChunk may look again whether the rows can be read
	columns   []Column
	rows      [][]any
	keys      []string        // the rows' keys, as keyString has them
	changed   map[string]bool // keys the log changed between the watermarks
	last      string          // the chunk's last key, the next checkpoint
}

// keyString returns a key as the checkpoint and the sets of changed keys
// hold it.
func keyString(v any) string { return fmt.Sprint(v) }

// startChunk writes the low watermark of the next chunk. It runs between
// transactions, with no group open; the log streams on while readChunk
// waits to read the chunk.
func (s *stream) startChunk(ctx context.Context) error {
	a := s.a
	db := a.src.DB
	s.nextMark += 2
	ch := &chunk{low: s.nextMark, high: s.nextMark + 1, changed: map[string]bool{}}
	if err := s.writeMark(ctx, ch.low); err != nil {
		return fmt.Errorf("cdc: %q: write the low watermark: %w", a.name, err)
	}
	// Every transaction whose commit the log has before the low watermark
	// must be visible to the read: those that had an id when it committed
	// must have ended. readChunk waits for that.
	if err := db.GetContext(ctx, &ch.xmax, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`); err != nil {
		return fmt.Errorf("cdc: %q: read the snapshot: %w", a.name, err)
	}
	s.chunk = ch
	return nil
}

// readChunk reads the chunk whose low watermark is written, once every
// transaction that had an id when it committed has ended, and writes its
// high watermark; if no row is left, it records the backfill done. Until
// those transactions end, it returns at once, to be called again.
func (s *stream) readChunk(ctx context.Context) error {
	a, c, ch := s.a, s.a.chunks, s.chunk
	db := a.src.DB
	var past bool
	if err := db.GetContext(ctx, &past, `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8`, ch.xmax); err != nil {
		return fmt.Errorf("cdc: %q: read the snapshot: %w", a.name, err)
	}
	if !past {
		return nil
	}
	q, args := c.qFirst, []any(nil)
	if s.checkpoint != nil {
		q, args = c.qNext, []any{*s.checkpoint}
		if c.Kind == expandcontract.IntKeys {
			n, err := strconv.ParseInt(*s.checkpoint, 10, 64)
			if err != nil {
				return fmt.Errorf("cdc: %q: backfill checkpoint %q is not an integer key", a.name, *s.checkpoint)
			}
			args = []any{n}
		}
	}
	rows, err := db.QueryxContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cdc: %q: read a chunk of %s: %w", a.name, c.table, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("cdc: %q: read a chunk of %s: %w", a.name, c.table, err)
	}
	ch.columns = make([]Column, len(names))
	keyAt := -1
	for i, n := range names {
		ch.columns[i] = Column{Name: n, Key: n == c.Key}
		if n == c.Key {
			keyAt = i
		}
	}
	if keyAt < 0 {
		return fmt.Errorf("cdc: %q: %s has no column %q", a.name, c.table, c.Key)
	}
	for rows.Next() {
		row, err := rows.SliceScan()
		if err != nil {
			return fmt.Errorf("cdc: %q: read a chunk of %s: %w", a.name, c.table, err)
		}
		ch.rows = append(ch.rows, row)
		ch.keys = append(ch.keys, keyString(row[keyAt]))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cdc: %q: read a chunk of %s: %w", a.name, c.table, err)
	}
	if len(ch.rows) == 0 {
		s.chunk = nil
		if s.group != nil || s.cur != nil || s.chunkKey != nil {
			return nil // the next chunk, read once the group is committed, finds none either
		}
		return s.backfillDone(ctx)
	}
	ch.last = ch.keys[len(ch.keys)-1]
	if err := s.writeMark(ctx, ch.high); err != nil {
		return fmt.Errorf("cdc: %q: write the high watermark: %w", a.name, err)
	}
	ch.read = true
	return nil
}

// writeMark writes a watermark, committed with synchronous_commit on so
// that its WAL is flushed, and sent to the applier, at once, whatever the
// server's setting.
func (s *stream) writeMark(ctx context.Context, mark int64) error {
	tx, err := s.a.src.DB.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit TO on`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.a.chunks.qMark, s.a.slot.name, mark); err != nil {
		return err
	}
	return tx.Commit()
}

// backfillDone records the backfill done, in the new store with the
// position, then in the migration.
func (s *stream) backfillDone(ctx context.Context) error {
	a := s.a
	tx, err := a.target.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cdc: %q: begin a transaction of the new store: %w", a.name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := a.pos.setChunk(ctx, tx, a.slot.name, s.checkpoint, true); err != nil {
		return err
	}
	// Fenced like a commit of changes: a position moved means another
	// applier.
	if err := a.pos.move(ctx, tx, a.slot.name, s.durable, s.durable, meta.Micros(time.Now())); err != nil {
		return fmt.Errorf("cdc: %q: %w", a.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cdc: %q: record the backfill done: %w", a.name, err)
	}
	s.chunksDone = true
	return s.markDone(ctx)
}

// markDone records the backfill done in the migration.
func (s *stream) markDone(ctx context.Context) error {
	a := s.a
	st, err := a.m.State(ctx)
	if err != nil || st.Backfill.Done() {
		return nil // read again at the next poll
	}
	if err := backfill.MarkDone(ctx, a.m, "cdc "+a.slot.name, "the watermark backfill copied every row"); err != nil {
		if ok, suppressed := a.logs.Allow(); ok {
			a.logger.WarnContext(ctx, "cutover: cdc: recording the backfill done failed", "migration", a.name, "err", err, "suppressed", suppressed)
		}
	}
	return nil
}

// watermark handles a change of the watermark table in the log.
func (s *stream) watermark(c *Change) {
	slot, _ := c.Get("slot")
	mark, _ := c.Get("mark")
	ch := s.chunk
	if ch == nil || slot != s.a.slot.name || c.New == nil {
		return
	}
	switch m, _ := mark.(int64); m {
	case ch.low:
		ch.open = true
	case ch.high:
		if !ch.open || !ch.read {
			return
		}
		for i, row := range ch.rows {
			if !ch.changed[ch.keys[i]] {
				s.cur.Changes = append(s.cur.Changes, Change{Op: Copy, Table: s.a.chunks.table, Columns: ch.columns, New: row})
			}
		}
		s.chunkKey = &ch.last
		s.chunk = nil
	}
}

// noteKey notes, while a chunk's watermarks are open, the key of a change
// of the backfilled table.
func (s *stream) noteKey(c *Change) {
	ch := s.chunk
	if ch == nil || !ch.open || c.Table != s.a.chunks.table {
		return
	}
	for _, row := range [][]any{c.New, c.Old} {
		for i, col := range c.Columns {
			if col.Name == s.a.chunks.Key && i < len(row) && row[i] != nil {
				ch.changed[keyString(row[i])] = true
			}
		}
	}
	if c.Op == Truncate {
		for _, k := range ch.keys {
			ch.changed[k] = true
		}
	}
}
