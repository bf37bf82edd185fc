package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/internal/testutil"
)

// stamps records the stamps a versioned write hands each store, and plays
// a store that holds the key at a version: an ordering call under it is
// answered with cutover.ErrStaleVersion.
type stamps struct {
	mu   sync.Mutex
	got  []cutover.Stamp
	fail map[cutover.Side]error
	held cutover.Version
}

func (s *stamps) write(_ context.Context, st cutover.Stamp) (cutover.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
	if err := s.fail[st.Side]; err != nil {
		return 0, err
	}
	if st.First && st.Version <= s.held {
		return s.held, fmt.Errorf("fake: %w", cutover.ErrStaleVersion)
	}
	return st.Version, nil
}

func versionedWriter(t *testing.T, stage cutover.Stage, opts ...dualwrite.Option) *dualwrite.Writer {
	t.Helper()
	opts = append([]dualwrite.Option{dualwrite.WithLogger(testutil.Quiet())}, opts...)
	w, err := dualwrite.New("users.save", cutover.Fixed(stage), &cutover.MemoryRepairLog{}, opts...)
	require.NoError(t, err)
	return w
}

func TestWriteVersionedHandsTheSecondaryTheAuthoritativeVersion(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.DualWrite, cutover.Shadow, cutover.Live, cutover.Rampdown} {
		t.Run(stage.String(), func(t *testing.T) {
			w := versionedWriter(t, stage)
			now, err := w.WriteVersioned(t.Context(), "1", (&stamps{}).write)
			require.NoError(t, err)
			s := &stamps{held: now + 1<<40} // a version from a clock running ahead
			v, err := w.WriteVersioned(t.Context(), "1", s.write)
			require.NoError(t, err)
			assert.Greater(t, v, s.held, "stamped above the version the store held")
			sec, _ := stage.Secondary()
			require.Len(t, s.got, 3)
			assert.Equal(t, []cutover.Stamp{
				{Side: stage.Authoritative(), Version: s.got[0].Version, First: true},
				{Side: stage.Authoritative(), Version: v, First: true},
				{Side: sec, Version: v},
			}, s.got, "the ordering store is called again, higher, and the secondary gets its version")
		})
	}
}

func TestWriteVersionedStampsGrow(t *testing.T) {
	w := versionedWriter(t, cutover.DualWrite)
	s := &stamps{}
	a, err := w.WriteVersioned(t.Context(), "1", s.write)
	require.NoError(t, err)
	b, err := w.WriteVersioned(t.Context(), "1", s.write)
	require.NoError(t, err)
	assert.Less(t, a, b)

	// A store that holds a version far ahead moves the clock past it.
	ahead := b + 1<<50
	_, err = w.WriteVersioned(t.Context(), "1", (&stamps{held: ahead}).write)
	require.NoError(t, err)
	c, err := w.WriteVersioned(t.Context(), "1", s.write)
	require.NoError(t, err)
	assert.Greater(t, c, ahead)
}

func TestWriteVersionedOneStore(t *testing.T) {
	for _, stage := range []cutover.Stage{cutover.Off, cutover.Complete} {
		s := &stamps{}
		v, err := versionedWriter(t, stage).WriteVersioned(t.Context(), "1", s.write)
		require.NoError(t, err)
		require.Len(t, s.got, 1, "%s", stage)
		assert.Equal(t, cutover.Stamp{Side: stage.Authoritative(), Version: v, First: true}, s.got[0], "%s", stage)
	}
}

func TestWriteVersionedFallbackOrdersTheWrite(t *testing.T) {
	s := &stamps{fail: map[cutover.Side]error{cutover.New: errors.New("new store down")}}
	v, err := versionedWriter(t, cutover.Live).WriteVersioned(t.Context(), "1", s.write)
	require.NoError(t, err)
	require.Len(t, s.got, 2)
	assert.Equal(t, cutover.Stamp{Side: cutover.New, Version: v, First: true}, s.got[0])
	assert.Equal(t, cutover.Stamp{Side: cutover.Old, Version: v, First: true}, s.got[1],
		"the old store orders the write in the failed new store's place")
}

func TestWriteVersionedConcurrentGivesBothStoresOneVersion(t *testing.T) {
	s := &stamps{held: 1 << 60}
	v, err := versionedWriter(t, cutover.Shadow, dualwrite.WithConcurrentWrites()).WriteVersioned(t.Context(), "1", s.write)
	require.NoError(t, err)
	require.Len(t, s.got, 2)
	for _, st := range s.got {
		assert.Equal(t, v, st.Version)
		assert.False(t, st.First, "no call orders a concurrent write")
	}
	assert.ElementsMatch(t, []cutover.Side{cutover.Old, cutover.New}, []cutover.Side{s.got[0].Side, s.got[1].Side})
}

