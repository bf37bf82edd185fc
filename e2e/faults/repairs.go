package faults

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/repair"
)

// countingLog is a [cutover.RepairLog] that counts what it passes on to the
// durable log, by reason.
type countingLog struct {
	inner cutover.RepairLog

	mu       sync.Mutex
	byReason map[cutover.Reason]int64 // recorded
	refused  map[cutover.Reason]int64 // the inner log failed
	total    atomic.Int64
}

func newCountingLog(inner cutover.RepairLog) *countingLog {
	return &countingLog{inner: inner, byReason: map[cutover.Reason]int64{}, refused: map[cutover.Reason]int64{}}
}

// Record records r in the inner log and counts it.
func (l *countingLog) Record(ctx context.Context, r cutover.Repair) error {
	err := l.inner.Record(ctx, r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.refused[r.Reason]++
		return err
	}
	l.total.Add(1)
	l.byReason[r.Reason]++
	return nil
}

// Counts returns copies of the counts by reason of the entries recorded
// and of those the inner log failed to record.
func (l *countingLog) Counts() (recorded, refused map[cutover.Reason]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.byReason), maps.Clone(l.refused)
}

// repairKey returns the repair function of the walk: it copies the row of
// r.Key from the store that is not r.Target over r.Target, conditionally on
// the version, so that a stale source never overwrites a newer target (a
// mismatch can name either copy as the stale one). A key the source does
// not hold is left alone: the suite never deletes.
func repairKey(stores [2]*Table) repair.Func {
	return func(ctx context.Context, r cutover.Repair) error {
		u, err := stores[r.Target.Other()].Get(ctx, r.Key)
		if err != nil {
			if !isStoreFailure(err) {
				return nil
			}
			return err
		}
		return stores[r.Target].Put(ctx, u)
	}
}

// repairLoop drains the repair log in the background, as a service's
// repairer would, through the same connections as the callers: its repairs
// of the new store fail while the new store does, and are retried with
// backoff.
type repairLoop struct {
	r        *repair.Repairer
	repaired atomic.Int64
	failed   atomic.Int64
	lastErr  atomic.Pointer[error] // the last round's error, for a failure to show
	cancel   context.CancelFunc
	done     chan struct{}
}

// startRepairs starts draining with r until stop.
func startRepairs(ctx context.Context, r *repair.Repairer) *repairLoop {
	ctx, cancel := context.WithCancel(ctx)
	l := &repairLoop{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			st, err := r.RunOnce(ctx)
			l.repaired.Add(int64(st.Repaired))
			l.failed.Add(int64(st.Failed))
			if err != nil && ctx.Err() == nil {
				l.lastErr.Store(&err)
			}
			if err == nil && st.Claimed > 0 {
				continue
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return l
}

// lastError returns the error of the last round that failed, nil if none.
func (l *repairLoop) lastError() error {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// stop stops the loop and waits for it.
func (l *repairLoop) stop() {
	l.cancel()
	<-l.done
}
