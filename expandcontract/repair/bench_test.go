package repair_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/testdb"
)

// BenchmarkRepairLogRecord measures Record, which runs on the write path
// when a secondary write fails, against the bare INSERT it wraps ("direct").
// Compare the two with benchstat or by the ratio of their ns/op.
func BenchmarkRepairLogRecord(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres", "mysql"} {
		b.Run(name, func(b *testing.B) {
			db := testdb.Open(b, name)
			s, err := expandcontract.Open(b.Context(), db.DB)
			if err != nil {
				b.Fatal(err)
			}
			log, err := repair.NewLog(ectest.Migration(b, s, "users"))
			if err != nil {
				b.Fatal(err)
			}
			insert := db.Dialect.Rebind(`INSERT INTO cutover_repairs (migration, op, entity_key, target, stage, reason,
				error, created_at, attempts, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '')`)
			cause := errors.New("new store: connection reset")
			b.Run("direct", func(b *testing.B) {
				i := 0
				for b.Loop() {
					now := time.Now().UnixMicro()
					if _, err := db.ExecContext(b.Context(), insert, "users", "users.save", fmt.Sprint(i), 1, "shadow",
						"secondary_failed", cause.Error(), now, now); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("Record", func(b *testing.B) {
				i := 0
				for b.Loop() {
					err := log.Record(b.Context(), cutover.Repair{Op: "users.save", Key: fmt.Sprint(i), Target: cutover.New,
						Stage: cutover.Shadow, Reason: cutover.SecondaryFailed, Err: cause})
					if err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}
