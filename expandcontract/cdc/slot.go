package cdc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// Slot is the logical replication slot of one migration on the old
// PostgreSQL database, and the publication of the same name that says
// which tables it carries. [SlotFor] returns it without touching the
// database; an [Applier] creates both when it first runs. A Slot is safe
// for concurrent use.
//
// A slot keeps, on the old server's disk, every WAL segment written since
// the position its consumer last confirmed, whether or not its tables
// changed: a slot that nothing consumes (an applier that is down, or a
// migration given up without [Slot.Drop]) keeps WAL until the disk is
// full. Watch [Slot.Lag] (the applier reports it as the gauge
// cutover.expandcontract.cdc.lag), and bound it on the server with
// max_slot_wal_keep_size, which invalidates a slot that keeps more than
// that; an applier then stops with [ErrSlotLost] instead of applying a
// log with a hole in it.
type Slot struct {
	db   *sqlx.DB
	name string
}

// SlotFor returns the slot of the migration named migration on db, the old
// PostgreSQL database (opened with the pgx driver). Its name, and its
// publication's, is derived from the migration's name: "cutover_", up to
// 40 letters and digits of the name in lower case, "_" and 8 hexadecimal
// digits of its SHA-256, a valid and unique slot name whatever the
// migration's name is. A nil db, a database that is not PostgreSQL or an
// invalid migration name is an error wrapping [ErrInvalidInput].
func SlotFor(db *sqlx.DB, migration string) (*Slot, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil old database", ErrInvalidInput)
	}
	if err := meta.ValidName("migration name", migration); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	d, err := sqldialect.For(db)
	if err != nil || d.Name() != sqldialect.Postgres {
		return nil, fmt.Errorf("%w: %q: the old database must be PostgreSQL (driver pgx), not %q", ErrInvalidInput, migration, db.DriverName())
	}
	return &Slot{db: db, name: slotName(migration)}, nil
}

// slotName derives the slot and publication name of a migration.
func slotName(migration string) string {
	var b strings.Builder
	b.WriteString("cutover_")
	for _, r := range strings.ToLower(migration) {
		if b.Len() >= 48 {
			break
		}
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		} else if r == '_' || r == '-' || r == ' ' || r == '.' {
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(migration))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:4]))
	return b.String()
}

// Name returns the name of the slot, which is also that of its
// publication.
func (s *Slot) Name() string { return s.name }

// quoted returns the name quoted as an identifier; slotName makes only
// lower case letters, digits and underscores.
func (s *Slot) quoted() string { return `"` + s.name + `"` }

// slotInfo is what pg_replication_slots says of a slot.
type slotInfo struct {
	exists    bool
	database  string // the database it belongs to
	plugin    string
	confirmed int64  // confirmed_flush_lsn
	walStatus string // "reserved", "extended", "unreserved" or "lost"
	activePID int64  // 0 if no walsender uses it
}

const qSlot = `SELECT database, COALESCE(plugin, ''), COALESCE((confirmed_flush_lsn - '0/0')::bigint, 0),
	COALESCE(wal_status, ''), COALESCE(active_pid, 0)
FROM pg_replication_slots WHERE slot_name = $1`

func (s *Slot) info(ctx context.Context) (slotInfo, error) {
	var in slotInfo
	err := s.db.QueryRowContext(ctx, qSlot, s.name).Scan(&in.database, &in.plugin, &in.confirmed, &in.walStatus, &in.activePID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return slotInfo{}, nil
	case err != nil:
		return slotInfo{}, fmt.Errorf("cdc: read slot %s: %w", s.name, err)
	}
	in.exists = true
	return in, nil
}

// Exists reports whether the slot exists.
func (s *Slot) Exists(ctx context.Context) (bool, error) {
	in, err := s.info(ctx)
	return in.exists, err
}

