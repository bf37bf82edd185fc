package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// verifyStore opens a store on db with a migration "m" in the backfill
// phase.
func verifyStore(t *testing.T, db *testdb.DB, c *ectest.Clock) *expandcontract.Store {
	t.Helper()
	s, err := expandcontract.Open(t.Context(), db.DB, expandcontract.WithClock(c.Now),
		expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	_, err = ectest.Migration(t, s, "m").Ensure(t.Context(), "test")
	require.NoError(t, err)
	for _, p := range []expandcontract.Phase{expandcontract.DualWrite, expandcontract.Backfill} {
		_, err := ectest.Migration(t, s, "m").Move(t.Context(), expandcontract.Move{To: p, Actor: "test"})
		require.NoError(t, err)
	}
	return s
}

// createTable creates table with a key column id of the kind, and the
// value columns v and v2.
func createTable(t testing.TB, db *testdb.DB, table string, kind expandcontract.KeyKind) {
	t.Helper()
	key := db.Dialect.TypeBigInt()
	if kind == expandcontract.TextKeys {
		key = db.Dialect.TypeKeyText()
	}
	_, err := db.ExecContext(context.Background(), fmt.Sprintf(`CREATE TABLE %s (id %s PRIMARY KEY, v %s, v2 %s)`,
		table, key, db.Dialect.TypeText(), db.Dialect.TypeText()))
	require.NoError(t, err)
}

// fillTable inserts n rows into table in one statement: keys 2, 4, ...,
// 2n (as "k0000002" and so on for text keys), v = v2 = "value-" and the
// key.
func fillTable(t testing.TB, db *testdb.DB, table string, kind expandcontract.KeyKind, n int) {
	t.Helper()
	var q string
	text := kind == expandcontract.TextKeys
	switch db.Name {
	case "sqlite":
		k := "i*2"
		if text {
			k = "printf('k%07d', i*2)"
		}
		q = fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d)
			INSERT INTO %s (id, v, v2) SELECT %s, 'value-' || (%[3]s), 'value-' || (%[3]s) FROM s`, n, table, k)
	case "postgres":
		k := "i*2"
		if text {
			k = "'k' || lpad((i*2)::text, 7, '0')"
		}
		q = fmt.Sprintf(`INSERT INTO %s (id, v, v2) SELECT %s, 'value-' || (%[2]s), 'value-' || (%[2]s)
			FROM generate_series(1, %d) AS g(i)`, table, k, n)
	case "mysql":
		k := "seq*2"
		if text {
			k = "CONCAT('k', LPAD(seq*2, 7, '0'))"
		}
		q = fmt.Sprintf(`INSERT INTO %s (id, v, v2) SELECT %s, CONCAT('value-', %[2]s), CONCAT('value-', %[2]s)
			FROM seq_1_to_%d`, table, k, n)
	default:
		t.Fatalf("unknown database %q", db.Name)
	}
	_, err := db.ExecContext(context.Background(), q)
	require.NoError(t, err)
}

// exec runs a statement written with '?' placeholders.
func exec(t *testing.T, db *testdb.DB, q string, args ...any) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), db.Dialect.Rebind(q), args...)
	require.NoError(t, err)
}

func rowsOf(db *testdb.DB, table string, kind expandcontract.KeyKind, value string) *verify.SQLRows {
	return &verify.SQLRows{DB: db.DB, Table: table, Key: "id", Kind: kind, Value: value}
}

// repairKeys returns the keys in the repair log, each with its error, sorted.
func repairKeys(t *testing.T, l *cutover.MemoryRepairLog) []string {
	t.Helper()
	var out []string
	for _, r := range l.Entries() {
		assert.Equal(t, verify.Op, r.Op)
		assert.Equal(t, cutover.New, r.Target)
		assert.Equal(t, cutover.Unverified, r.Reason)
		assert.False(t, r.Time.IsZero())
		out = append(out, r.Key+" "+kindName(r.Err))
	}
	slices.Sort(out)
	return out
}

func kindName(err error) string {
	switch {
	case errors.Is(err, verify.ErrMissingInNew):
		return "missing"
	case errors.Is(err, verify.ErrExtraInNew):
		return "extra"
	case errors.Is(err, verify.ErrValueDiffers):
		return "changed"
	}
	return fmt.Sprintf("unexpected error %v", err)
}

const manyRows = 100_000

func TestVerifyFindsOneChangedRowAmong100000(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		createTable(t, db, "old_t", expandcontract.IntKeys)
		createTable(t, db, "new_t", expandcontract.IntKeys)
		fillTable(t, db, "old_t", expandcontract.IntKeys, manyRows)
		exec(t, db, `INSERT INTO new_t SELECT * FROM old_t`)
		old, new := rowsOf(db, "old_t", expandcontract.IntKeys, "v"), rowsOf(db, "new_t", expandcontract.IntKeys, "v")

		res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
		require.NoError(t, err)
		assert.True(t, res.Clean())
		assert.Equal(t, int64(manyRows), res.Rows)
		assert.Equal(t, int64(manyRows), res.NewRows)
		assert.Equal(t, int64(manyRows/verify.DefaultChunkSize+1), res.Chunks, "full ranges and the open end")
		assert.Zero(t, res.Drilled, "equal ranges are not read row by row")

		// One character of one value, in the middle of a range.
		exec(t, db, `UPDATE new_t SET v = ? WHERE id = ?`, "value-12345X", 123456)
		var log cutover.MemoryRepairLog
		res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithRepairLog(&log))
		require.NoError(t, err)
		if res.Differences != 1 || !slices.Equal(res.Keys, []string{"123456"}) {
			t.Fatalf("a verification missed a single changed row among 100,000: found %d differences, keys %v",
				res.Differences, res.Keys)
		}
		assert.Equal(t, int64(1), res.Changed)
		assert.Equal(t, int64(1), res.Drilled, "only the range holding the change is read row by row")
		assert.Equal(t, []string{"123456 changed"}, repairKeys(t, &log))

		m, err := ectest.Migration(t, s, "m").State(t.Context())
		require.NoError(t, err)
		assert.False(t, m.Verification.Clean)
		assert.Equal(t, int64(1), m.Verification.Differences)
		assert.Equal(t, int64(manyRows), m.Verification.Rows)
		assert.Contains(t, m.Verification.Detail, `keys: "123456"`)
	})
}

func TestVerifyFindsEveryKindOfDifference(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		s := verifyStore(t, db, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
		createTable(t, db, "old_t", expandcontract.IntKeys)
		createTable(t, db, "new_t", expandcontract.IntKeys)
		fillTable(t, db, "old_t", expandcontract.IntKeys, manyRows)
		exec(t, db, `UPDATE old_t SET v = '' WHERE id = 4000`)
		exec(t, db, `INSERT INTO new_t SELECT * FROM old_t`)

		exec(t, db, `UPDATE new_t SET v = 'value-99999' WHERE id = 99998`) // changed
		exec(t, db, `DELETE FROM new_t WHERE id = 150000`)                 // missing in new
		exec(t, db, `INSERT INTO new_t (id, v) VALUES (77777, 'odd')`)     // extra, inside a range
		exec(t, db, `INSERT INTO new_t (id, v) VALUES (0, 'first')`)       // extra, before the first key
		exec(t, db, `INSERT INTO new_t (id, v) VALUES (900000, 'late')`)   // extra, past the old side's end
		exec(t, db, `UPDATE new_t SET v = NULL WHERE id = 4000`)           // '' against NULL
		exec(t, db, `UPDATE new_t SET v = NULL WHERE id = 200000`)         // the last key

		res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), rowsOf(db, "old_t", expandcontract.IntKeys, "v"),
			rowsOf(db, "new_t", expandcontract.IntKeys, "v"), verify.WithChunkSize(1000))
		require.NoError(t, err)
		assert.Equal(t, []string{"0", "4000", "77777", "99998", "150000", "200000", "900000"}, res.Keys)
		assert.Equal(t, int64(7), res.Differences)
		assert.Equal(t, int64(1), res.Missing)
		assert.Equal(t, int64(3), res.Extra)
		assert.Equal(t, int64(3), res.Changed)
		assert.Equal(t, int64(manyRows), res.Rows)
		assert.Equal(t, int64(manyRows+2), res.NewRows)

		// The keys are in the migration's repair log in the store.
		log, err := repair.NewLog(ectest.Migration(t, s, "m"))
		require.NoError(t, err)
		entries, err := log.Entries(t.Context(), repair.Query{})
		require.NoError(t, err)
		var got []string
		for _, e := range entries {
			r := e.Repair
			assert.Equal(t, verify.Op, r.Op)
			assert.Equal(t, cutover.New, r.Target)
			assert.Equal(t, cutover.Unverified, r.Reason)
			assert.Equal(t, cutover.DualWrite, r.Stage, "the lowest stage of the backfill phase")
			got = append(got, r.Key+" "+r.Err.Error())
		}
		slices.Sort(got)
		assert.Equal(t, []string{
			"0 " + verify.ErrExtraInNew.Error(),
			"150000 " + verify.ErrMissingInNew.Error(),
			"200000 " + verify.ErrValueDiffers.Error(),
			"4000 " + verify.ErrValueDiffers.Error(),
			"77777 " + verify.ErrExtraInNew.Error(),
			"900000 " + verify.ErrExtraInNew.Error(),
			"99998 " + verify.ErrValueDiffers.Error(),
		}, got)
	})
}

func TestVerifyTwoColumnsOfOneTable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		createTable(t, db, "customers", expandcontract.TextKeys)
		fillTable(t, db, "customers", expandcontract.TextKeys, 5000)
		old, new := rowsOf(db, "customers", expandcontract.TextKeys, "v"), rowsOf(db, "customers", expandcontract.TextKeys, "v2")

		res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(300))
		require.NoError(t, err)
		assert.True(t, res.Clean())
		assert.Equal(t, int64(5000), res.Rows)
		assert.Equal(t, int64(5000/300+1), res.Chunks)

		exec(t, db, `UPDATE customers SET v2 = NULL WHERE id IN ('k0000010', 'k0009000')`)
		exec(t, db, `UPDATE customers SET v2 = 'VALUE-1234' WHERE id = 'k0001234'`)
		var log cutover.MemoryRepairLog
		res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(300), verify.WithRepairLog(&log))
		require.NoError(t, err)
		assert.Equal(t, []string{"k0000010", "k0001234", "k0009000"}, res.Keys)
		assert.Equal(t, int64(3), res.Changed)
		assert.Equal(t, []string{"k0000010 changed", "k0001234 changed", "k0009000 changed"}, repairKeys(t, &log))

		// A column expression on the old side: the old data in two columns.
		exec(t, db, `UPDATE customers SET v = NULL`)
		exec(t, db, `UPDATE customers SET v2 = NULL`)
		concat := "COALESCE(v, 'a') || '|' || id"
		if db.Name == "mysql" {
			concat = "CONCAT(COALESCE(v, 'a'), '|', id)"
		}
		exec(t, db, `UPDATE customers SET v2 = `+concat)
		res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), rowsOf(db, "customers", expandcontract.TextKeys, concat), new)
		require.NoError(t, err)
		assert.True(t, res.Clean(), "keys %v", res.Keys)
	})
}

// tricky rows hold keys and values that each database must encode alike.
var trickyRows = []struct {
	id string
	v  *string
}{
	{"a", ptr("")},
	{"a:b", ptr("=")},
	{"b", nil},
	{"b!", ptr("!")},
	{"ca\u0301fe\u0301", ptr("\u65e5\u672c\u8a9e")},
	{"caf\u00e9", ptr("caf\u00e9")},
	{"d", ptr("1:2=3!")},
	{"emoji\U0001F600", ptr("\U0001F600 x")},
	{"z", ptr("  spaced  ")},
}

func ptr(s string) *string { return &s }

func TestVerifyTwoDatabases(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		oldDB := testdb.SQLite(t)
		s := verifyStore(t, db, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))

		t.Run("int keys", func(t *testing.T) {
			createTable(t, oldDB, "users", expandcontract.IntKeys)
			createTable(t, db, "users_v2", expandcontract.IntKeys)
			fillTable(t, oldDB, "users", expandcontract.IntKeys, 20_000)
			fillTable(t, db, "users_v2", expandcontract.IntKeys, 20_000)
			old, new := rowsOf(oldDB, "users", expandcontract.IntKeys, "v"), rowsOf(db, "users_v2", expandcontract.IntKeys, "v")
			res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
			require.NoError(t, err)
			assert.True(t, res.Clean())
			assert.Equal(t, verify.DigestMD5, res.Digest)
			assert.Zero(t, res.Drilled, "both databases compute the same checksums")

			exec(t, db, `UPDATE users_v2 SET v = 'x' WHERE id = 30000`)
			exec(t, oldDB, `DELETE FROM users WHERE id = 2`)
			res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
			require.NoError(t, err)
			assert.Equal(t, []string{"2", "30000"}, res.Keys)
			assert.Equal(t, int64(1), res.Extra)
			assert.Equal(t, int64(1), res.Changed)
		})

		t.Run("text keys", func(t *testing.T) {
			createTable(t, oldDB, "names", expandcontract.TextKeys)
			createTable(t, db, "names_v2", expandcontract.TextKeys)
			for _, r := range trickyRows {
				exec(t, oldDB, `INSERT INTO names (id, v) VALUES (?, ?)`, r.id, r.v)
				exec(t, db, `INSERT INTO names_v2 (id, v) VALUES (?, ?)`, r.id, r.v)
			}
			old, new := rowsOf(oldDB, "names", expandcontract.TextKeys, "v"), rowsOf(db, "names_v2", expandcontract.TextKeys, "v")
			for _, chunk := range []int{1, 2, 1000} {
				res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(chunk))
				require.NoError(t, err)
				assert.True(t, res.Clean(), "chunk %d: keys %v", chunk, res.Keys)
				assert.Zero(t, res.Drilled, "chunk %d: both databases compute the same checksums", chunk)
				assert.Equal(t, int64(len(trickyRows)), res.Rows)
			}

			exec(t, db, `UPDATE names_v2 SET v = NULL WHERE id = 'a'`)
			exec(t, db, `UPDATE names_v2 SET v = '' WHERE id = 'b'`)
			exec(t, db, `UPDATE names_v2 SET v = 'cafe' WHERE id = ?`, "caf\u00e9")
			res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(2))
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b", "caf\u00e9"}, res.Keys)
		})
	})
}

func TestVerifyCleanLetsReadsSwitch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		createTable(t, db, "old_t", expandcontract.IntKeys)
		createTable(t, db, "new_t", expandcontract.IntKeys)
		fillTable(t, db, "old_t", expandcontract.IntKeys, 3000)
		exec(t, db, `INSERT INTO new_t SELECT * FROM old_t`)
		exec(t, db, `UPDATE new_t SET v = 'stale' WHERE id = 10`)
		old, new := rowsOf(db, "old_t", expandcontract.IntKeys, "v"), rowsOf(db, "new_t", expandcontract.IntKeys, "v")
		switchReads := func() error {
			_, err := ectest.Migration(t, s, "m").Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test"})
			return err
		}

		// A verification before the backfill's end does not count.
		_, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
		require.NoError(t, err)
		c.Advance(time.Second)
		require.NoError(t, backfill.MarkDone(t.Context(), ectest.Migration(t, s, "m"), "test", ""))
		require.ErrorIs(t, switchReads(), expandcontract.ErrGuard)

		res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
		require.NoError(t, err)
		assert.Equal(t, []string{"10"}, res.Keys)
		err = switchReads()
		require.ErrorIs(t, err, expandcontract.ErrGuard)
		assert.ErrorContains(t, err, "found 1 differing keys")

		exec(t, db, `UPDATE new_t SET v = 'value-10' WHERE id = 10`)
		res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new)
		require.NoError(t, err)
		require.True(t, res.Clean())
		assert.Equal(t, c.Now(), res.Started)
		m, err := ectest.Migration(t, s, "m").State(t.Context())
		require.NoError(t, err)
		assert.True(t, m.Verification.Clean)
		assert.Equal(t, int64(3000), m.Verification.Rows)
		assert.Equal(t, c.Now(), m.Verification.At)
		require.NoError(t, switchReads())

		events, err := ectest.Migration(t, s, "m").Events(t.Context())
		require.NoError(t, err)
		var verifies int
		for _, e := range events {
			if e.Kind == "verify" {
				verifies++
			}
		}
		assert.Equal(t, 3, verifies, "each verification is in the history")
	})
}

func TestVerifyRejectsBadInput(t *testing.T) {
	db := testdb.SQLite(t)
	s := verifyStore(t, db, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	createTable(t, db, "t", expandcontract.IntKeys)
	good := rowsOf(db, "t", expandcontract.IntKeys, "v")
	bad := func(mutate func(r *verify.SQLRows)) *verify.SQLRows {
		r := *good
		mutate(&r)
		return &r
	}
	var nilRows *verify.SQLRows
	for _, tc := range []struct {
		name     string
		old, new verify.RowSource
		opts     []verify.Option
		want     string
	}{
		{"nil old", nil, good, nil, "nil old row source"},
		{"nil new", good, nil, nil, "nil new row source"},
		{"nil pointer", good, nilRows, nil, "nil new row source"},
		{"injected table", bad(func(r *verify.SQLRows) { r.Table = "t; DROP TABLE x" }), good, nil, `"t; DROP TABLE x"`},
		{"quoted key", good, bad(func(r *verify.SQLRows) { r.Key = `id"` }), nil, "key column"},
		{"dotted key", good, bad(func(r *verify.SQLRows) { r.Key = "t.id" }), nil, "key column"},
		{"no table", bad(func(r *verify.SQLRows) { r.Table = "" }), good, nil, "table"},
		{"no value", good, bad(func(r *verify.SQLRows) { r.Value = " " }), nil, "empty Value"},
		{"no database", bad(func(r *verify.SQLRows) { r.DB = nil }), good, nil, "nil DB"},
		{"key kind", good, bad(func(r *verify.SQLRows) { r.Kind = 7 }), nil, "key kind"},
		{"zero chunk", good, good, []verify.Option{verify.WithChunkSize(0)}, "chunk size"},
		{"negative chunk", good, good, []verify.Option{verify.WithChunkSize(-5)}, "chunk size"},
		{"negative cap", good, good, []verify.Option{verify.WithMaxReportedKeys(-1)}, "max reported keys"},
		{"no concurrency", good, good, []verify.Option{verify.WithConcurrency(0)}, "concurrency"},
		{"negative recheck", good, good, []verify.Option{verify.WithRecheck(-time.Second)}, "recheck"},
		{"nil repair log", good, good, []verify.Option{verify.WithRepairLog(nil)}, "nil repair log"},
		{"zero progress interval", good, good, []verify.Option{verify.WithProgressInterval(0)}, "progress interval"},
		{"long progress interval", good, good, []verify.Option{verify.WithProgressInterval(time.Minute)}, "at most 20s, got 1m0s"},
		{"empty owner", good, good, []verify.Option{verify.WithOwner("")}, `owner "" must be 1 to 255 bytes`},
		{"owner with a newline", good, good, []verify.Option{verify.WithOwner("a\nb")}, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), tc.old, tc.new, tc.opts...)
			require.ErrorIs(t, err, verify.ErrInvalidInput)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "nope"), good, good)
	assert.ErrorIs(t, err, expandcontract.ErrNotFound)
	_, err = verify.New(nil, good, good)
	assert.ErrorIs(t, err, verify.ErrInvalidInput, "a nil migration")
	_, err = verify.New(ectest.Migration(t, s, "m"), good, good, nil)
	assert.ErrorIs(t, err, verify.ErrInvalidInput, "a nil option")

	var n int
	require.NoError(t, db.GetContext(t.Context(), &n, `SELECT COUNT(*) FROM t`), "the table is still there")
	m, err := ectest.Migration(t, s, "m").State(t.Context())
	require.NoError(t, err)
	assert.True(t, m.Verification.At.IsZero(), "no verification was stored")
}

