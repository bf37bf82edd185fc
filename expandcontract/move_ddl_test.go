package expandcontract_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/internal/testdb"
)

// A DDL that waits for a lock blocks every query queued behind it. A move's
// statements therefore give up quickly on a lock and retry, so that a long
// transaction delays the move, not the application.
func TestMoveDDLDoesNotQueueBehindLongTransactions(t *testing.T) {
	for _, name := range []string{"postgres", "mysql"} {
		t.Run(name, func(t *testing.T) {
			db := testdb.Open(t, name)
			s := ectest.Open(t, db.DB, ectest.NewClock(),
				expandcontract.WithLockTimeout(50*time.Millisecond), expandcontract.WithDDLAttempts(3))
			_, err := db.ExecContext(t.Context(), `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone VARCHAR(40))`)
			require.NoError(t, err)
			_, err = db.ExecContext(t.Context(), `INSERT INTO customers (id, customer_phone) VALUES (1, '555')`)
			require.NoError(t, err)
			_, err = ectest.Migration(t, s, "rename").Ensure(t.Context(), "test")
			require.NoError(t, err)

			// A long transaction holds a lock that ALTER TABLE must wait for.
			long, err := db.BeginTxx(t.Context(), nil)
			require.NoError(t, err)
			defer long.Rollback()
			var phone string
			require.NoError(t, long.GetContext(t.Context(), &phone, `SELECT customer_phone FROM customers WHERE id = 1`))

			addColumn := expandcontract.Move{To: expandcontract.DualWrite, Actor: "test",
				SQL: []string{`ALTER TABLE customers ADD COLUMN phone_number VARCHAR(40)`}}
			_, err = ectest.Migration(t, s, "rename").Move(t.Context(), addColumn)
			require.Error(t, err)
			assert.ErrorContains(t, err, "gave up after 3 lock timeouts")
			m, err := ectest.Migration(t, s, "rename").State(t.Context())
			require.NoError(t, err)
			assert.Equal(t, expandcontract.Expand, m.Phase, "the move did not happen")

			// Meanwhile the application's own queries were never stuck behind the DDL.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			require.NoError(t, db.GetContext(ctx, &phone, `SELECT customer_phone FROM customers WHERE id = 1`))

			require.NoError(t, long.Rollback())
			m, err = ectest.Migration(t, s, "rename").Move(t.Context(), addColumn)
			require.NoError(t, err, "once the long transaction ends the move goes through")
			assert.Equal(t, expandcontract.DualWrite, m.Phase)
			_, err = db.ExecContext(t.Context(), `UPDATE customers SET phone_number = customer_phone`)
			require.NoError(t, err)
		})
	}
}