// Lag returns how many bytes of WAL the server keeps for the slot: the
// distance from the position its consumer last confirmed
// (confirmed_flush_lsn) to the server's current WAL position
// (pg_current_wal_lsn()). It grows with every write to the server, to any
// table, while nothing consumes the slot, and an applier brings it back to
// about zero once it has applied, and stored, the changes written so far.
// A slot that does not exist is an error wrapping [ErrNoSlot].
func (s *Slot) Lag(ctx context.Context) (int64, error) {
	var lag sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint
	FROM pg_replication_slots WHERE slot_name = $1`, s.name).Scan(&lag)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%w: %s", ErrNoSlot, s.name)
	case err != nil:
		return 0, fmt.Errorf("cdc: read the lag of slot %s: %w", s.name, err)
	case !lag.Valid:
		return 0, fmt.Errorf("cdc: slot %s has no confirmed position", s.name)
	}
	return max(0, lag.Int64), nil
}

// Throttle returns a throttle hook for backfill.WithThrottle that holds a
// backfill while the slot's [Slot.Lag] is over maxBytes: the applier is
// behind, and copying more rows would only make the old server keep more
// WAL and the new store work harder. Once over maxBytes, the backfill goes
// on only when the lag falls to three quarters of it, so that a lag
// hovering at the bound does not start and stop it at every batch. While
// held, the hook asks the runner to wait poll before asking again. A lag
// that cannot be read, also because the slot does not exist yet, holds
// the backfill too: a backfill must not start before the slot does, or
// the changes between its copy and the slot's creation would be lost.
// maxBytes and poll must be positive; otherwise every call of the hook
// returns an error wrapping [ErrInvalidInput], which stops the run.
//
// The hook is meant for one runner; it is safe for concurrent use.
func (s *Slot) Throttle(maxBytes int64, poll time.Duration) func(ctx context.Context) (time.Duration, error) {
	var (
		mu        sync.Mutex
		throttled bool
	)
	return func(ctx context.Context) (time.Duration, error) {
		if maxBytes <= 0 || poll <= 0 {
			return 0, fmt.Errorf("%w: slot throttle: bound %d bytes and poll %v must be positive", ErrInvalidInput, maxBytes, poll)
		}
		lag, err := s.Lag(ctx)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			throttled = true
			return poll, nil
		}
		bound := maxBytes
		if throttled {
			bound = maxBytes * 3 / 4
		}
		throttled = lag > bound
		if throttled {
			return poll, nil
		}
		return 0, nil
	}
}

// Drop drops the slot and the publication, if they exist. A walsender
// still streaming from the slot (an applier of another process) is
// terminated first, so Drop ends that applier's stream; Drop waits, for
// at most ten seconds, for the slot to be released. Dropping what is not
// there is no error. It leaves the applier's stored position in the new
// store, which [Applier.Drop] deletes too.
func (s *Slot) Drop(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := s.info(ctx)
		if err != nil {
			return err
		}
		if !in.exists {
			break
		}
		if in.activePID != 0 {
			if _, err := s.db.ExecContext(ctx, `SELECT pg_terminate_backend($1, 5000)`, in.activePID); err != nil {
				return fmt.Errorf("cdc: end the walsender of slot %s: %w", s.name, err)
			}
		} else if _, err := s.db.ExecContext(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, s.name); err == nil {
			break
		} else if sqlState(err) != "55006" { // object_in_use: taken again meanwhile
			return fmt.Errorf("cdc: drop slot %s: %w", s.name, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cdc: drop slot %s: still in use by pid %d after 10s", s.name, in.activePID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cdc: drop slot %s: %w", s.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := s.db.ExecContext(ctx, `DROP PUBLICATION IF EXISTS `+s.quoted()); err != nil {
		return fmt.Errorf("cdc: drop publication %s: %w", s.name, err)
	}
	return nil
}

// DropSQL returns the statements that drop the slot and its publication,
// to run on the old database by hand or as the SQL of an
// expandcontract.Retire when the old store is retired: they end a
// walsender still streaming from the slot, waiting up to five seconds for
// it to exit, drop the slot, and drop the publication, each doing nothing
// if there is nothing to do. A walsender that has not exited in those
// five seconds keeps the slot, and the second statement fails; run them
// again.
func (s *Slot) DropSQL() []string {
	lit := "'" + s.name + "'"
	return []string{
		`SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = ` + lit + ` AND active_pid IS NOT NULL`,
		`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ` + lit,
		`DROP PUBLICATION IF EXISTS ` + s.quoted(),
	}
}

// sqlState returns the SQLSTATE of the PostgreSQL error in err's chain,
// or "".
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}
