package ddlstall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The settings of the measurement.
const (
	lockTimeout = 2 * time.Second // the store's lock timeout (WithLockTimeout)
	ddlAttempts = 5               // the store's DDL attempts (WithDDLAttempts)
	warmUp      = time.Second     // writers run this long before the statements
	orgs        = 100             // rows of orgs, which org_id references
)

// Bounds of the waits.
const (
	// waitLimit bounds waiting for the writers to take up a new write mode.
	waitLimit = time.Minute
	// loadLimit bounds creating and filling the tables of one case.
	loadLimit = 10 * time.Minute
	// ddlLimit bounds the moves and the batched copy of one case.
	ddlLimit = 15 * time.Minute
	// dropLimit bounds dropping the tables of one case.
	dropLimit = time.Minute
)

var quiet = slog.New(slog.DiscardHandler)

// result is the line of the table for one case.
type result struct {
	c     stallCase
	load  time.Duration // creating and filling the tables
	dur   time.Duration // the measured window: the moves and any batched copy
	st    stats
	quiet time.Duration // p99 of the warm-up
	moved string
	// steps are the moves and the batched copy of the window, with their
	// start and end from the window's start.
	steps []step
	// longestAt is when the longest write started, from the window's start.
	longestAt time.Duration
}

// step is one move or copy of a case's window.
type step struct {
	what     string
	from, to time.Duration
}

// TestDDLStall runs every case of cases under load and prints the table.
func TestDDLStall(t *testing.T) {
	rows := int64(suite.EnvInt(t, "CUTOVER_STALL_ROWS", 100_000))
	nw := suite.EnvInt(t, "CUTOVER_STALL_WRITERS", 4)
	var results []result
	for _, name := range []string{"postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			store, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithLogger(quiet),
				expandcontract.WithLockTimeout(lockTimeout), expandcontract.WithDDLAttempts(ddlAttempts))
			require.NoError(t, err)
			for _, c := range cases {
				if c.db != name {
					continue
				}
				t.Run(c.change+"/"+string(c.variant), func(t *testing.T) {
					results = append(results, runCase(t, db, store, c, rows, nw))
				})
			}
		})
	}
	t.Logf("%d rows, %d writers (a write every %v after the last, 1 in 4 an insert), lock timeout %v, %d DDL attempts, warm-up %v\n%s",
		rows, nw, pause, lockTimeout, ddlAttempts, warmUp, table(results))
}

// runCase measures c on a fresh table of rows rows under nw writers.
func runCase(t *testing.T, db *testdb.DB, store *expandcontract.Store, c stallCase, rows int64, nw int) result {
	ctx := t.Context()
	res := result{c: c}
	t.Cleanup(func() { dropTables(t, db) })
	t0 := time.Now()
	require.NoError(t, loadTables(ctx, db, rows))
	res.load = time.Since(t0)

	m := suite.Migration(store, slug(c))
	_, err := m.Ensure(ctx, "ddlstall")
	require.NoError(t, err)

	plan := c.moves
	if c.statements != nil {
		stmts, err := c.statements(db.Name)
		require.NoError(t, err, "recipe %s", c.recipe)
		plan = [][]string{stmts}
	}
	var overrides [][]lockcheck.Override
	if c.variant == naive {
		for k, mv := range plan {
			_, err := m.Move(ctx, expandcontract.Move{To: phaseOf(k), Actor: "ddlstall", SQL: mv})
			var ue *lockcheck.UnsafeError
			require.ErrorIs(t, err, lockcheck.ErrUnsafe, "lockcheck refuses the naive statement without an override")
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, c.rule, ue.Rule)
			var o []lockcheck.Override
			for i := range mv {
				o = append(o, lockcheck.Override{Statement: i, Rule: c.rule, Why: "ddlstall: measuring the naive statement under load"})
			}
			overrides = append(overrides, o)
		}
	}

	l := startWriters(ctx, db, rows, nw)
	t.Cleanup(func() { _ = l.halt() })
	require.NoError(t, sleep(ctx, warmUp))

	dctx, cancel := context.WithTimeout(ctx, ddlLimit)
	defer cancel()
	from := time.Now()
	var moveErr error
	timed := func(what string, fn func() error) error {
		t0 := time.Now()
		err := fn()
		res.steps = append(res.steps, step{what: what, from: t0.Sub(from), to: time.Since(from)})
		return err
	}
	copyStep := func() error {
		if c.copy == noCopy {
			return nil
		}
		return timed("copy", func() error { return runCopy(dctx, c.copy, l) })
	}
	for k, mv := range plan {
		if k == 1 {
			if moveErr = copyStep(); moveErr != nil {
				break
			}
		}
		m := expandcontract.Move{To: phaseOf(k), Actor: "ddlstall", Reason: string(c.variant), SQL: mv}
		if overrides != nil {
			m.Overrides = overrides[k]
		}
		moveErr = timed("move to "+phaseOf(k).String(), func() error {
			_, err := suite.Migration(store, slug(c)).Move(dctx, m)
			return err
		})
		if moveErr != nil {
			break
		}
	}
	if len(plan) == 1 && moveErr == nil {
		moveErr = copyStep()
	}
	if c.copy == copyUsersNew && moveErr == nil {
		moveErr = l.switchMode(dctx, plain)
	}
	to := time.Now()
	require.NoError(t, l.halt())
	res.dur, res.st, res.quiet = to.Sub(from), l.window(from, to), l.quiet(from)
	res.longestAt = res.st.longestAt.Sub(from)
	res.moved = "yes"
	if moveErr != nil {
		res.moved = "no: " + abbreviate(innermost(moveErr).Error(), 90)
	}

	switch c.variant {
	case withRecipe:
		require.NoError(t, moveErr, "the recipe's moves succeed")
		assert.Zero(t, res.st.failedAll, "no writer operation fails during a recipe: %s", firstErrors(res.st.errs))
	case online:
		require.ErrorContains(t, moveErr, c.refused, "the server refuses the change lockcheck made online")
		st, err := m.State(ctx)
		require.NoError(t, err)
		assert.Equal(t, expandcontract.Expand, st.Phase, "the refused move leaves the phase")
	}
	if c.done != "" && (moveErr == nil || c.variant == online) {
		want := 1
		if c.variant == online {
			want = 0
		}
		var n int
		require.NoError(t, db.GetContext(ctx, &n, c.done))
		assert.Equal(t, want, n, "what the change made, after the moves: %s", abbreviate(c.done, 80))
	}
	checkRows(t, db, c, rows, res.st, moveErr == nil)
	return res
}

