package repair_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/internal/ectest"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/internal/spantest"
	"github.com/cutover-go/cutover/internal/testdb"
)

func TestRepairSpans(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		rec := spantest.New(t)
		c := ectest.NewClock()
		s := ectest.Open(t, db.DB, c, expandcontract.WithTracerProvider(rec.Provider()),
			expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
		log, err := repair.NewLog(ectest.Migration(t, s, "users"))
		require.NoError(t, err)
		for _, key := range []string{"1", "2"} {
			require.NoError(t, log.Record(t.Context(), repairOfKey(key)))
		}
		calls := new(repairCalls)
		r, err := repair.New(log, func(ctx context.Context, rep cutover.Repair) error {
			if rep.Key == "2" {
				return errors.New("old store down")
			}
			return calls.fn(nil)(ctx, rep)
		})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, r.Close()) })

		stats, err := r.RunOnce(t.Context())
		require.NoError(t, err)
		require.Equal(t, 1, stats.Repaired)
		round := spantest.Only(t, rec.Named("cutover.expandcontract.repair.round"), "one round")
		assert.Equal(t, "github.com/cutover-go/cutover/expandcontract/repair", round.InstrumentationScope().Name)
		assert.Equal(t, map[string]string{"cutover.migration": "users", "cutover.repair.due": "2", "cutover.repair.claimed": "2",
			"cutover.repair.repaired": "1", "cutover.repair.failed": "1", "cutover.repair.stuck": "0",
			"cutover.repair.recorded_again": "0", "cutover.outcome": "ok"}, spantest.Attrs(round))
		calls2 := spantest.ChildrenOf(round, rec.Named("cutover.expandcontract.repair.call"))
		require.Len(t, calls2, 2)
		assert.Equal(t, map[string]string{"cutover.migration": "users", "cutover.operation": "users.save", "cutover.store": "new",
			"cutover.reason": "secondary_failed", "cutover.repair.claimed": "1", "cutover.attempt": "1", "cutover.outcome": "ok"},
			spantest.Attrs(calls2[0]))
		assert.Equal(t, codes.Unset, calls2[0].Status().Code)
		assert.Equal(t, "error", spantest.Attrs(calls2[1])["cutover.outcome"])
		spantest.CheckError(t, calls2[1], "old store down")

		// A round that finds nothing due makes no span; the failed entry
		// is due again after its backoff, on its second attempt.
		rec.Reset()
		stats, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		require.Zero(t, stats.Claimed)
		assert.Empty(t, rec.Ended())
		c.Advance(repair.DefaultMaxBackoff)
		_, err = r.RunOnce(t.Context())
		require.NoError(t, err)
		call := spantest.Only(t, rec.Named("cutover.expandcontract.repair.call"), "one call")
		assert.Equal(t, "2", spantest.Attrs(call)["cutover.attempt"])
	})
}
