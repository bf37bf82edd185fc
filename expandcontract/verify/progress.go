package verify

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// DefaultProgressInterval is how often a running verification records its
// progress in the migration's row, unless [WithProgressInterval] says
// otherwise.
const DefaultProgressInterval = 2 * time.Second

// MaxProgressInterval is the longest interval [WithProgressInterval]
// accepts: well below the age at which [expandcontract.Status] takes a
// verification's progress for that of one that stopped without saying so.
const MaxProgressInterval = 20 * time.Second

// WithOwner sets the id a run records as the one running it, such as the
// instance id of the service. It must be 1 to 255 bytes of valid UTF-8
// without control characters. The default is the host name and the
// process id.
func WithOwner(id string) Option {
	return optionFunc(func(c *config) { c.owner, c.ownerSet = id, true })
}

// WithProgressInterval sets how often a run records its progress (the
// rows compared so far) in the migration's row, besides when it starts and
// when it ends, each time with one UPDATE. It must be positive and at most
// [MaxProgressInterval]; the default is [DefaultProgressInterval].
func WithProgressInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.progress = d })
}

// defaultOwner is the host name and the process id.
func defaultOwner() string {
	return fmt.Sprintf("%s/%d", meta.Host(), os.Getpid())
}

// endTimeout bounds the UPDATE that clears a run's mark once the run's
// context has ended.
const endTimeout = 10 * time.Second

// track records the progress of ses in the migration's row: now, every
// c.progress while it runs, and when the function it returns is called,
// which clears the mark and stops the recording. Failures to record are
// logged: they never fail the verification.
func (v *Verifier) track(ctx context.Context, ses *session, total int64) (end func()) {
	k, name := v.k, v.name
	run := meta.VerifyRun{Started: ses.res.Started, Owner: v.c.owner, Total: total}
	warn := func(err error) {
		if err != nil {
			k.Logger.WarnContext(ctx, "cutover: record the verification's progress", "migration", name, "err", err)
		}
	}
	warn(k.StartVerifyRun(ctx, name, run))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(v.c.progress)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r := run
			r.Rows = ses.rows()
			warn(k.UpdateVerifyRun(ctx, name, r, false))
		}
	})
	return func() {
		close(stop)
		wg.Wait()
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		r := run
		r.Rows = ses.rows()
		warn(k.UpdateVerifyRun(ectx, name, r, true))
	}
}

// rows returns the rows of the old side compared so far.
func (v *session) rows() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.res.Rows
}
