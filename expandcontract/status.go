package expandcontract

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// Status is what an operator needs to know about one migration, read from
// the metadata at one moment: the stored state, the stages its phase
// allows, the backfill's rate and ETA, the age of the last verification
// and the progress of a running one, the repair backlog, the instances and
// the stage each resolves, the ceiling in force, and the recent history.
// State.Backfill.Throttled says why the backfill's runner waits, if a
// throttle holds it; left empty once the lease of the runner that recorded
// it ran out. Read it with [Migration.Status]; the command cutover, the
// status page of package statuspage and the gauges of [Open] show the same
// figures. It is a plain value.
type Status struct {
	State           State                 // the stored state, settings included
	At              time.Time             // when it was read, by the store's clock
	Stages          []cutover.Stage       // the stages the phase allows, lowest first
	Backfill        BackfillProgress      // the backfill's rate, ETA and recent progress
	VerificationAge time.Duration         // since the last verification; 0 if there was none
	Verifying       *VerificationProgress // the verification running now; nil if none runs
	Repairs         RepairBacklog         // the repair log's backlog
	Instances       []Instance            // the instances seen within InstanceWindow, by id
	ByStage         map[cutover.Stage]int // how many of Instances resolve each stage
	Events          []Event               // the most recent history, newest first
	// Ceiling is the ceiling in force at At ([Migration.Demote]); nil if
	// none is, also when one is recorded past its cool-down, as
	// State.Ceiling shows.
	Ceiling *Ceiling
}

// BackfillProgress is how fast a backfill goes, as its runners measured
// it and recorded it in the metadata.
type BackfillProgress struct {
	Rate    float64       // rows per second over the recent batches; 0 if no runner copied lately
	ETA     time.Duration // the time left at Rate; 0 if done or unknown
	Samples []Sample      // rows copied over the recent past, oldest first
	// Ranges is how far the key ranges of a backfill split into ranges
	// (backfill.WithRanges) are; zero for a backfill that is not split.
	// The State.Backfill.Rows of a Status of a partitioned backfill that
	// is not done are the rows its ranges counted, at once, where those
	// of [Migration.State] are those its runners added up with their last
	// progress sample, at most ten seconds old while they copy.
	Ranges Ranges
}

// Ranges counts the key ranges of a partitioned backfill.
type Ranges struct {
	Total  int // the ranges the backfill is split into
	Done   int // ranges copied to their end
	Leased int // ranges not done that a runner holds a live lease of
}

// Sample is the progress of a backfill at one time.
type Sample struct {
	At   time.Time
	Rows int64
}

// VerificationProgress is how far a running verification is, as it
// recorded it in the metadata (see package verify): a [Status] holds one
// while a verification runs and recorded its progress within
// [VerifyingFresh].
type VerificationProgress struct {
	Started   time.Time     // when it started, by the store's clock
	Owner     string        // who runs it: an instance id, or the host name and process id
	Rows      int64         // rows of the old side compared so far
	Total     int64         // the rows it expects to compare, the backfill's total; 0 if unknown
	UpdatedAt time.Time     // when it last recorded its progress
	Rate      float64       // rows per second since it started; 0 before its first rows
	ETA       time.Duration // the time left at Rate; 0 if unknown or Rows reached Total
}

// VerifyingFresh is how old the last progress a running verification
// recorded may be for a [Status] to show it: one that stopped without
// clearing its mark, in a crash, shows no more once its last record is
// older.
const VerifyingFresh = time.Minute

// RepairBacklog is the repair log's backlog of a migration.
type RepairBacklog struct {
	Pending int64           // entries not yet repaired, stuck ones included
	Stuck   int64           // entries that used up their attempts
	Oldest  time.Time       // when the oldest pending entry was first recorded; zero if none
	History []BacklogSample // pending entries over the recent past, oldest first
}

// BacklogSample is the repair backlog at one time.
type BacklogSample struct {
	At      time.Time
	Pending int64
}

// statusEvents is how many of the most recent events a [Status] holds.
const statusEvents = 20

// The repair backlog's history in a [Status]: backlogSamples counts, one
// every backlogEvery, the last at the status's time.
const (
	backlogSamples = 30
	backlogEvery   = 2 * time.Minute
)