// phaseOf is the phase the k-th move of a case goes to: dualwrite, then
// backfill, then back to dualwrite, and so on.
func phaseOf(k int) expandcontract.Phase {
	if k%2 == 0 {
		return expandcontract.DualWrite
	}
	return expandcontract.Backfill
}

// innermost returns the error at the end of err's chain: the database's
// error, for a statement that failed.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// slug is the migration name of c: "stall-", its change in lower case
// with runs of other characters made "-", and its variant.
func slug(c stallCase) string {
	f := strings.FieldsFunc(strings.ToLower(c.change), func(r rune) bool { return (r < 'a' || r > 'z') && (r < '0' || r > '9') })
	return "stall-" + strings.Join(f, "-") + "-" + string(c.variant)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("warming up: %w", context.Cause(ctx))
	}
}

// loadTables creates orgs and users and fills users with ids 1 to rows.
func loadTables(ctx context.Context, db *testdb.DB, rows int64) error {
	ctx, cancel := context.WithTimeout(ctx, loadLimit)
	defer cancel()
	var stmts []string
	if db.Name == "postgres" {
		stmts = []string{
			`CREATE TABLE orgs (id BIGINT PRIMARY KEY)`,
			fmt.Sprintf(`INSERT INTO orgs SELECT g FROM generate_series(1, %d) g`, orgs),
			`CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT, org_id BIGINT, n INT)`,
			fmt.Sprintf(`INSERT INTO users SELECT g, 'user' || g || '@example.com', g %% %d + 1, 0 FROM generate_series(1, %d) g`, orgs, rows),
			`ANALYZE users`,
		}
	} else {
		// MariaDB's sequence engine gives the table seq_A_to_B of the
		// integers A to B; a chunk at a time keeps each transaction small.
		stmts = []string{
			`CREATE TABLE orgs (id BIGINT PRIMARY KEY)`,
			fmt.Sprintf(`INSERT INTO orgs SELECT seq FROM seq_1_to_%d`, orgs),
			`CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(255), org_id BIGINT, n INT) ENGINE=InnoDB`,
		}
		const chunk = 100_000
		for lo := int64(1); lo <= rows; lo += chunk {
			stmts = append(stmts, fmt.Sprintf(`INSERT INTO users SELECT seq, CONCAT('user', seq, '@example.com'), seq %% %d + 1, 0 FROM seq_%d_to_%d`,
				orgs, lo, min(lo+chunk-1, rows)))
		}
		stmts = append(stmts, `ANALYZE TABLE users`)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("load: %s: %w", abbreviate(q, 60), err)
		}
	}
	return nil
}

