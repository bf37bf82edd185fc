package verify_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// collatedKeys are text keys that sort differently in every collation the
// tests use: case (uppercase first in byte order, mixed in the others),
// accents (after every ASCII letter in byte order, next to the plain
// letter in the others), punctuation (ignored or weighed differently by
// the linguistic collations), a tab after a prefix (which MariaDB's PAD
// SPACE collations sort before the prefix alone) and a trailing space. No
// two of them are equal in any of those collations, so each is a unique
// key in every table: MariaDB's case- and accent-insensitive
// utf8mb4_general_ci would refuse "e" next to "É", and its PAD SPACE
// collations "pad" next to "pad " (see TestVerifyTrailingSpaceKeys).
var collatedKeys = []string{
	"apple", "Banana", "cherry", "\u00c9clair", "date", "_under", "-dash", "Zebra", "zulu",
	"a-b", "a_c", "a.d", "\u00c4\u00d6\u00dc x", "na\u00efve", "\u00d8rsted", "stra\u00dfe",
	"tab", "tab\tx", "pad ", "!bang", "~tilde", "123", "\U0001F600 grin",
}

// collatedTable is a table whose text key column id has a collation of
// its own.
type collatedTable struct {
	name string // for the subtest
	open func(tb testing.TB) *testdb.DB
	key  func(db *testdb.DB) string // the key column's type
}

var (
	pgC = collatedTable{"postgres C", testdb.Postgres,
		func(*testdb.DB) string { return `TEXT COLLATE "C"` }}
	pgICU = collatedTable{"postgres en-x-icu", testdb.Postgres,
		func(*testdb.DB) string { return `TEXT COLLATE "en-x-icu"` }}
	mariaGeneral = collatedTable{"mariadb utf8mb4_general_ci", testdb.MySQL,
		func(*testdb.DB) string { return `VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci` }}
	mariaBin = collatedTable{"mariadb utf8mb4_bin", testdb.MySQL,
		func(*testdb.DB) string { return `VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin` }}
	sqliteNoCase = collatedTable{"sqlite NOCASE", testdb.SQLite,
		func(*testdb.DB) string { return `TEXT COLLATE NOCASE` }}
	sqliteBinary = collatedTable{"sqlite BINARY", testdb.SQLite,
		func(*testdb.DB) string { return `TEXT` }}
)

// create creates table in a new database of c's kind, with the key
// column id in c's collation and a value column v, holding keys with the
// value "v-" and the key.
func (c collatedTable) create(t *testing.T, table string, keys []string) *testdb.DB {
	t.Helper()
	db := c.open(t)
	exec(t, db, fmt.Sprintf(`CREATE TABLE %s (id %s PRIMARY KEY, v %s)`, table, c.key(db), db.Dialect.TypeText()))
	for _, k := range keys {
		exec(t, db, `INSERT INTO `+table+` (id, v) VALUES (?, ?)`, k, "v-"+k)
	}
	return db
}

// TestVerifyTextKeysAcrossCollations verifies identical rows with text
// keys between tables whose key columns sort in different collations: the
// ranges are cut and compared in byte order on both sides, so that each
// row falls in one range on both sides and the verification is clean,
// with nothing sent for repair, at any chunk size.
func TestVerifyTextKeysAcrossCollations(t *testing.T) {
	for _, pair := range [][2]collatedTable{
		{pgC, mariaGeneral},
		{mariaGeneral, pgC},
		{pgC, pgICU},
		{pgICU, pgC},
		{sqliteNoCase, pgC},
		{pgC, sqliteNoCase},
		{mariaBin, pgICU},
		{sqliteBinary, mariaBin},
		{mariaGeneral, sqliteNoCase},
	} {
		old, new := pair[0], pair[1]
		t.Run(old.name+" to "+new.name, func(t *testing.T) {
			s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
			oldDB := old.create(t, "names", collatedKeys)
			newDB := new.create(t, "names_v2", collatedKeys)
			oldRows := rowsOf(oldDB, "names", expandcontract.TextKeys, "v")
			newRows := rowsOf(newDB, "names_v2", expandcontract.TextKeys, "v")
			for _, chunk := range []int{1, 3, verify.DefaultChunkSize} {
				var log cutover.MemoryRepairLog
				res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), oldRows, newRows,
					verify.WithChunkSize(chunk), verify.WithRepairLog(&log))
				require.NoError(t, err)
				assert.True(t, res.Clean(), "chunk %d: %d differences on identical rows, keys %q", chunk, res.Differences, res.Keys)
				assert.Zero(t, log.Len(), "chunk %d: repairs recorded for identical rows: %v", chunk, repairKeys(t, &log))
				assert.Equal(t, int64(len(collatedKeys)), res.Rows, "chunk %d", chunk)
				assert.Equal(t, int64(len(collatedKeys)), res.NewRows, "chunk %d", chunk)
				assert.Zero(t, res.Drilled, "chunk %d: both sides cut the same ranges", chunk)
			}

			// Real differences are still found, and only they.
			exec(t, newDB, `DELETE FROM names_v2 WHERE id = ?`, "Banana")
			exec(t, newDB, `UPDATE names_v2 SET v = 'stale' WHERE id = ?`, "tab\tx")
			exec(t, newDB, `INSERT INTO names_v2 (id, v) VALUES (?, 'new')`, "\u00e9t\u00e9")
			var log cutover.MemoryRepairLog
			res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), oldRows, newRows,
				verify.WithChunkSize(3), verify.WithRepairLog(&log))
			require.NoError(t, err)
			assert.Equal(t, []string{"Banana", "tab\tx", "\u00e9t\u00e9"}, res.Keys, "in byte order")
			assert.Equal(t, []string{"Banana missing", "tab\tx changed", "\u00e9t\u00e9 extra"}, repairKeys(t, &log))
		})
	}
}

