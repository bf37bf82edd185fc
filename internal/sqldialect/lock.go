package sqldialect

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// SetLockTimeout bounds how long later statements run through ex wait for a
// lock before failing with an error that [Dialect.IsLockTimeout] reports.
// timeout must be positive. What it does, and for how long it lasts,
// depends on the database:
//
//   - PostgreSQL: it sets lock_timeout for the rest of the current
//     transaction only (set_config with is_local, the same as SET LOCAL),
//     rounded up to whole milliseconds. ex must be the transaction (a
//     *sqlx.Tx): run on a *sqlx.DB it lasts only for its own statement and
//     so has no effect. When the transaction ends, the setting is gone.
//   - MySQL and MariaDB: it sets both innodb_lock_wait_timeout (row locks)
//     and lock_wait_timeout (metadata locks, such as those DDL takes) for the
//     session, rounded up to whole seconds with a minimum of one. The
//     setting outlives the transaction: it stays on the pooled connection
//     for whoever uses it next, until changed again. Call it at the start of
//     every transaction that needs a bound, and pass that transaction as
//     ex so the setting reaches the connection the transaction runs on.
//   - SQLite: it does nothing and returns nil. SQLite waits for its one
//     database-wide lock as long as the connection's busy_timeout, which is
//     set when the database is opened (for modernc.org/sqlite with the DSN
//     parameter _pragma=busy_timeout(milliseconds)), and a transaction
//     opened with BEGIN IMMEDIATE has already waited for the lock before any
//     statement in it runs.
func (d Dialect) SetLockTimeout(ctx context.Context, ex sqlx.ExtContext, timeout time.Duration) error {
	d.must()
	if timeout <= 0 {
		return fmt.Errorf("sqldialect: lock timeout must be positive, got %v", timeout)
	}
	switch d.k {
	case kindPostgres:
		ms := (timeout + time.Millisecond - 1) / time.Millisecond
		if _, err := ex.ExecContext(ctx, "SELECT set_config('lock_timeout', $1, true)", strconv.FormatInt(int64(ms), 10)+"ms"); err != nil {
			return fmt.Errorf("sqldialect: set lock_timeout: %w", err)
		}
	case kindMySQL:
		s := int64((timeout + time.Second - 1) / time.Second)
		// s is an integer formatted here, not input: nothing to escape.
		n := strconv.FormatInt(s, 10)
		if _, err := ex.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = "+n+", SESSION lock_wait_timeout = "+n); err != nil {
			return fmt.Errorf("sqldialect: set innodb_lock_wait_timeout and lock_wait_timeout: %w", err)
		}
	}
	return nil
}
