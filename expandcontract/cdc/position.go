package cdc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// positions is the table of the new store's database that holds, for
// each slot, the position up to which its changes are applied: the end
// of the last transaction applied, written in the transaction that applied
// it.
type positions struct {
	db      *sqlx.DB
	d       sqldialect.Dialect
	create  string
	qGet    string
	qInsert string
	qMove   string // compare-and-swap of the position
	qDelete string
	qChunk  string // the watermark backfill's checkpoint and whether it is done
	qChunkR string
}

func newPositions(db *sqlx.DB, d sqldialect.Dialect, prefix string) (*positions, error) {
	table, err := d.QuoteIdent(prefix + "cdc_positions")
	if err != nil {
		return nil, fmt.Errorf("position table: %w", err)
	}
	return &positions{db: db, d: d,
		create: `CREATE TABLE IF NOT EXISTS ` + table + ` (slot ` + d.TypeKeyText() + ` PRIMARY KEY, lsn ` + d.TypeBigInt() +
			` NOT NULL, updated_at ` + d.TypeBigInt() + ` NOT NULL, chunk_key ` + d.TypeText() + `, chunk_done ` + d.TypeBool() + ` NOT NULL DEFAULT 0)`,
		qGet:    d.Rebind(`SELECT lsn FROM ` + table + ` WHERE slot = ?`),
		qInsert: d.Rebind(`INSERT INTO ` + table + ` (slot, lsn, updated_at) VALUES (?, ?, ?)`),
		qMove:   d.Rebind(`UPDATE ` + table + ` SET lsn = ?, updated_at = ? WHERE slot = ? AND lsn = ?`),
		qDelete: d.Rebind(`DELETE FROM ` + table + ` WHERE slot = ?`),
		qChunk:  d.Rebind(`UPDATE ` + table + ` SET chunk_key = ?, chunk_done = ? WHERE slot = ?`),
		qChunkR: d.Rebind(`SELECT chunk_key, chunk_done FROM ` + table + ` WHERE slot = ?`),
	}, nil
}

// ensureTable creates the table unless it exists.
func (p *positions) ensureTable(ctx context.Context) error {
	if _, err := p.db.ExecContext(ctx, p.create); err != nil {
		return fmt.Errorf("cdc: create the position table: %w", err)
	}
	return nil
}

// get returns the stored position of slot, and false if none is stored.
func (p *positions) get(ctx context.Context, slot string) (LSN, bool, error) {
	var v int64
	err := p.db.QueryRowContext(ctx, p.qGet, slot).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("cdc: read the stored position of %s: %w", slot, err)
	}
	return LSN(v), true, nil
}

// insert stores the first position of slot; of two appliers inserting at
// once, one does, and the other's insert is no error.
func (p *positions) insert(ctx context.Context, slot string, at LSN, now int64) error {
	_, err := p.db.ExecContext(ctx, p.qInsert, slot, int64(at), now)
	if err != nil && !p.d.IsUniqueViolation(err) {
		return fmt.Errorf("cdc: store the first position of %s: %w", slot, err)
	}
	return nil
}

// move moves the position of slot from prev to next in tx, and fails with
// [ErrFenced] if it was not at prev.
func (p *positions) move(ctx context.Context, tx *sqlx.Tx, slot string, prev, next LSN, now int64) error {
	res, err := tx.ExecContext(ctx, p.qMove, int64(next), now, slot, int64(prev))
	if err != nil {
		return fmt.Errorf("cdc: store position %s: %w", next, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("cdc: store position %s: %w", next, err)
	}
	if n != 1 {
		return fmt.Errorf("%w: the stored position of %s is no longer %s", ErrFenced, slot, prev)
	}
	return nil
}

// remove deletes the stored position of slot.
func (p *positions) remove(ctx context.Context, slot string) error {
	if _, err := p.db.ExecContext(ctx, p.qDelete, slot); err != nil {
		return fmt.Errorf("cdc: delete the stored position of %s: %w", slot, err)
	}
	return nil
}

// prefixOf returns the table prefix of the migration's metadata.
func prefixOf(h *meta.Handle) string { return h.Store.Prefix }

// chunk returns the stored checkpoint of the watermark backfill (nil
// before its first chunk) and whether it is done.
func (p *positions) chunk(ctx context.Context, slot string) (*string, bool, error) {
	var key sql.NullString
	var done int64
	if err := p.db.QueryRowContext(ctx, p.qChunkR, slot).Scan(&key, &done); err != nil {
		return nil, false, fmt.Errorf("cdc: read the backfill checkpoint of %s: %w", slot, err)
	}
	if !key.Valid {
		return nil, done != 0, nil
	}
	return &key.String, done != 0, nil
}

// setChunk stores, in tx, the checkpoint of the watermark backfill and
// whether it is done.
func (p *positions) setChunk(ctx context.Context, tx *sqlx.Tx, slot string, key *string, done bool) error {
	if _, err := tx.ExecContext(ctx, p.qChunk, key, meta.BoolInt(done), slot); err != nil {
		return fmt.Errorf("cdc: store the backfill checkpoint of %s: %w", slot, err)
	}
	return nil
}
