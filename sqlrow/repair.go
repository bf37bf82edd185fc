package sqlrow

import (
	"context"
	"fmt"
	"reflect"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
)

// Store is one copy of a table: its [Rows] in the database that holds it.
// The zero value is no store.
type Store struct {
	DB   *sqlx.DB
	Rows *Rows
}

// Pair is the two copies of a table in a migration, for repairs. Its Repair
// method is a repair function (a repair.Func of package
// expandcontract/repair) that the library writes instead of the user. The
// zero value has no stores and is not usable; a Pair is safe for
// concurrent use once filled, as long as its functions are.
type Pair struct {
	Old, New Store

	// Key turns the key of a repair entry into the key column's value, for
	// example strconv.ParseInt for an integer column on PostgreSQL. Nil
	// passes the entry's key as a string, which SQLite and MySQL convert.
	Key func(key string) (any, error)

	// Stage gives the stage that the writes of a key run in, as the
	// service resolves it for that key (its flag, with the key as the
	// targeting key). It decides the direction of a repair that versions
	// cannot decide, for the entries whose reason names no direction: a
	// verification's or a shadow read's. Nil copies those from the old
	// store, which is right only before reads move to the new store; see
	// [Pair.Repair].
	Stage func(ctx context.Context, key string) cutover.Stage
}

// Repair brings the two copies of r.Key together. It reads the key's row
// from both stores and:
//
//   - if both have it with different versions, copies the one with the
//     higher version over the other, only over a lower version, so that a
//     write landing meanwhile is never overwritten by an older value;
//   - otherwise (one copy missing, or both unversioned and different),
//     copies from the store that is the source for r: the one that is not
//     r.Target for the reasons of a failed or skipped write, and for a
//     verification's or a shadow read's entry the store that is
//     authoritative in the key's stage as Pair.Stage gives it (the old one
//     if Stage is nil). A copy over an existing row applies only if the row
//     still holds the version read; a missing source row deletes the
//     target's only if it still holds the version read.
//
// Without versions (both rows at 0) the guard cannot see a write that
// landed between the read and the copy, and a repair can then overwrite it
// with the value read; with versions it cannot.
func (p *Pair) Repair(ctx context.Context, r cutover.Repair) error {
	if p.Old.Rows == nil || p.New.Rows == nil || p.Old.DB == nil || p.New.DB == nil {
		return fmt.Errorf("%w: pair without both stores", ErrInvalidInput)
	}
	var key any = r.Key
	if p.Key != nil {
		k, err := p.Key(r.Key)
		if err != nil {
			return fmt.Errorf("%w: key %q: %w", ErrInvalidInput, r.Key, err)
		}
		key = k
	}
	stores := [2]Store{cutover.Old: p.Old, cutover.New: p.New}
	var rows [2]Row
	for side, s := range stores {
		row, err := s.Rows.Get(ctx, s.DB, key)
		if err != nil {
			return err
		}
		rows[side] = row
	}
	o, n := rows[cutover.Old], rows[cutover.New]
	switch {
	case !o.Found && !n.Found:
		return nil
	case o.Found && n.Found && o.Version != n.Version:
		from := cutover.Old
		if n.Version > o.Version {
			from = cutover.New
		}
		to := stores[from.Other()]
		_, err := to.Rows.Put(ctx, to.DB, key, rows[from].Version, rows[from].Values...)
		return err
	case o.Found && n.Found && reflect.DeepEqual(o.Values, n.Values):
		return nil
	}
	from := p.source(ctx, r)
	src, dst := rows[from], rows[from.Other()]
	to := stores[from.Other()]
	switch {
	case !src.Found:
		_, err := to.DB.ExecContext(ctx, to.Rows.delAt, key, int64(dst.Version))
		if err != nil {
			return fmt.Errorf("sqlrow: %s: delete %v: %w", to.Rows.table.Name, key, err)
		}
		return nil
	case !dst.Found:
		_, err := to.Rows.Put(ctx, to.DB, key, src.Version, src.Values...)
		return err
	}
	args := append(append(make([]any, 0, len(src.Values)+3), src.Values...), int64(src.Version), key, int64(dst.Version))
	if _, err := to.DB.ExecContext(ctx, to.Rows.swap, args...); err != nil {
		return fmt.Errorf("sqlrow: %s: update %v: %w", to.Rows.table.Name, key, err)
	}
	return nil
}

// source returns the store to copy from for r when versions cannot tell.
func (p *Pair) source(ctx context.Context, r cutover.Repair) cutover.Side {
	switch r.Reason {
	case cutover.Unverified, cutover.Mismatch:
		if p.Stage != nil {
			return p.Stage(ctx, r.Key).Authoritative()
		}
		return cutover.Old
	}
	return r.Target.Other()
}
