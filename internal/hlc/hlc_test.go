package hlc

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
)

func TestNextGrowsWhenTheWallClockStandsStillOrGoesBack(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := New(func() time.Time { return at })
	a := c.Next()
	b := c.Next()
	at = at.Add(-time.Hour)
	d := c.Next()
	assert.Less(t, a, b)
	assert.Less(t, b, d)
	assert.Equal(t, a&nodeMask, d&nodeMask, "the node bits name the clock")
}

func TestNextFollowsTheWallClock(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := New(func() time.Time { return at })
	a := c.Next()
	at = at.Add(time.Second)
	b := c.Next()
	assert.Equal(t, int64(time.Second/time.Microsecond), int64(b>>NodeBits-a>>NodeBits))
}

func TestObserveMovesPastAHigherVersion(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	fast := New(func() time.Time { return at.Add(time.Minute) })
	slow := New(func() time.Time { return at })
	seen := fast.Next()
	slow.Observe(seen)
	assert.Greater(t, slow.Next(), seen)
	slow.Observe(1) // a lower version changes nothing
	assert.Greater(t, slow.Next(), seen)
}

func TestVersionsFitASignedColumnUntil2091(t *testing.T) {
	c := New(func() time.Time { return time.Date(2091, 1, 1, 0, 0, 0, 0, time.UTC) })
	assert.Less(t, uint64(c.Next()), uint64(1<<63))
}

func TestNextIsUniqueUnderConcurrency(t *testing.T) {
	c := New(nil)
	const workers, each = 8, 1000
	got := make([][]cutover.Version, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				got[w] = append(got[w], c.Next())
			}
		})
	}
	wg.Wait()
	seen := make(map[cutover.Version]bool, workers*each)
	for _, vs := range got {
		for i, v := range vs {
			require.False(t, seen[v], "version %d handed out twice", v)
			seen[v] = true
			if i > 0 {
				require.Less(t, vs[i-1], v, "versions of one goroutine grow")
			}
		}
	}
}

func TestZeroClockWorks(t *testing.T) {
	var c Clock
	a, b := c.Next(), c.Next()
	assert.Less(t, a, b)
}