func TestWriteVersionedErrors(t *testing.T) {
	w := versionedWriter(t, cutover.DualWrite)
	_, err := w.WriteVersioned(t.Context(), "1", nil)
	assert.ErrorIs(t, err, dualwrite.ErrNilFunc)
	boom := errors.New("old store down")
	v, err := w.WriteVersioned(t.Context(), "1", (&stamps{fail: map[cutover.Side]error{cutover.Old: boom}}).write)
	assert.ErrorIs(t, err, boom)
	assert.Zero(t, v)
}

// TestWriteVersionedGivesUpOnAStoreThatIsAlwaysAhead: a store that answers
// every ordering call with a newer version, as writes racing in from other
// instances would, is called MaxStaleRetries more times and its error
// returned.
func TestWriteVersionedGivesUpOnAStoreThatIsAlwaysAhead(t *testing.T) {
	calls := 0
	_, err := versionedWriter(t, cutover.DualWrite).WriteVersioned(t.Context(), "1", func(_ context.Context, st cutover.Stamp) (cutover.Version, error) {
		calls++
		return st.Version + 1<<20, cutover.ErrStaleVersion
	})
	assert.ErrorIs(t, err, cutover.ErrStaleVersion)
	assert.Equal(t, dualwrite.MaxStaleRetries+1, calls)
}

// TestWriteVersionedStartsOverAboveASecondaryHoldingAHigherVersion: a
// secondary that holds a higher version, which may be an earlier write
// stamped by a clock running ahead, makes the write start over in both
// stores above it, in serial and concurrent mode.
func TestWriteVersionedStartsOverAboveASecondaryHoldingAHigherVersion(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			var opts []dualwrite.Option
			if concurrent {
				opts = append(opts, dualwrite.WithConcurrentWrites())
			}
			w := versionedWriter(t, cutover.Live, opts...)
			now, err := w.WriteVersioned(t.Context(), "1", (&stamps{}).write)
			require.NoError(t, err)
			ahead := now + 1<<40
			var mu sync.Mutex
			var got []cutover.Stamp
			v, err := w.WriteVersioned(t.Context(), "1", func(_ context.Context, st cutover.Stamp) (cutover.Version, error) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, st)
				if st.Side == cutover.Old && st.Version < ahead {
					return ahead, fmt.Errorf("fake: %w", cutover.ErrStaleVersion)
				}
				return st.Version, nil
			})
			require.NoError(t, err)
			assert.Greater(t, v, ahead, "the write landed above the version the old store held")
			require.Len(t, got, 4, "each store is written twice")
			for i, st := range got {
				assert.Equal(t, i >= 2, st.Version == v, "call %d: %+v", i, st)
			}
			assert.ElementsMatch(t, []cutover.Side{cutover.Old, cutover.New}, []cutover.Side{got[2].Side, got[3].Side})
		})
	}
}

// TestWriteVersionedGivesUpOnASecondaryThatIsAlwaysAhead: a write that
// starts over MaxStaleRetries times and still finds a higher version fails
// with cutover.ErrStaleVersion, and its key is recorded as ambiguous: the
// authoritative store holds it, the other a higher version.
func TestWriteVersionedGivesUpOnASecondaryThatIsAlwaysAhead(t *testing.T) {
	log := &cutover.MemoryRepairLog{}
	w, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), log, dualwrite.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	calls := 0
	_, err = w.WriteVersioned(t.Context(), "1", func(_ context.Context, st cutover.Stamp) (cutover.Version, error) {
		calls++
		if st.Side == cutover.New {
			return st.Version + 1<<20, cutover.ErrStaleVersion
		}
		return st.Version, nil
	})
	assert.ErrorIs(t, err, cutover.ErrStaleVersion)
	assert.Equal(t, 2*(dualwrite.MaxStaleRetries+1), calls)
	entries := log.Entries()
	require.Len(t, entries, 1)
	assert.Equal(t, cutover.Ambiguous, entries[0].Reason)
	assert.Equal(t, cutover.Old, entries[0].Target, "the old store holds the write under the new store's higher version")
}

func TestWithClockRejectsNil(t *testing.T) {
	_, err := dualwrite.New("users.save", cutover.Fixed(cutover.DualWrite), &cutover.MemoryRepairLog{}, dualwrite.WithClock(nil))
	assert.ErrorIs(t, err, dualwrite.ErrInvalidInput)
	assert.ErrorContains(t, err, "WithClock: nil clock")
}