// failingLog is a repair log that refuses every record.
type failingLog struct{}

func (failingLog) Record(context.Context, cutover.Repair) error { return errors.New("log is down") }

func TestVerifyFailsWhenKeysCannotBeRecorded(t *testing.T) {
	db := testdb.SQLite(t)
	s := verifyStore(t, db, ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	createTable(t, db, "old_t", expandcontract.IntKeys)
	createTable(t, db, "new_t", expandcontract.IntKeys)
	fillTable(t, db, "old_t", expandcontract.IntKeys, 10)
	_, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), rowsOf(db, "old_t", expandcontract.IntKeys, "v"),
		rowsOf(db, "new_t", expandcontract.IntKeys, "v"), verify.WithRepairLog(failingLog{}))
	require.Error(t, err)
	assert.ErrorContains(t, err, "log is down")
	m, err := ectest.Migration(t, s, "m").State(t.Context())
	require.NoError(t, err)
	assert.True(t, m.Verification.At.IsZero(), "a failed verification is not stored")
}

// memRows is a RowSource over a map, computing its checksums in Go as any
// store without SQL would.
type memRows struct {
	mu     sync.Mutex
	rows   map[int64]*string
	onRead func() // called before each Rows
	reads  atomic.Int64
}

func newMemRows(n int) *memRows {
	m := &memRows{rows: map[int64]*string{}}
	for i := range n {
		m.rows[int64(i)] = ptr("v" + strconv.Itoa(i))
	}
	return m
}

