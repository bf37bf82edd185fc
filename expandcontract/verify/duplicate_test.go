package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/verify"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestVerifyFailsOnDuplicateKeys compares tables whose key column is not
// unique: a key in two rows of a side fails the verification with
// ErrDuplicateKey, naming the key and the side, whether or not the other
// side holds the same rows, and the failed verification keeps reads from
// switching even after an older clean one.
func TestVerifyFailsOnDuplicateKeys(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		c := ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
		s := verifyStore(t, db, c)
		m := ectest.Migration(t, s, "m")
		require.NoError(t, backfill.MarkDone(t.Context(), m, "test", ""))
		table := func(name string, kind expandcontract.KeyKind, rows ...string) *verify.SQLRows {
			key := db.Dialect.TypeBigInt()
			if kind == expandcontract.TextKeys {
				key = db.Dialect.TypeKeyText()
			}
			exec(t, db, fmt.Sprintf(`CREATE TABLE %s (id %s NOT NULL, v %s, v2 %s)`, name, key, db.Dialect.TypeText(), db.Dialect.TypeText()))
			for i := 0; i < len(rows); i += 2 {
				exec(t, db, `INSERT INTO `+name+` (id, v, v2) VALUES (?, ?, ?)`, rows[i], rows[i+1], rows[i+1])
			}
			return rowsOf(db, name, kind, "v")
		}
		three := []string{"1", "a", "1", "a", "2", "b"} // two rows share the key 1
		two := []string{"1", "a", "2", "b"}
		for _, tc := range []struct {
			name     string
			old, new *verify.SQLRows
			want     string
		}{
			{"old side", table("old1", expandcontract.IntKeys, three...), table("new1", expandcontract.IntKeys, two...), `old side: verify: key not unique: key "1" in 2 rows of`},
			{"new side", table("old2", expandcontract.IntKeys, two...), table("new2", expandcontract.IntKeys, three...), `new side: verify: key not unique: key "1" in 2 rows of`},
			{"both sides alike", table("old3", expandcontract.IntKeys, three...), table("new3", expandcontract.IntKeys, three...), `old side: verify: key not unique: key "1" in 2 rows of`},
			{"text keys", table("old4", expandcontract.TextKeys, "k", "a", "k", "b", "l", "c"), table("new4", expandcontract.TextKeys, "k", "a", "l", "c"), `old side: verify: key not unique: key "k" in 2 rows of`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, chunk := range []int{1, verify.DefaultChunkSize} {
					// A clean verification first: the failed one must replace it.
					c.Advance(time.Second)
					require.NoError(t, m.RecordVerification(t.Context(), expandcontract.Verification{Clean: true, Rows: 2}))
					c.Advance(time.Second)
					var log cutover.MemoryRepairLog
					res, err := ectest.Verify(t.Context(), m, tc.old, tc.new, verify.WithChunkSize(chunk), verify.WithRepairLog(&log))
					require.ErrorIs(t, err, verify.ErrDuplicateKey, "chunk %d: a duplicated key passed as %+v", chunk, res)
					assert.ErrorContains(t, err, tc.want)
					assert.False(t, res.Clean(), "chunk %d", chunk)
					assert.True(t, res.Duplicate, "chunk %d", chunk)

					st, err := m.State(t.Context())
					require.NoError(t, err)
					assert.False(t, st.Verification.Clean, "chunk %d: the failed verification is stored", chunk)
					assert.Equal(t, c.Now(), st.Verification.At)
					assert.Contains(t, st.Verification.Detail, "key not unique")
					_, err = m.Move(t.Context(), expandcontract.Move{To: expandcontract.SwitchReads, Actor: "test"})
					require.ErrorIs(t, err, expandcontract.ErrGuard, "chunk %d: reads switched on a duplicated key", chunk)
					assert.ErrorContains(t, err, "key not unique")
				}
			})
		}

		t.Run("two columns of one table", func(t *testing.T) {
			old := table("cols", expandcontract.TextKeys, "k", "a", "k", "a", "l", "b")
			new := *old
			new.Value = "v2"
			_, err := ectest.Verify(t.Context(), m, old, &new)
			require.ErrorIs(t, err, verify.ErrDuplicateKey)
			assert.ErrorContains(t, err, `old and new side: verify: key not unique: key "k" in 2 rows of`)
		})

		t.Run("keys equal in other collations", func(t *testing.T) {
			// Distinct bytes are distinct keys, whatever a collation says.
			keys := []string{"k", "a", "K", "a", "k ", "a", "\u00e9", "a", "e\u0301", "a"}
			old := table("old_ci", expandcontract.TextKeys, keys...)
			new := table("new_ci", expandcontract.TextKeys, keys...)
			if db.Name == "mysql" {
				exec(t, db, `ALTER TABLE old_ci MODIFY id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL`)
			}
			for _, chunk := range []int{1, 2, verify.DefaultChunkSize} {
				res, err := ectest.Verify(t.Context(), m, old, new, verify.WithChunkSize(chunk))
				require.NoError(t, err, "chunk %d", chunk)
				assert.True(t, res.Clean(), "chunk %d: keys %q", chunk, res.Keys)
				assert.Equal(t, int64(5), res.Rows)
			}
		})
	})
}

// dupRows is a row source that holds the key dup in a second row, which
// its checksums count but do not report: verify finds it when it reads
// the rows of the range.
type dupRows struct {
	*memRows
	dup int64
}

func (d dupRows) in(r expandcontract.KeyRange) bool {
	return (r.From == nil || d.dup > r.From.(int64)) && (r.To == nil || d.dup <= r.To.(int64))
}

func (d dupRows) Checksum(ctx context.Context, r expandcontract.KeyRange, dg verify.Digest) (verify.Checksum, error) {
	c, err := d.memRows.Checksum(ctx, r, dg)
	if d.in(r) {
		c.Add(d.row(d.dup))
	}
	return c, err
}

func (d dupRows) Rows(ctx context.Context, r expandcontract.KeyRange, fn func(verify.Row) error) error {
	if err := d.memRows.Rows(ctx, r, fn); err != nil {
		return err
	}
	if d.in(r) {
		return fn(d.row(d.dup))
	}
	return nil
}

// TestVerifyDrillDownFailsOnDuplicateKeys checks the drill-down, which
// compares rows by key: a key read twice from a side fails the
// verification, where it once overwrote the first row and reported clean.
func TestVerifyDrillDownFailsOnDuplicateKeys(t *testing.T) {
	s := verifyStore(t, testdb.SQLite(t), ectest.NewClockAt(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)))
	for _, tc := range []struct {
		name     string
		old, new verify.RowSource
		want     string
	}{
		{"old side", dupRows{newMemRows(3), 1}, newMemRows(3), `old side: verify: key not unique: key "1" in more than one row`},
		{"new side", newMemRows(3), dupRows{newMemRows(3), 2}, `new side: verify: key not unique: key "2" in more than one row`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 2, verify.DefaultChunkSize} {
				res, err := ectest.Verify(t.Context(), ectest.Migration(t, s, "m"), tc.old, tc.new, verify.WithChunkSize(chunk))
				require.ErrorIs(t, err, verify.ErrDuplicateKey, "chunk %d: clean=%v drilled=%d diffs=%d", chunk, res.Clean(), res.Drilled, res.Differences)
				assert.ErrorContains(t, err, tc.want)
				assert.False(t, res.Clean())
			}
		})
	}
}
