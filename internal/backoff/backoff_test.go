package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/cutover-go/cutover/internal/backoff"
)

func TestCeilingDoublesUpToMax(t *testing.T) {
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int64]time.Duration{
		-1: 100 * time.Millisecond, 0: 100 * time.Millisecond, 1: 100 * time.Millisecond,
		2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 62: time.Second, 1 << 40: time.Second,
	} {
		assert.Equal(t, want, p.Ceiling(n), "retry %d", n)
	}
	assert.Equal(t, 3*time.Second, backoff.Policy{Base: 3 * time.Second, Max: time.Second}.Ceiling(4), "max below base means base")
	assert.Zero(t, backoff.Policy{}.Ceiling(3), "the zero policy waits nothing")
}

func TestWaitIsInTheUpperHalf(t *testing.T) {
	p := backoff.Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for n := int64(1); n <= 6; n++ {
		c := p.Ceiling(n)
		for range 200 {
			w := p.Wait(n)
			assert.True(t, w >= c/2 && w <= c, "retry %d: wait %v outside [%v, %v]", n, w, c/2, c)
		}
	}
	assert.Zero(t, backoff.Policy{}.Wait(1))
}

func TestSleepEndsWithTheContext(t *testing.T) {
	cause := errors.New("stopped")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	assert.ErrorIs(t, backoff.Sleep(ctx, time.Hour), cause, "a done context ends the wait with its cause")
	assert.ErrorIs(t, backoff.Sleep(ctx, 0), cause)
	assert.NoError(t, backoff.Sleep(context.Background(), 0))
	assert.NoError(t, backoff.Sleep(context.Background(), time.Millisecond))
}
