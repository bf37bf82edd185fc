package shadowread_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/shadowread"
)

// doc is a payload of any shape.
type doc struct {
	ID   string
	Body any
}

// nest builds, without recursion, a JSON-like document n objects deep.
func nest(n int, leaf any) any {
	v := leaf
	for range n {
		v = map[string]any{"x": v}
	}
	return v
}

func entries(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))] = i
	}
	return m
}

// TestComparisonsStopAtTheirLimits: a comparison of values too deep or too
// large to compare within the limits neither crashes the process nor
// counts as a mismatch: it is counted as too_large and logged with where it
// stopped, and nothing is recorded for repair. A difference found before a
// limit stays a mismatch.
func TestComparisonsStopAtTheirLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new any
		opts     []shadowread.Option[doc]
		mismatch bool
		log      string
	}{
		{name: "400 000 levels deep", old: nest(400_000, 1), new: nest(400_000, 1),
			log: `comparison stopped: depth limit 1000 exceeded at .Body[\"x\"][\"x\"]`},
		{name: "a map over the work limit", old: entries(1000), new: entries(1000),
			opts: []shadowread.Option[doc]{shadowread.WithCompareLimits[doc](0, 100)},
			log:  "comparison stopped: work limit 100 exceeded at .Body"},
		{name: "depth limit set", old: nest(10, 1), new: nest(10, 1),
			opts: []shadowread.Option[doc]{shadowread.WithCompareLimits[doc](4, 0)},
			log:  `comparison stopped: depth limit 4 exceeded at .Body[\"x\"]`},
		{name: "a difference before the limit", mismatch: true,
			old: map[string]any{"deep": nest(2000, 1), "n": 1},
			new: map[string]any{"deep": nest(2000, 1), "n": 2},
			log: `.Body[\"n\"]: 1 != 2\ncomparison stopped: depth limit 1000 exceeded at .Body[\"deep\"][\"x\"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logCapture
			stores := dualwritetest.NewPair[doc]()
			repairs := new(cutover.MemoryRepairLog)
			metrics := metrictest.New(t)
			reported := 0
			r, err := shadowread.New("docs.get", cutover.Fixed(cutover.Shadow), append([]shadowread.Option[doc]{
				shadowread.WithSynchronous[doc](),
				shadowread.WithLogger[doc](logs.logger()),
				shadowread.WithMeterProvider[doc](metrics.Provider()),
				shadowread.WithRepairLog[doc](repairs),
				shadowread.WithOnMismatch(func(context.Context, *shadowread.Mismatch[doc]) { reported++ }),
			}, tc.opts...)...)
			require.NoError(t, err)
			require.NoError(t, stores.Old.Put(t.Context(), "1", doc{ID: "1", Body: tc.old}))
			require.NoError(t, stores.New.Put(t.Context(), "1", doc{ID: "1", Body: tc.new}))

			got, err := r.Read(t.Context(), "1", func(ctx context.Context, side cutover.Side) (doc, error) {
				return stores.Side(side).Get(ctx, "1")
			})
			require.NoError(t, err)
			assert.Equal(t, "1", got.ID)
			assert.Contains(t, logs.String(), tc.log)
			total := metrics.Sum("cutover.shadowread.comparisons", "", "")
			assert.Equal(t, int64(1), total)
			if tc.mismatch {
				assert.Equal(t, int64(1), metrics.Sum("cutover.shadowread.mismatches", "", ""))
				assert.Equal(t, 1, repairs.Len())
				assert.Equal(t, 1, reported)
				return
			}
			assert.Equal(t, int64(1), metrics.Sum("cutover.shadowread.comparisons", "cutover.reason", "too_large"))
			assert.Contains(t, logs.String(), "cutover: shadow comparison stopped at its limits")
			assert.Zero(t, metrics.Sum("cutover.shadowread.mismatches", "", ""))
			assert.Zero(t, repairs.Len(), "a comparison that could not decide records nothing for repair")
			assert.Zero(t, reported)
		})
	}
}
