// Package backoff computes the jittered, growing waits between retries that
// the expand-contract packages share: lock-timeout retries of phase moves,
// conflict retries of backfill batches, and the delays between attempts of
// a repair.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the wait before retry n (counting from
// 1) is Base doubled n-1 times, at most Max, with jitter that draws it from
// the upper half of that, so that instances retrying together spread out.
// The zero value waits nothing. A Policy is a value, safe for concurrent use.
type Policy struct {
	Base time.Duration // the wait before the first retry, before jitter
	Max  time.Duration // the longest wait, before jitter; below Base means Base
}

// Wait returns the jittered wait before retry n, n >= 1.
func (p Policy) Wait(n int64) time.Duration {
	d := p.Ceiling(n)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Ceiling returns the wait before retry n without jitter: Base doubled n-1
// times, at most Max.
func (p Policy) Ceiling(n int64) time.Duration {
	limit := max(p.Max, p.Base)
	if p.Base <= 0 {
		return 0
	}
	if n < 1 {
		n = 1
	}
	if n-1 >= 62 {
		return limit
	}
	if b := p.Base << (n - 1); b > 0 && b < limit && b>>(n-1) == p.Base {
		return b
	}
	return limit
}

// Sleep waits d, or until ctx is done, and then returns ctx's cause. A d
// of zero or less returns at once, with the cause if ctx is done already.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