func (m *memRows) clone() *memRows {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memRows{rows: maps.Clone(m.rows)}
}

func (m *memRows) Digests() []verify.Digest {
	return []verify.Digest{verify.DigestMD5}
}

func (m *memRows) sorted(r expandcontract.KeyRange) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []int64
	for k := range m.rows {
		if (r.From == nil || k > r.From.(int64)) && (r.To == nil || k <= r.To.(int64)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func (m *memRows) Boundary(_ context.Context, after any, n int) (any, bool, error) {
	keys := m.sorted(expandcontract.KeyRange{From: after})
	if len(keys) < n {
		return nil, false, nil
	}
	return keys[n-1], true, nil
}

func (m *memRows) row(k int64) verify.Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.rows[k]
	if v == nil {
		return verify.Row{Key: k, Null: true}
	}
	return verify.Row{Key: k, Value: []byte(*v)}
}

func (m *memRows) Checksum(_ context.Context, r expandcontract.KeyRange, d verify.Digest) (verify.Checksum, error) {
	var c verify.Checksum
	for _, k := range m.sorted(r) {
		c.Add(m.row(k))
	}
	return c, nil
}

func (m *memRows) Rows(_ context.Context, r expandcontract.KeyRange, fn func(verify.Row) error) error {
	m.reads.Add(1)
	if m.onRead != nil {
		m.onRead()
	}
	for _, k := range m.sorted(r) {
		if err := fn(m.row(k)); err != nil {
			return err
		}
	}
	return nil
}

func (m *memRows) set(k int64, v *string) {
	m.mu.Lock()
	m.rows[k] = v
	m.mu.Unlock()
}

func (m *memRows) del(k int64) {
	m.mu.Lock()
	delete(m.rows, k)
	m.mu.Unlock()
}

// TestVerifyRandomDifferences checks that every range walk finds exactly
// the differences made, whatever the chunk size and concurrency.
func TestVerifyRandomDifferences(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		n := rng.IntN(300)
		old := newMemRows(n)
		new := old.clone()
		want := map[string]string{}
		for range rng.IntN(12) {
			k := int64(rng.IntN(n + 50))
			_, inOld := old.rows[k]
			_, inNew := new.rows[k]
			switch {
			case inOld && inNew && rng.IntN(2) == 0:
				new.del(k)
				want[strconv.FormatInt(k, 10)] = "missing"
			case inOld && inNew:
				new.set(k, nil)
				want[strconv.FormatInt(k, 10)] = "changed"
			case !inOld && !inNew:
				new.set(k, ptr("new"))
				want[strconv.FormatInt(k, 10)] = "extra"
			}
		}
		chunk := 1 + rng.IntN(40)
		var log cutover.MemoryRepairLog
		res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(chunk),
			verify.WithConcurrency(1+rng.IntN(4)), verify.WithRepairLog(&log))
		require.NoError(t, err)
		got := map[string]string{}
		for _, r := range log.Entries() {
			got[r.Key] = kindName(r.Err)
		}
		require.Equal(t, want, got, "round %d: %d rows, chunk %d", round, n, chunk)
		assert.Equal(t, int64(len(want)), res.Differences)
		assert.Equal(t, int64(n), res.Rows)
		wantKeys := slices.SortedFunc(maps.Keys(want), func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return x - y
		})
		assert.Equal(t, wantKeys, res.Keys, "round %d", round)
	}
}