// TestVerifyKeysInByteOrder checks that a row source walks text keys in
// byte order whatever its column's collation: the boundaries of a walk
// with one row a range list every key in the order Go sorts strings.
func TestVerifyKeysInByteOrder(t *testing.T) {
	want := slices.Clone(collatedKeys)
	slices.Sort(want)
	for _, c := range []collatedTable{pgC, pgICU, mariaGeneral, mariaBin, sqliteNoCase, sqliteBinary} {
		t.Run(c.name, func(t *testing.T) {
			db := c.create(t, "names", collatedKeys)
			src := rowsOf(db, "names", expandcontract.TextKeys, "v")
			var got []string
			var after any
			for {
				k, ok, err := src.Boundary(t.Context(), after, 1)
				require.NoError(t, err)
				if !ok {
					break
				}
				got = append(got, k.(string))
				after = k
				require.LessOrEqual(t, len(got), len(want), "the walk does not end")
			}
			assert.Equal(t, want, got)

			var rows []string
			require.NoError(t, src.Rows(t.Context(), expandcontract.KeyRange{From: "Zebra", To: "tab"}, func(r verify.Row) error {
				rows = append(rows, r.Key.(string))
				return nil
			}))
			slices.Sort(rows)
			var inRange []string
			for _, k := range want {
				if k > "Zebra" && k <= "tab" {
					inRange = append(inRange, k)
				}
			}
			assert.Equal(t, inRange, rows, "a range holds the keys between its bounds in byte order")
		})
	}
}

// TestVerifyTrailingSpaceKeys compares keys that differ only in trailing
// spaces. Byte order tells them apart on every database; MariaDB's PAD
// SPACE collations, utf8mb4_bin among them, call them equal, so a unique
// MariaDB column holds only one of them, and the verification names the
// other as missing there.
func TestVerifyTrailingSpaceKeys(t *testing.T) {
	keys := []string{"pad", "pad ", "pad  ", "pad\t"}
	for _, maria := range []collatedTable{mariaBin, mariaGeneral} {
		t.Run(maria.name, func(t *testing.T) {
			s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
			oldDB := pgC.create(t, "names", keys)
			newDB := maria.create(t, "names_v2", nil)
			for _, k := range keys {
				_, err := newDB.ExecContext(t.Context(), `INSERT INTO names_v2 (id, v) VALUES (?, ?)`, k, "v-"+k)
				if k == "pad " || k == "pad  " {
					require.True(t, newDB.Dialect.IsUniqueViolation(err), "MariaDB took %q next to %q: %v", k, "pad", err)
				} else {
					require.NoError(t, err)
				}
			}
			for _, chunk := range []int{1, 3, verify.DefaultChunkSize} {
				var log cutover.MemoryRepairLog
				res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), rowsOf(oldDB, "names", expandcontract.TextKeys, "v"),
					rowsOf(newDB, "names_v2", expandcontract.TextKeys, "v"), verify.WithChunkSize(chunk), verify.WithRepairLog(&log))
				require.NoError(t, err)
				assert.Equal(t, []string{"pad ", "pad  "}, res.Keys, "chunk %d", chunk)
				assert.Equal(t, []string{"pad   missing", "pad  missing"}, repairKeys(t, &log), "chunk %d", chunk)
			}
		})
	}
}
