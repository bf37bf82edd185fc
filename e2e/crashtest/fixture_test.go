package crashtest

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/e2e/internal/suite"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// The migration copies customers.customer_phone (old) to
// customers.phone_number (new); customers.copies counts the batches that
// wrote each row.
const (
	migration = "phones"
	numRows   = 240
	batchSize = 20
)

var keyset = backfill.Keyset{Table: "customers", Column: "id", Kind: expandcontract.IntKeys}

// copySQL is the batch as an [backfill.SQLBatch].
const copySQL = `UPDATE customers SET phone_number = customer_phone, copies = copies + 1 WHERE id > :from AND id <= :to`

// copyRange is the batch written in Go: the first range has no From.
func copyRange(ctx context.Context, tx *sqlx.Tx, r expandcontract.KeyRange) (int64, error) {
	q, args := `UPDATE customers SET phone_number = customer_phone, copies = copies + 1 WHERE id <= ?`, []any{r.To}
	if r.From != nil {
		q += ` AND id > ?`
		args = append(args, r.From)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// createCustomers creates and fills the customers table, and returns its
// keys in order: numRows keys with gaps, some negative, inserted out of
// order.
func createCustomers(t *testing.T, db *testdb.DB) []int64 {
	t.Helper()
	d := db.Dialect
	_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id `+d.TypeBigInt()+` PRIMARY KEY,
		customer_phone `+d.TypeKeyText()+` NOT NULL, phone_number `+d.TypeKeyText()+`,
		copies `+d.TypeBigInt()+` NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	ids := make([]int64, numRows)
	for i := range ids {
		ids[i] = int64(i*37%numRows*3 - 100) // 37 is prime to numRows
	}
	for chunk := range slices.Chunk(ids, 60) {
		q := `INSERT INTO customers (id, customer_phone) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ")
		var args []any
		for _, id := range chunk {
			args = append(args, id, fmt.Sprintf("+1-555-%04d", id+100))
		}
		_, err := db.ExecContext(t.Context(), d.Rebind(q), args...)
		require.NoError(t, err)
	}
	return slices.Sorted(slices.Values(ids))
}

// openStore opens a store on db, logging nowhere.
func openStore(t *testing.T, db *sqlx.DB, opts ...expandcontract.Option) *expandcontract.Store {
	t.Helper()
	s, err := expandcontract.Open(t.Context(), db,
		append([]expandcontract.Option{expandcontract.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	require.NoError(t, err)
	return s
}

// toBackfill creates the migration and moves it to the backfill phase.
func toBackfill(t *testing.T, s *expandcontract.Store) {
	t.Helper()
	_, err := suite.Migration(s, migration).Ensure(t.Context(), "test")
	require.NoError(t, err)
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		_, err := suite.Migration(s, migration).Move(t.Context(), expandcontract.Move{To: p, Actor: "test", Reason: "set up"})
		require.NoError(t, err)
	}
}

func get(t *testing.T, s *expandcontract.Store) expandcontract.State {
	t.Helper()
	m, err := suite.Migration(s, migration).State(t.Context())
	require.NoError(t, err)
	return m
}

// checkCopies fails the test unless each row of customers was copied
// want(id) times, 0 or 1, with the new column as the copy says: the old
// value after a copy, NULL without one.
func checkCopies(t *testing.T, db *testdb.DB, want func(id int64) int64) {
	t.Helper()
	var rows []struct {
		ID     int64          `db:"id"`
		Phone  string         `db:"customer_phone"`
		Copy   sql.NullString `db:"phone_number"`
		Copies int64          `db:"copies"`
	}
	require.NoError(t, db.SelectContext(t.Context(), &rows, `SELECT id, customer_phone, phone_number, copies FROM customers ORDER BY id`))
	require.Len(t, rows, numRows)
	bad := 0
	for _, r := range rows {
		w := want(r.ID)
		ok := r.Copies == w && (w == 0 && !r.Copy.Valid || w == 1 && r.Copy.Valid && r.Copy.String == r.Phone)
		if !ok {
			if bad++; bad <= 10 {
				t.Errorf("row %d: copied %d times, want %d (phone_number %v)", r.ID, r.Copies, w, r.Copy)
			}
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more rows", bad-10)
	}
}

func once(int64) int64 { return 1 }

// verifyColumns compares the old column with the new one with s.Verify, keeping
// the differing keys out of the store's repair log.
func verifyColumns(t *testing.T, s *expandcontract.Store, db *testdb.DB) verify.Result {
	t.Helper()
	side := func(col string) *verify.SQLRows {
		return &verify.SQLRows{DB: db.DB, Table: "customers", Key: "id", Kind: expandcontract.IntKeys, Value: col}
	}
	var repairs cutover.MemoryRepairLog
	res, err := suite.Verify(t.Context(), suite.Migration(s, migration), side("customer_phone"), side("phone_number"),
		verify.WithChunkSize(50), verify.WithMaxReportedKeys(numRows), verify.WithRepairLog(&repairs))
	require.NoError(t, err)
	require.EqualValues(t, res.Differences, repairs.Len(), "every differing key is sent for repair")
	return res
}

// requireClean fails the test unless res found every row equal.
func requireClean(t *testing.T, res verify.Result) {
	t.Helper()
	require.True(t, res.Clean(), "verification: %d differences, keys %v", res.Differences, res.Keys)
	require.EqualValues(t, numRows, res.Rows)
	require.EqualValues(t, numRows, res.NewRows)
}

// backfillRun is what the history says about one run of the backfill.
type backfillRun struct {
	Owner        string
	At           time.Time
	Checkpoint   string // where the run started
	Rows         int64  // rows copied before it
	TookOverFrom string // the owner of the expired lease it took over, if any
	RanOut       time.Time
}

var (
	startRE    = regexp.MustCompile(`^start at checkpoint "([^"]*)" with (\d+) rows copied(?:; took over the lease of "([^"]*)", which ran out at (\S+))?$`)
	finishedRE = regexp.MustCompile(`^done at checkpoint "([^"]*)" with (\d+) rows copied$`)
)

