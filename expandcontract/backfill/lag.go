package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

// LagOption configures the throttle of [WithLagThrottle].
type LagOption interface{ applyLag(*lagConfig) }

type lagOptionFunc func(*lagConfig)

func (f lagOptionFunc) applyLag(c *lagConfig) { f(c) }

type lagConfig struct {
	db       *sqlx.DB
	max      time.Duration
	maxBytes int64
	err      error // what was wrong with the arguments, reported by New
}

// WithMaxLagBytes makes the throttle of [WithLagThrottle] on PostgreSQL
// also hold the backfill while a replica's replay is more than n bytes of
// WAL behind the primary's current WAL position. The default, 0, bounds
// the lag in time only; n must not be negative. MySQL and MariaDB report
// no such figure, and there the option has no effect.
func WithMaxLagBytes(n int64) LagOption {
	return lagOptionFunc(func(c *lagConfig) { c.maxBytes = n })
}

// resumeAt is the fraction of a bound that a lag must fall to, once it
// went over the bound, for the backfill to go on: the hysteresis that
// keeps a lag hovering at the bound from starting and stopping the
// backfill at every batch.
const resumeAt = 0.75

// WithLagThrottle holds the backfill, before each batch, while the
// database's replicas lag more than max behind, as gh-ost does. Once the
// lag went over max, the runner waits until it falls to three quarters of
// max, so that a lag hovering at the bound does not start and stop the
// backfill at every batch. While it waits it reads the lag again every
// poll interval ([WithPollInterval]), keeps its lease, and acts on a
// pause, a cancellation or a lost lease at once; the migration's state
// says why it waits ([expandcontract.BackfillState].Throttled), until it
// commits a batch again.
//
// db is read according to its driver:
//
//   - PostgreSQL: db is the primary. The throttle reads its
//     pg_stat_replication, leaving out base backups and logical
//     replication (change data capture consumers), and takes as the lag
//     of each replica the larger of its replay_lag and, while the replica
//     has not replayed all the WAL written so far and its replay_lsn does
//     not move, the time it has not moved for, as the runner saw it. A
//     replica that has replayed up to the primary's current WAL position
//     lags 0, whatever its replay_lag, which PostgreSQL keeps showing for
//     a while after the last replay and then shows as NULL. With
//     [WithMaxLagBytes], a replica whose replay is more WAL bytes behind
//     than that holds the backfill too. A replica that is not connected
//     is not seen.
//   - MySQL and MariaDB: db is a connection to the replica. The throttle
//     reads SHOW REPLICA STATUS (SHOW SLAVE STATUS on servers that do not
//     know it) and takes the largest Seconds_Behind_Master (or
//     Seconds_Behind_Source) over its replication sources.
//
// A lag that cannot be read (a failing query, a server that is no replica
// or has no connection of its own to the primary, a replica whose
// replication threads stopped and report no lag) holds the backfill like
// a lag over the bound: the runner waits and reads it again every poll
// interval, logs a warning at most once a minute, and the migration's
// state says what failed. A backfill never runs blind past replicas it
// was told to spare.
//
// With [WithThrottle] too, the lag is read first and the hook is called
// once the lag lets the batch go. db must not be nil, max must be
// positive, and db's driver one of PostgreSQL or MySQL; [New] refuses
// anything else with an error wrapping [ErrInvalidInput].
func WithLagThrottle(db *sqlx.DB, max time.Duration, opts ...LagOption) Option {
	lc := lagConfig{db: db, max: max}
	var errs []string
	for i, o := range opts {
		if o == nil {
			errs = append(errs, fmt.Sprintf("lag option %d is nil", i))
			continue
		}
		o.applyLag(&lc)
	}
	switch {
	case db == nil:
		errs = append(errs, "nil database for the lag throttle")
	case max <= 0:
		errs = append(errs, fmt.Sprintf("lag throttle bound must be positive, got %v", max))
	case lc.maxBytes < 0:
		errs = append(errs, fmt.Sprintf("lag throttle bound in bytes must not be negative, got %d", lc.maxBytes))
	}
	if db != nil && len(errs) == 0 {
		d, err := sqldialect.For(db)
		switch {
		case err != nil:
			errs = append(errs, "lag throttle database: "+err.Error())
		case d.Name() != sqldialect.Postgres && d.Name() != sqldialect.MySQL:
			errs = append(errs, fmt.Sprintf("the lag throttle reads PostgreSQL or MySQL replicas, not %s", d.Name()))
		}
	}
	if len(errs) > 0 {
		lc.err = errors.New(strings.Join(errs, "; "))
	}
	return optionFunc(func(c *config) {
		l := &lagThrottle{lagConfig: lc}
		if d, err := sqldialect.For(db); err == nil {
			l.postgres = d.Name() == sqldialect.Postgres
		}
		c.lag = l
	})
}

