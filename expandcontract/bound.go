package expandcontract

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// readResult is how a read of the phase ended, the reason of the
// phase_reads counter.
type readResult uint8

const (
	readOK readResult = iota
	readFailed
	numReadResults
)

func (r readResult) String() string { return [numReadResults]string{"ok", "error"}[r] }

// Bound keeps the stages that flags select inside what a migration's phase
// allows: a flag asking for live while the backfill runs gets shadow, and
// one asking for off while dual writes must go on gets dualwrite. Plug
// [Bound.Clamp] into flags.WithBound.
//
// A Bound also applies the migration's ceiling ([Migration.Demote]) while
// it is in force, by the store's clock: under a ceiling of shadow, a flag
// asking for live gets shadow. The ceiling never takes a stage below the
// lowest that the phase allows: writes that must reach both stores still
// do.
//
// The phase and the ceiling are read from the store together, with one
// statement, at most once per TTL, in the background,
// so requests make no database round trip: only the first call of a new
// Bound waits for a read. Until a phase has ever been read, reads are kept
// on the old store (stages above shadow become shadow) and writes are left
// as the flag says. A Bound is safe for concurrent use.
type Bound struct {
	m        *Migration
	instance string
	ttl      time.Duration
	logs     *telemetry.Limiter

	state      atomic.Pointer[boundState]
	refreshing atomic.Bool
	lowest     atomic.Int32 // lowest stage resolved since the last report; -1 if none
}

type boundState struct {
	phase   Phase
	ceiling *Ceiling  // the ceiling read with the phase; nil if none
	known   bool      // false until a read of the phase succeeded
	at      time.Time // when the phase was read, or last tried
}

// Bound returns a [Bound] for the migration whose phase is re-read after
// ttl. If instance is not empty, the Bound also reports, at each re-read,
// the lowest stage it resolved since the previous one under that instance
// id (see [Migration.ReportStage]).
func (m *Migration) Bound(ttl time.Duration, instance string) (*Bound, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: bound TTL must be positive, got %v", ErrInvalidInput, ttl)
	}
	if instance != "" {
		if err := checkName("instance id", instance); err != nil {
			return nil, err
		}
	}
	b := &Bound{m: m, instance: instance, ttl: ttl, logs: telemetry.NewLimiter(time.Minute, 3, m.s.m.Now)}
	b.lowest.Store(-1)
	return b, nil
}

// Clamp returns requested moved into the stages the migration's current
// phase allows, and under its ceiling while one is in force. Its
// signature fits flags.WithBound.
func (b *Bound) Clamp(ctx context.Context, requested cutover.Stage) cutover.Stage {
	st := b.state.Load()
	var now time.Time
	if st == nil {
		st = b.refresh(ctx)
		now = st.at
	} else if now = b.m.s.m.Now(); now.Sub(st.at) >= b.ttl && b.refreshing.CompareAndSwap(false, true) {
		go func() {
			defer b.refreshing.Store(false)
			b.refresh(ctx)
		}()
	}
	out := min(requested, cutover.Shadow)
	if st.known {
		if st.ceiling.Active(now) {
			requested = min(requested, st.ceiling.Stage)
		}
		out = st.phase.Clamp(requested)
	}
	for {
		low := b.lowest.Load()
		if low >= 0 && cutover.Stage(low) <= out || b.lowest.CompareAndSwap(low, int32(out)) {
			break
		}
	}
	return out
}

// Ceiling returns the ceiling the bound last read with the phase, in
// force or past its cool-down, or nil if there was none or no read has
// succeeded yet.
func (b *Bound) Ceiling() *Ceiling {
	if st := b.state.Load(); st != nil {
		return st.ceiling
	}
	return nil
}

// Phase returns the phase the bound last read, and false if it has never
// read one.
func (b *Bound) Phase() (Phase, bool) {
	if st := b.state.Load(); st != nil {
		return st.phase, st.known
	}
	return Expand, false
}

// refresh reads the phase and the ceiling, reports the instance's stage,
// and returns the new state. A failed read keeps the phase and the
// ceiling last known.
func (b *Bound) refresh(ctx context.Context) *boundState {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := b.m.s.m.Now()
	next := &boundState{at: now}
	st, err := b.m.State(ctx)
	if err != nil {
		b.m.s.phaseReads.Add(ctx, readFailed)
		if prev := b.state.Load(); prev != nil {
			next.phase, next.ceiling, next.known = prev.phase, prev.ceiling, prev.known
		}
		if ok, suppressed := b.logs.Allow(); ok {
			b.m.s.m.Logger.ErrorContext(ctx, "cutover: reading the migration phase failed; keeping the last known",
				"migration", b.m.h.Name, "known", next.known, "phase", next.phase.String(), "err", err, "suppressed", suppressed)
		}
	} else {
		b.m.s.phaseReads.Add(ctx, readOK)
		next.phase, next.ceiling, next.known = st.Phase, st.Ceiling, true
	}
	b.state.Store(next)
	if b.instance != "" {
		if low := b.lowest.Swap(-1); low >= 0 {
			if err := b.m.ReportStage(ctx, b.instance, cutover.Stage(low)); err != nil {
				b.lowest.CompareAndSwap(-1, low) // report it next time
			}
		}
	}
	return next
}