// history returns the backfill's runs and the owners that recorded it done,
// from the migration's history, and fails the test on a backfill event it
// does not know.
func history(t *testing.T, s *expandcontract.Store) (starts []backfillRun, done []string) {
	t.Helper()
	evs, err := suite.Migration(s, migration).Events(t.Context())
	require.NoError(t, err)
	for _, e := range evs {
		if e.Kind != "backfill" {
			continue
		}
		if m := startRE.FindStringSubmatch(e.Detail); m != nil {
			r := backfillRun{Owner: e.Actor, At: e.At, Checkpoint: m[1], TookOverFrom: m[3]}
			fmt.Sscan(m[2], &r.Rows)
			if m[4] != "" {
				r.RanOut, err = time.Parse(time.RFC3339Nano, m[4])
				require.NoError(t, err)
			}
			starts = append(starts, r)
			continue
		}
		if m := finishedRE.FindStringSubmatch(e.Detail); m != nil {
			require.Equal(t, fmt.Sprint(numRows), m[2], "rows copied when done: %s", e.Detail)
			done = append(done, e.Actor)
			continue
		}
		t.Fatalf("unexpected backfill event by %s: %q", e.Actor, e.Detail)
	}
	return starts, done
}

// rowLocked reports whether another transaction holds a write lock that
// covers the row id: the row's lock on PostgreSQL and MariaDB, the
// database's write lock on SQLite. It does not wait for the lock.
func rowLocked(t *testing.T, db *testdb.DB, id int64) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var err error
	if db.Name == "sqlite" {
		err = sqliteTryWrite(ctx, db, id)
	} else {
		tx, berr := db.BeginTxx(ctx, nil)
		require.NoError(t, berr)
		var got int64
		err = tx.GetContext(ctx, &got, db.Rebind(`SELECT id FROM customers WHERE id = ? FOR UPDATE NOWAIT`), id)
		_ = tx.Rollback()
	}
	switch {
	case err == nil:
		return false
	case db.Dialect.IsLockTimeout(err):
		return true
	}
	t.Fatalf("probe the lock on row %d: %v", id, err)
	return false
}

// sqliteTryWrite writes to row id without waiting for the database's
// write lock, on a connection pool of its own so that no connection of
// the test's pool keeps the changed busy timeout.
func sqliteTryWrite(ctx context.Context, db *testdb.DB, id int64) error {
	pool, err := sqlx.Open(db.DriverName(), db.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	conn, err := pool.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		return err
	}
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `UPDATE customers SET copies = copies WHERE id = ?`, id)
	return err
}

// offsetClock is the real clock moved forward by a settable offset.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// jumpPast moves the clock forward to just after t.
func (c *offsetClock) jumpPast(t time.Time) {
	if d := int64(time.Until(t) + time.Millisecond); d > c.off.Load() {
		c.off.Store(d)
	}
}