// dropTables drops every table a case may have left.
func dropTables(t *testing.T, db *testdb.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), dropLimit)
	defer cancel()
	_, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS users, users_old, users_new, orgs`)
	assert.NoError(t, err, "drop the tables")
}

// runCopy runs the batched work of kind with the writers l.
func runCopy(ctx context.Context, kind copyKind, l *writers) error {
	switch kind {
	case backfillNBig:
		if err := l.switchMode(ctx, dualNBig); err != nil {
			return err
		}
		hi := l.next.Load()
		for lo := int64(1); lo <= hi; lo += batchSize {
			if _, err := l.db.ExecContext(ctx, `UPDATE users SET n_big = n WHERE id BETWEEN $1 AND $2`, lo, lo+batchSize-1); err != nil {
				return fmt.Errorf("backfill n_big from id %d: %w", lo, err)
			}
		}
	case copyUsersNew:
		if err := l.switchMode(ctx, dualUsersNew); err != nil {
			return err
		}
		hi := l.next.Load()
		for lo := int64(1); lo <= hi; lo += batchSize {
			if err := copyBatch(ctx, l.db, lo, lo+batchSize-1); err != nil {
				return fmt.Errorf("copy users to users_new from id %d: %w", lo, err)
			}
		}
	}
	return nil
}

// copyBatch copies the rows of users with ids lo to hi into users_new,
// keeping a row the writers wrote there already. It reads without locking
// and then inserts, so that it never holds a lock on users that a writer,
// which holds its row of users while it writes users_new, could wait for.
func copyBatch(ctx context.Context, db *testdb.DB, lo, hi int64) error {
	var rows []struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
		Org   int64  `db:"org_id"`
		N     int64  `db:"n"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT id, email, org_id, n FROM users WHERE id BETWEEN ? AND ?`, lo, hi); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT IGNORE INTO users_new (id, email, org_id, n) VALUES `)
	args := make([]any, 0, 4*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, r.ID, r.Email, r.Org, strconv.FormatInt(r.N, 10))
	}
	_, err := db.ExecContext(ctx, q.String(), args...)
	return err
}

// checkRows checks that no row is lost: users holds the rows loaded and
// every insert that succeeded (and perhaps some that failed, since a
// timed-out insert may have committed), and a recipe's copy agrees with
// its source.
func checkRows(t *testing.T, db *testdb.DB, c stallCase, rows int64, st stats, moved bool) {
	ctx := t.Context()
	var n int64
	require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users`))
	assert.GreaterOrEqual(t, n, rows+st.inserted, "rows loaded plus rows inserted")
	assert.LessOrEqual(t, n, rows+st.inserted+st.failedInserts, "rows loaded plus rows inserted")
	if !moved {
		return
	}
	switch c.copy {
	case backfillNBig:
		require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users WHERE n_big IS DISTINCT FROM n`))
		assert.Zero(t, n, "rows whose n_big differs from n after the backfill")
	case copyUsersNew:
		require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users_old o LEFT JOIN users u ON u.id = o.id WHERE u.id IS NULL`))
		assert.Zero(t, n, "rows of the old table missing from the new one")
		require.NoError(t, db.GetContext(ctx, &n, `SELECT COUNT(*) FROM users_old o JOIN users u ON u.id = o.id WHERE CAST(u.n AS SIGNED) < o.n`))
		assert.Zero(t, n, "rows of the new table older than the old one's")
	}
}

// table formats results as the test prints it, with notes below.
func table(results []result) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "database\tchange\tvariant\tload\tstatements\tlongest write\tp99 write\twarm-up p99\twriter ops\tfailed\tmoved")
	var notes []string
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%v\t%v\t%v\t%v\t%d\t%d\t%s\n", r.c.db, r.c.change, r.c.variant,
			round(r.load), round(r.dur), round(r.st.longest), round(r.st.p99), round(r.quiet), r.st.ops, r.st.failedAll, r.moved)
		name := r.c.db + " " + r.c.change + " " + string(r.c.variant)
		if len(r.steps) > 1 {
			var ss []string
			for _, s := range r.steps {
				ss = append(ss, fmt.Sprintf("%s %v-%v", s.what, round(s.from), round(s.to)))
			}
			notes = append(notes, fmt.Sprintf("%s: %s; the longest write started at %v", name, strings.Join(ss, ", "), round(r.longestAt)))
		}
		if r.st.retried > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d dual writes found users_new renamed and wrote users alone", name, r.st.retried))
		}
		if len(r.st.errs) > 0 {
			notes = append(notes, name+": writer errors: "+firstErrors(r.st.errs))
		}
	}
	_ = w.Flush()
	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}
	return b.String()
}

// round rounds d for the table.
func round(d time.Duration) time.Duration {
	switch a := d.Abs(); {
	case a >= time.Second:
		return d.Round(10 * time.Millisecond)
	case a >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// abbreviate returns s with runs of white space made single spaces, cut
// to n characters.
func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}