// lagThrottle is the state of one runner's lag throttle, used by its Run
// alone.
type lagThrottle struct {
	lagConfig
	postgres  bool
	throttled bool // the last check held the backfill
	// PostgreSQL: for each replica behind, by walsender pid, the
	// replay_lsn it was last seen at and since when.
	stuck map[int64]replayMark
	// MySQL: the replica's host:port, once read, and the statement that
	// reads its status.
	where      string
	showStatus string
}

type replayMark struct {
	lsn   string
	since time.Time
}

// replicaLag is the lag of one replica.
type replicaLag struct {
	where string        // the replica, for messages
	lag   time.Duration // its lag in time
	bytes int64         // its replay's distance behind in WAL bytes; PostgreSQL only
}

// check reads the lag at now and returns why the backfill must wait, or
// "" if it may go on.
func (l *lagThrottle) check(ctx context.Context, now time.Time) (string, error) {
	var (
		lags []replicaLag
		err  error
	)
	if l.postgres {
		lags, err = l.readPostgres(ctx, now)
	} else {
		lags, err = l.readMySQL(ctx)
	}
	if err != nil {
		l.throttled = true
		return "", err
	}
	return l.decide(lags), nil
}

// decide returns why lags hold the backfill, or "", and remembers whether
// they do, for the hysteresis of the next decision.
func (l *lagThrottle) decide(lags []replicaLag) string {
	maxLag, maxBytes := l.max, l.maxBytes
	if l.throttled {
		maxLag = time.Duration(float64(maxLag) * resumeAt)
		maxBytes = int64(float64(maxBytes) * resumeAt)
	}
	var why string
	worst := time.Duration(-1)
	for _, r := range lags {
		switch {
		case r.lag > maxLag && r.lag > worst:
			worst = r.lag
			why = fmt.Sprintf("replica lag %s > %s on %s", roundLag(r.lag), roundLag(maxLag), r.where)
		case worst < 0 && l.maxBytes > 0 && r.bytes > maxBytes:
			why = fmt.Sprintf("replica replay %d bytes behind > %d on %s", r.bytes, maxBytes, r.where)
		}
	}
	l.throttled = why != ""
	return why
}

