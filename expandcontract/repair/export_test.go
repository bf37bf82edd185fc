package repair

import (
	"context"
	"time"
)

// SetRepairerWait replaces how r waits between rounds of Run. Call it before
// Run starts.
func SetRepairerWait(r *Repairer, wait func(ctx context.Context, d time.Duration) error) {
	r.wait = wait
}
