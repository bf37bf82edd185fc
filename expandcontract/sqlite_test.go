package expandcontract_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

// SQLite as users open it: a file, a busy timeout, WAL, and no
// _txlock=immediate (the test databases of package testdb are opened that
// way too; these tests choose each parameter themselves).

// plainSQLite opens the SQLite file path with the DSN parameters params,
// and closes the pool when the test ends.
func plainSQLite(t *testing.T, path, params string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("sqlite", path+params)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

// userDSN is the DSN parameters a user writes.
const userDSN = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"

// createItems creates the table items with n rows, id 1 to n, whose copy
// column a backfill fills.
func createItems(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, copy TEXT, note TEXT)`)
	require.NoError(t, err)
	_, err = db.ExecContext(t.Context(), `CREATE TABLE writes (id INTEGER PRIMARY KEY AUTOINCREMENT, by TEXT NOT NULL)`)
	require.NoError(t, err)
	for i := 1; i <= n; i++ {
		_, err := db.ExecContext(t.Context(), `INSERT INTO items (id, name) VALUES (?, ?)`, i, fmt.Sprintf("item-%d", i))
		require.NoError(t, err)
	}
}

// readThenWrite is a batch as users write them: it reads the rows of the
// range in its transaction, then writes their copies. between runs
// between the read and the first write.
func readThenWrite(between func(ctx context.Context) error) backfill.BatchFunc {
	return func(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
		q, args := `SELECT id, name FROM items WHERE id <= ?`, []any{r.To}
		if r.From != nil {
			q += ` AND id > ?`
			args = append(args, r.From)
		}
		var rows []struct {
			ID   int64  `db:"id"`
			Name string `db:"name"`
		}
		if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
			return 0, err
		}
		if between != nil {
			if err := between(ctx); err != nil {
				return 0, err
			}
		}
		for _, row := range rows {
			if _, err := tx.ExecContext(ctx, `UPDATE items SET copy = ? WHERE id = ?`, strings.ToUpper(row.Name), row.ID); err != nil {
				return 0, err
			}
		}
		return int64(len(rows)), nil
	}
}

// requireCopied fails the test unless every item has its copy.
func requireCopied(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	var copied int
	require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM items WHERE copy = UPPER(name)`))
	require.Equal(t, n, copied)
}

// TestSQLiteBatchTakesTheWriteLockWhenItBegins writes to the database from
// another connection between a batch's read and its first write, on a
// database opened with a busy timeout and WAL but without
// _txlock=immediate. In a transaction that took only a read snapshot
// that write would commit, and the batch's write then fail at once with
// SQLITE_BUSY_SNAPSHOT, "database is locked (517)", on every try. The
// backfill takes the database's write lock when each batch's transaction
// begins instead: the other connection, which does not wait, finds it
// locked, and the batch commits.
func TestSQLiteBatchTakesTheWriteLockWhenItBegins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := plainSQLite(t, path, userDSN)
	impatient := plainSQLite(t, path, "?_pragma=busy_timeout(0)")
	createItems(t, db, 25)
	s := ectest.Open(t, db, ectest.NewClock())
	m := ectest.ToBackfill(t, s, "items")

	d, err := sqldialect.ForDriver("sqlite")
	require.NoError(t, err)
	var batches, locked atomic.Int64
	between := func(ctx context.Context) error {
		batches.Add(1)
		_, err := impatient.ExecContext(ctx, `INSERT INTO writes (by) VALUES ('another connection')`)
		if d.IsLockTimeout(err) {
			locked.Add(1)
			return nil
		}
		return err
	}
	bf, err := backfill.New(m, backfill.Keyset{DB: db, Table: "items", Column: "id"}, readThenWrite(between),
		backfill.WithBatchSize(10))
	require.NoError(t, err)
	require.NoError(t, bf.Run(t.Context()))
	requireCopied(t, db, 25)
	assert.Equal(t, int64(3), batches.Load(), "each batch ran once")
	assert.Equal(t, batches.Load(), locked.Load(), "every batch held the write lock from its start")
}