// roundLag rounds a lag for messages: to the millisecond below a second,
// to the second above, so that a message changes at most once a second.
func roundLag(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

// pgReplicas reads the physical replicas of a PostgreSQL primary.
const pgReplicas = `SELECT pid, COALESCE(application_name, ''), COALESCE(host(client_addr), ''), COALESCE(client_port, -1),
	COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8,
	COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'))::bigint,
	COALESCE(replay_lsn::text, '')
FROM pg_stat_replication
WHERE state <> 'backup'
	AND pid NOT IN (SELECT active_pid FROM pg_replication_slots WHERE slot_type = 'logical' AND active_pid IS NOT NULL)`

// readPostgres reads the lag of each replica of the primary l.db at now.
func (l *lagThrottle) readPostgres(ctx context.Context, now time.Time) ([]replicaLag, error) {
	rows, err := l.db.QueryContext(ctx, pgReplicas)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	defer rows.Close()
	var out []replicaLag
	seen := make(map[int64]replayMark)
	for rows.Next() {
		var (
			pid, port, gap int64
			app, addr, lsn string
			secs           float64
		)
		if err := rows.Scan(&pid, &app, &addr, &port, &secs, &gap, &lsn); err != nil {
			return nil, fmt.Errorf("read pg_stat_replication: %w", err)
		}
		where := app
		if addr != "" {
			if port >= 0 {
				addr += ":" + strconv.FormatInt(port, 10)
			}
			where += " (" + addr + ")"
		}
		r := replicaLag{where: where, bytes: max(0, gap)}
		if gap > 0 {
			r.lag = time.Duration(secs * float64(time.Second))
			mark, ok := l.stuck[pid]
			if !ok || mark.lsn != lsn {
				mark = replayMark{lsn: lsn, since: now}
			}
			seen[pid] = mark
			r.lag = max(r.lag, now.Sub(mark.since))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	l.stuck = seen
	return out, nil
}

// readMySQL reads the lag of the MySQL or MariaDB replica l.db.
func (l *lagThrottle) readMySQL(ctx context.Context) ([]replicaLag, error) {
	if l.where == "" {
		var host string
		var port int64
		if err := l.db.QueryRowContext(ctx, `SELECT @@hostname, @@port`).Scan(&host, &port); err != nil {
			return nil, fmt.Errorf("read the replica's host and port: %w", err)
		}
		l.where = host + ":" + strconv.FormatInt(port, 10)
	}
	statements := []string{"SHOW REPLICA STATUS", "SHOW SLAVE STATUS"}
	if l.showStatus != "" {
		statements = []string{l.showStatus}
	}
	var firstErr error
	for _, q := range statements {
		cols, values, err := queryStrings(ctx, l.db, q)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		l.showStatus = q
		lag, err := parseReplicaStatus(cols, values)
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", l.where, err)
		}
		return []replicaLag{{where: l.where, lag: lag}}, nil
	}
	return nil, fmt.Errorf("replica %s: %s: %w", l.where, statements[0], firstErr)
}

// queryStrings runs q and returns its columns and rows as strings.
func queryStrings(ctx context.Context, db *sqlx.DB, q string) ([]string, [][]sql.NullString, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]sql.NullString
	for rows.Next() {
		row := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		out = append(out, row)
	}
	return cols, out, rows.Err()
}

// parseReplicaStatus returns the largest lag that the rows of SHOW
// REPLICA STATUS or SHOW SLAVE STATUS report, one row per replication
// source, with the columns cols: their Seconds_Behind_Master (MariaDB,
// MySQL before 8.0.22) or Seconds_Behind_Source. A server that returns no
// row is no replica; a source whose threads do not run reports NULL,
// which is an error naming the source and its threads' state.
func parseReplicaStatus(cols []string, rows [][]sql.NullString) (time.Duration, error) {
	idx := func(names ...string) int {
		for _, n := range names {
			for i, c := range cols {
				if strings.EqualFold(c, n) {
					return i
				}
			}
		}
		return -1
	}
	behind := idx("Seconds_Behind_Master", "Seconds_Behind_Source")
	if behind < 0 {
		return 0, fmt.Errorf("no column Seconds_Behind_Master or Seconds_Behind_Source among %d columns", len(cols))
	}
	if len(rows) == 0 {
		return 0, errors.New("not a replica: its replica status has no row")
	}
	name := idx("Connection_name", "Channel_Name")
	io, sqlRunning := idx("Slave_IO_Running", "Replica_IO_Running"), idx("Slave_SQL_Running", "Replica_SQL_Running")
	field := func(row []sql.NullString, i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return row[i].String
	}
	var worst time.Duration
	for _, row := range rows {
		if len(row) != len(cols) {
			return 0, fmt.Errorf("a row of %d values for %d columns", len(row), len(cols))
		}
		source := field(row, name)
		if source != "" {
			source = " of source " + strconv.Quote(source)
		}
		v := row[behind]
		if !v.Valid {
			return 0, fmt.Errorf("replication%s reports no lag (%s is NULL; IO thread %q, SQL thread %q)",
				source, cols[behind], field(row, io), field(row, sqlRunning))
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v.String), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("replication%s: %s is %q, not a number of seconds", source, cols[behind], v.String)
		}
		worst = max(worst, time.Duration(n)*time.Second)
	}
	return worst, nil
}
