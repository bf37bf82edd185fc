package expandcontract

import (
	"context"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// RecordVerification stores v as the migration's latest verification,
// stamped now unless v.At is set, and records it in the history. A move to
// switchreads needs a clean one that is not older than the backfill's end
// and that started after the migration last moved into backfill (so after
// a move back from switchreads, a new one). Package
// verify records its results this way; call it for a verification made by
// other means.
func (m *Migration) RecordVerification(ctx context.Context, v Verification) error {
	if v.Rows < 0 || v.Differences < 0 {
		return fmt.Errorf("%w: verification with %d rows and %d differences", ErrInvalidInput, v.Rows, v.Differences)
	}
	if v.Clean && v.Differences > 0 {
		return fmt.Errorf("%w: a clean verification with %d differences", ErrInvalidInput, v.Differences)
	}
	k := m.s.m
	if v.At.IsZero() {
		v.At = k.Now()
	}
	detail := fmt.Sprintf("clean=%v rows=%d differences=%d", v.Clean, v.Rows, v.Differences)
	if v.Detail != "" {
		detail += ": " + v.Detail
	}
	return k.Update(ctx, m.h.Name, "verify", "verification", "", func(meta.Row) (string, []any, string) {
		return `verified_at = ?, verify_clean = ?, verify_rows = ?, verify_diffs = ?, verify_detail = ?`,
			[]any{meta.Micros(v.At), meta.BoolInt(v.Clean), v.Rows, v.Differences, v.Detail}, detail
	})
}