func TestVerifyCapsReportedKeys(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	old := newMemRows(2000)
	new := old.clone()
	for k := int64(1000); k < 1250; k++ {
		new.set(k, ptr("changed"))
	}
	var log cutover.MemoryRepairLog
	res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(7),
		verify.WithMaxReportedKeys(10), verify.WithConcurrency(4), verify.WithRepairLog(&log))
	require.NoError(t, err)
	assert.Equal(t, int64(250), res.Differences)
	assert.Equal(t, []string{"1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009"}, res.Keys)
	assert.Equal(t, 250, log.Len(), "every key reaches the repair log")
	m, err := ectest.Migration(t, s, "m").State(t.Context())
	require.NoError(t, err)
	assert.Contains(t, m.Verification.Detail, `"1009" and 240 more`)

	res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithMaxReportedKeys(0))
	require.NoError(t, err)
	assert.Empty(t, res.Keys)
	assert.Equal(t, int64(250), res.Differences)
}

func TestVerifyRecheckDropsWritesInFlight(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	old := newMemRows(100)
	new := old.clone()
	new.set(5, ptr("in flight"))
	new.set(50, ptr("stale"))
	// The write in flight reaches the new store before the second read.
	new.onRead = func() {
		if new.reads.Load() == 2 {
			new.set(5, ptr("v5"))
		}
	}
	res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), old, new, verify.WithRecheck(time.Millisecond),
		verify.WithChunkSize(1000))
	require.NoError(t, err)
	assert.Equal(t, []string{"50"}, res.Keys, "only the key that still differs counts")
	assert.Equal(t, int64(2), new.reads.Load(), "the differing range was read twice")
}