// rateFresh is how old the last progress sample of a backfill may be for
// the rate its runner recorded to count as the current one; the interval
// between the last two samples, three times over, if longer.
const rateFresh = time.Minute

// Status returns the migration's status, read from the metadata at one
// moment by the store's clock (see [WithClock]), with six statements
// whatever its history holds. It returns an error wrapping [ErrNotFound]
// if the migration was never created, and one wrapping [ErrCorrupt] for
// metadata the library never writes.
func (m *Migration) Status(ctx context.Context) (Status, error) {
	sts, err := m.s.statuses(ctx, m.h.Name, true, nil)
	if err != nil {
		return Status{}, err
	}
	if len(sts) == 0 {
		return Status{}, fmt.Errorf("%w: %q", ErrNotFound, m.h.Name)
	}
	return sts[0], nil
}

// Statuses returns the status of every migration of the store, by name,
// as [Migration.Status] does, with six statements whatever the number of
// migrations.
func (s *Store) Statuses(ctx context.Context) ([]Status, error) {
	return s.statuses(ctx, "", true, nil)
}

// Migrations returns the stored state of every migration of the store, by
// name, with one statement.
func (s *Store) Migrations(ctx context.Context) ([]State, error) {
	rows, err := s.rows(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	out := make([]State, len(rows))
	for i, r := range rows {
		if out[i], err = state(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rows reads the row of the migration name, or of every migration if name
// is "", by name. A corrupt row is an error wrapping [ErrCorrupt], unless
// skip is not nil: then it gets the error, and the row is left out.
func (s *Store) rows(ctx context.Context, name string, skip func(error)) ([]meta.Row, error) {
	k := s.m
	q, args := `SELECT `+meta.Columns+` FROM `+k.T.Migrations, []any(nil)
	if name != "" {
		q, args = q+` WHERE name = ?`, append(args, name)
	}
	var rows []meta.Row
	if err := k.DB.SelectContext(ctx, &rows, k.Q(q+` ORDER BY name`), args...); err != nil {
		return nil, fmt.Errorf("expandcontract: read migrations: %w", err)
	}
	good := rows[:0]
	for _, r := range rows {
		if err := r.Check(); err != nil {
			if skip == nil {
				return nil, err
			}
			skip(err)
			continue
		}
		good = append(good, r)
	}
	return good, nil
}

// statuses reads the status of the migration name, or of every migration
// if name is "", by name: with full, all of it; without, all but the
// repair backlog's history and the events, with four statements. Corrupt
// metadata is an error wrapping [ErrCorrupt], unless skip is not nil: then
// it gets the error, and the migration or instance is left out.
func (s *Store) statuses(ctx context.Context, name string, full bool, skip func(error)) ([]Status, error) {
	k := s.m
	at := k.Now()
	rows, err := s.rows(ctx, name, skip)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	counts, err := k.RepairCounts(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("expandcontract: count repairs: %w", err)
	}
	backlog := make(map[string]meta.RepairCount, len(counts))
	for _, c := range counts {
		backlog[c.Migration] = c
	}
	instances, err := s.instances(ctx, name, at, skip)
	if err != nil {
		return nil, err
	}
	rangeCounts, err := k.RangeCounts(ctx, name, meta.Micros(at))
	if err != nil {
		return nil, fmt.Errorf("expandcontract: count backfill ranges: %w", err)
	}
	parts := make(map[string]meta.RangeCount, len(rangeCounts))
	for _, c := range rangeCounts {
		parts[c.Migration] = c
	}
	var (
		times   []int64
		history map[string][]int64
		events  map[string][]Event
	)
	if full {
		for i := range backlogSamples {
			times = append(times, meta.Micros(at.Add(-time.Duration(backlogSamples-1-i)*backlogEvery)))
		}
		if history, err = k.RepairHistory(ctx, name, times); err != nil {
			return nil, fmt.Errorf("expandcontract: read the repair backlog's history: %w", err)
		}
		if events, err = s.recentEvents(ctx, name); err != nil {
			return nil, err
		}
	}
	out := make([]Status, len(rows))
	for i, r := range rows {
		c, split := parts[r.Name]
		if split && !r.DoneAt.Valid {
			// The ranges' rows, which the runners of a partitioned
			// backfill add up into the row with each progress sample.
			r.Rows = max(r.Rows, c.Rows)
		}
		st, err := state(r)
		if err != nil {
			return nil, err
		}
		if b := st.Backfill; b.Throttled != "" && !b.LeaseUntil.After(at) {
			st.Backfill.Throttled = "" // recorded by a runner whose lease ran out: it waits no more
		}
		lo, hi := st.Phase.Stages()
		rc := backlog[r.Name]
		out[i] = Status{
			State: st, At: at, Backfill: progress(r, at),
			Repairs:   RepairBacklog{Pending: rc.Pending, Stuck: rc.Stuck, Oldest: meta.FromMicros(rc.Oldest)},
			Instances: instances[r.Name], ByStage: map[cutover.Stage]int{}, Events: events[r.Name],
		}
		if split {
			out[i].Backfill.Ranges = Ranges{Total: int(c.Total), Done: int(c.Done), Leased: int(c.Leased)}
		}
		if st.Ceiling.Active(at) {
			out[i].Ceiling = st.Ceiling
		}
		for stage := lo; stage <= hi; stage++ {
			out[i].Stages = append(out[i].Stages, stage)
		}
		if v := st.Verification.At; !v.IsZero() {
			out[i].VerificationAge = max(0, at.Sub(v))
		}
		out[i].Verifying = verifying(r, at)
		for _, in := range out[i].Instances {
			out[i].ByStage[in.Stage]++
		}
		if full {
			h := history[r.Name]
			for j, t := range times {
				b := BacklogSample{At: time.UnixMicro(t).UTC()}
				if h != nil {
					b.Pending = h[j]
				}
				out[i].Repairs.History = append(out[i].Repairs.History, b)
			}
		}
	}
	return out, nil
}

// progress returns the backfill's progress as r records it, at the time
// at: the rate its runner recorded, if its last sample is recent and the
// backfill neither done, paused nor canceled, the ETA at that rate, and
// the samples. Samples the library cannot read are left out: the runner
// starts them anew.
func progress(r meta.Row, at time.Time) BackfillProgress {
	var p BackfillProgress
	samples, _ := meta.DecodeSamples(r.Samples.String)
	for _, s := range samples {
		p.Samples = append(p.Samples, Sample{At: time.UnixMicro(s.At).UTC(), Rows: s.Rows})
	}
	if n := len(p.Samples); n > 0 && !r.DoneAt.Valid && r.Paused == 0 && r.Canceled == 0 {
		fresh := rateFresh
		if n > 1 {
			fresh = max(fresh, 3*p.Samples[n-1].At.Sub(p.Samples[n-2].At))
		}
		if at.Sub(p.Samples[n-1].At) <= fresh {
			p.Rate = r.Rate
		}
	}
	p.ETA = eta(r.Total-r.Rows, p.Rate)
	return p
}

// verifying returns the progress of the verification that r records as
// running at the time at, or nil if none is, or if its last record is
// older than VerifyingFresh.
func verifying(r meta.Row, at time.Time) *VerificationProgress {
	if !r.RunStarted.Valid || !r.RunAt.Valid {
		return nil
	}
	p := &VerificationProgress{Started: meta.FromMicros(r.RunStarted), Owner: r.RunOwner.String,
		Rows: max(0, r.RunRows), Total: max(0, r.RunTotal), UpdatedAt: meta.FromMicros(r.RunAt)}
	if at.Sub(p.UpdatedAt) > VerifyingFresh {
		return nil
	}
	if secs := p.UpdatedAt.Sub(p.Started).Seconds(); secs > 0 && p.Rows > 0 {
		p.Rate = float64(p.Rows) / secs
	}
	p.ETA = eta(p.Total-p.Rows, p.Rate)
	return p
}

// eta returns how long left rows take at rate rows per second, or 0 if
// none are left or the rate is unknown.
func eta(left int64, rate float64) time.Duration {
	if rate <= 0 || left <= 0 {
		return 0
	}
	secs := float64(left) / rate
	if secs >= time.Duration(math.MaxInt64).Seconds() {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(secs * float64(time.Second))
}