// TestSQLitePlainDSNUnderConcurrentWrites runs a backfill whose batches
// read before they write, a repairer, and writers that write the same
// database and record repairs, all at once, on a file database opened as
// users open it: with a busy timeout and WAL, without _txlock=immediate.
// None of them may fail with "database is locked".
func TestSQLitePlainDSNUnderConcurrentWrites(t *testing.T) {
	const (
		items   = 300
		writers = 4
		writes  = 150 // per writer
	)
	path := filepath.Join(t.TempDir(), "app.db")
	db := plainSQLite(t, path, userDSN)
	createItems(t, db, items)
	s := ectest.Open(t, db, ectest.NewClock())
	m := ectest.ToBackfill(t, s, "items")
	// Each writer is another instance of the service: its own pool and store.
	type instance struct {
		db  *sqlx.DB
		s   *expandcontract.Store
		log *repair.Log
	}
	var instances []instance
	for range writers {
		wdb := plainSQLite(t, path, userDSN)
		ws := ectest.Open(t, wdb, ectest.NewClock())
		l, err := repair.NewLog(ectest.Migration(t, ws, "items"))
		require.NoError(t, err)
		instances = append(instances, instance{wdb, ws, l})
	}

	bf, err := backfill.New(m, backfill.Keyset{DB: db, Table: "items", Column: "id"}, readThenWrite(nil),
		backfill.WithBatchSize(20), backfill.WithPollInterval(time.Millisecond))
	require.NoError(t, err)
	repairs, err := repair.NewLog(m)
	require.NoError(t, err)
	var repaired sync.Map
	rp, err := repair.New(repairs, func(ctx context.Context, r cutover.Repair) error {
		_, err := db.ExecContext(ctx, `UPDATE items SET note = 'repaired' WHERE id = ?`, r.Key)
		if err == nil {
			repaired.Store(r.Key, true)
		}
		return err
	}, repair.WithBatch(10))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rp.Close() })

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		writing atomic.Int64
	)
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
	}
	writing.Store(writers)
	for i, in := range instances {
		wg.Go(func() {
			defer writing.Add(-1)
			ctx := t.Context()
			for n := range writes {
				id := (i*writes+n)%items + 1
				if _, err := in.db.ExecContext(ctx, `UPDATE items SET note = ? WHERE id = ?`, fmt.Sprintf("w%d-%d", i, n), id); err != nil {
					fail("write", err)
					return
				}
				tx, err := in.db.BeginTxx(ctx, nil)
				if err != nil {
					fail("begin", err)
					return
				}
				_, err = tx.ExecContext(ctx, `INSERT INTO writes (by) VALUES (?)`, fmt.Sprintf("writer %d", i))
				if err == nil {
					err = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
				if err != nil {
					fail("insert", err)
					return
				}
				if err := in.log.Record(ctx, cutover.Repair{Op: "items.save", Key: fmt.Sprint(id), Target: cutover.New,
					Stage: cutover.DualWrite, Reason: cutover.SecondaryFailed, Err: errors.New("new store down")}); err != nil {
					fail("record", err)
					return
				}
				if n%50 == 0 {
					// An operator steers the backfill from this instance.
					wm := ectest.Migration(t, in.s, "items")
					if err := backfill.Pause(ctx, wm, "operator", ""); err != nil {
						fail("pause", err)
						return
					}
					if err := backfill.Resume(ctx, wm, "operator", ""); err != nil {
						fail("resume", err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		if err := bf.Run(t.Context()); err != nil {
			fail("backfill", err)
		}
	})
	wg.Go(func() {
		// Drain while the writers write, and once more after.
		for {
			last := writing.Load() == 0
			for range 1000 {
				stats, err := rp.RunOnce(t.Context())
				if err != nil {
					fail("repair", err)
					return
				}
				if stats.Claimed == 0 {
					break
				}
			}
			if last {
				return
			}
		}
	})
	wg.Wait()
	require.Empty(t, errs)
	requireCopied(t, db, items)
	n, err := repairs.Pending(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "the log is drained")
	var written int
	require.NoError(t, db.GetContext(t.Context(), &written, `SELECT COUNT(*) FROM writes`))
	assert.Equal(t, writers*writes, written)
}

// TestOpenRefusesSQLiteWithoutBusyTimeout opens a file database without a
// busy timeout, on which a write that meets another fails at once: Open
// refuses it, naming the DSN parameter to add, and creates nothing. An
// in-memory database, which no other process can open, is taken as it is.
func TestOpenRefusesSQLiteWithoutBusyTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := plainSQLite(t, path, "?_pragma=journal_mode(WAL)")
	_, err := expandcontract.Open(t.Context(), db)
	require.ErrorIs(t, err, expandcontract.ErrInvalidInput)
	assert.ErrorContains(t, err, "no busy timeout")
	assert.ErrorContains(t, err, "_pragma=busy_timeout(5000)")
	var tables int
	require.NoError(t, db.GetContext(t.Context(), &tables, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`))
	assert.Zero(t, tables, "Open created nothing")

	ectest.Open(t, plainSQLite(t, path, userDSN), nil)
	mem := plainSQLite(t, ":memory:", "")
	mem.SetMaxOpenConns(1)
	ectest.Open(t, mem, nil)
}

// TestSQLite3DriverName opens the store on a SQLite database whose driver
// is named "sqlite3", as github.com/mattn/go-sqlite3 registers itself and
// programs register modernc.org/sqlite: it is SQLite, for the store and
// for the sub-packages, and a database without a busy timeout is refused
// with the DSN parameter of either driver.
func TestSQLite3DriverName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	impatient := sqlx.NewDb(plainSQLite(t, path, "?_pragma=journal_mode(WAL)").DB, "sqlite3")
	_, err := expandcontract.Open(t.Context(), impatient)
	require.ErrorIs(t, err, expandcontract.ErrInvalidInput)
	assert.ErrorContains(t, err, "_pragma=busy_timeout(5000)")
	assert.ErrorContains(t, err, "_busy_timeout=5000")

	db := sqlx.NewDb(plainSQLite(t, path, userDSN).DB, "sqlite3")
	s := ectest.Open(t, db, ectest.NewClock())
	assert.Equal(t, sqldialect.SQLite, s.Driver())
	createItems(t, db, 5)
	m := ectest.Ensure(t, s, "items")
	_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.DualWrite, Actor: "ann",
		SQL: []string{`ALTER TABLE items ADD COLUMN extra TEXT`}})
	require.NoError(t, err)
	ectest.MoveTo(t, m, expandcontract.Backfill)
	bf, err := backfill.New(m, backfill.Keyset{Table: "items", Column: "id"},
		backfill.SQLBatch(`UPDATE items SET copy = name WHERE id > :from AND id <= :to`), backfill.WithBatchSize(2))
	require.NoError(t, err)
	require.NoError(t, bf.Run(t.Context()))
	var copied int
	require.NoError(t, db.GetContext(t.Context(), &copied, `SELECT COUNT(*) FROM items WHERE copy = name`))
	assert.Equal(t, 5, copied)
}