func TestVerifyStopsWithContext(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	old := newMemRows(1000)
	ctx, cancel := context.WithCancel(t.Context())
	new := old.clone()
	new.set(3, nil)
	new.onRead = cancel
	_, err := ectest.Verify(ctx, ectest.Migration(t, s, "m"), old, new, verify.WithChunkSize(10))
	require.ErrorIs(t, err, context.Canceled)
	m, err := ectest.Migration(t, s, "m").State(t.Context())
	require.NoError(t, err)
	assert.True(t, m.Verification.At.IsZero(), "a canceled verification is not stored")
}

func TestVerifyEmptySides(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), newMemRows(0), newMemRows(0))
	require.NoError(t, err)
	assert.True(t, res.Clean())
	assert.Equal(t, int64(1), res.Chunks)

	res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), newMemRows(0), newMemRows(3))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "1", "2"}, res.Keys)
	assert.Equal(t, int64(3), res.Extra)

	res, err = ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), newMemRows(3), newMemRows(0), verify.WithChunkSize(1))
	require.NoError(t, err)
	assert.Equal(t, []string{"0", "1", "2"}, res.Keys)
	assert.Equal(t, int64(3), res.Missing)
}

func TestSQLRowsDirectUse(t *testing.T) {
	db := testdb.SQLite(t)
	createTable(t, db, "t", expandcontract.IntKeys)
	fillTable(t, db, "t", expandcontract.IntKeys, 10)
	exec(t, db, `UPDATE t SET v = NULL WHERE id = 4`)
	src := rowsOf(db, "t", expandcontract.IntKeys, "v")
	ctx := t.Context()

	key, ok, err := src.Boundary(ctx, int64(2), 3)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(8), key, "the third key after 2")
	_, ok, err = src.Boundary(ctx, int64(16), 3)
	require.NoError(t, err)
	assert.False(t, ok, "only two keys follow 16")

	var got []string
	err = src.Rows(ctx, expandcontract.KeyRange{From: int64(2), To: int64(6)}, func(r verify.Row) error {
		got = append(got, fmt.Sprintf("%v=%s null=%v", r.Key, r.Value, r.Null))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"4= null=true", "6=value-6 null=false"}, got)

	var want verify.Checksum
	want.Add(verify.Row{Key: int64(4), Null: true})
	want.Add(verify.Row{Key: int64(6), Value: []byte("value-6")})
	c, err := src.Checksum(ctx, expandcontract.KeyRange{From: int64(2), To: int64(6)}, verify.DigestMD5)
	require.NoError(t, err)
	assert.Equal(t, want, c)
	assert.Equal(t, int64(2), c.Rows)

	_, err = src.Checksum(ctx, expandcontract.KeyRange{From: "2"}, verify.DigestMD5)
	assert.ErrorIs(t, err, verify.ErrInvalidInput, "a text key for int keys")
	_, err = src.Checksum(ctx, expandcontract.KeyRange{}, verify.DigestPostgres)
	assert.ErrorIs(t, err, verify.ErrInvalidInput, "SQLite does not compute the PostgreSQL digest")
	assert.ErrorIs(t, src.Rows(ctx, expandcontract.KeyRange{}, nil), verify.ErrInvalidInput)
	stop := errors.New("stop")
	assert.ErrorIs(t, src.Rows(ctx, expandcontract.KeyRange{}, func(verify.Row) error { return stop }), stop)
	assert.Equal(t, []verify.Digest{verify.DigestMD5}, src.Digests())
	assert.Equal(t, "md5", verify.DigestMD5.String())
	assert.Equal(t, "text", expandcontract.TextKeys.String())
}
