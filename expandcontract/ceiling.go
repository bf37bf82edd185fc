package expandcontract

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// Ceiling is a fleet-wide demotion of a migration: the highest stage that
// flags may select while it is in force, whatever the phase allows, set by
// [Migration.Demote] when a trigger fires. Every [Bound] applies it within
// its TTL. It is in force until Until, the end of its cool-down, by the
// store's clock; after that it no longer applies, and stays recorded until
// the next [Migration.Lift] or move clears it. It is a plain value.
type Ceiling struct {
	Stage    cutover.Stage // no stage above it is selected
	SetAt    time.Time     // when it was set, by the store's clock
	Until    time.Time     // the end of its cool-down
	Trigger  string        // the name of the trigger that set it
	Figures  string        // what the trigger measured, as a short text
	Instance string        // the instance that set it
}

// Active reports whether the ceiling is in force at the time at: before
// the end of its cool-down.
func (c *Ceiling) Active(at time.Time) bool { return c != nil && at.Before(c.Until) }

// String describes the ceiling, as the history records it.
func (c *Ceiling) String() string {
	if c == nil {
		return "no ceiling"
	}
	s := fmt.Sprintf("ceiling %s until %s, set by trigger %s on %s", c.Stage, c.Until.Format(time.RFC3339Nano),
		c.Trigger, c.Instance)
	if c.Figures != "" {
		s += ": " + c.Figures
	}
	return s
}

// MaxDemotionFigures caps the length in bytes of [Demotion.Figures].
const MaxDemotionFigures = 1024

// Demotion asks for a ceiling on the stages of a migration: see
// [Migration.Demote].
type Demotion struct {
	// Ceiling is the highest stage allowed: any stage but complete, which
	// would bound nothing. Required.
	Ceiling cutover.Stage
	// Trigger names what fired, such as "new-store-errors"; 1 to 255
	// bytes of UTF-8 without control characters. Required.
	Trigger string
	// Figures says what the trigger measured, such as "error rate 12% over
	// 1m (limit 5%)"; up to [MaxDemotionFigures] bytes of UTF-8. Optional.
	Figures string
	// Instance is the id of the instance that demotes, recorded as the
	// actor of the history event; as a trigger's name. Required.
	Instance string
	// CoolDown is how long the ceiling stays in force. It must be
	// positive.
	CoolDown time.Duration
	// Quiet is the quiet period after a lift within which a demotion is
	// refused, so that a trigger whose windows still hold the figures of
	// before the lift does not demote again at once; zero means CoolDown.
	// It must not be negative.
	Quiet time.Duration
	// Force sets the ceiling within the quiet period after a lift.
	Force bool
}

// check refuses a demotion that is bad input.
func (d Demotion) check() error {
	switch {
	case !d.Ceiling.Valid():
		return fmt.Errorf("%w: demotion ceiling: %w %v", ErrInvalidInput, cutover.ErrUnknownStage, d.Ceiling)
	case d.Ceiling == cutover.Complete:
		return fmt.Errorf("%w: demotion ceiling complete bounds nothing; want off to rampdown", ErrInvalidInput)
	case d.CoolDown <= 0:
		return fmt.Errorf("%w: demotion cool-down must be positive, got %v", ErrInvalidInput, d.CoolDown)
	}
	return checkFiring("demotion", d.Trigger, d.Figures, d.Instance, d.Quiet)
}

// checkFiring refuses the trigger, figures, instance and quiet period of a
// demotion or an alarm (what) that are bad input.
func checkFiring(what, trigger, figures, instance string, quiet time.Duration) error {
	switch {
	case quiet < 0:
		return fmt.Errorf("%w: %s quiet period must not be negative, got %v", ErrInvalidInput, what, quiet)
	case len(figures) > MaxDemotionFigures || !utf8.ValidString(figures):
		return fmt.Errorf("%w: %s figures must be up to %d bytes of UTF-8, got %d bytes",
			ErrInvalidInput, what, MaxDemotionFigures, len(figures))
	}
	if err := checkName(what+" trigger", trigger); err != nil {
		return err
	}
	return checkName("instance id", instance)
}

// Demote sets a ceiling on the stages of the migration, as d asks, and
// reports whether it did and, if it did not, why, such as "a ceiling of
// shadow is in force until ..."; why is empty when it did. It sets it if
// no ceiling is in force, or if d's is lower than the one in force;
// otherwise it returns false and changes nothing. It records a history
// event of kind "demote", with d's instance as actor, its trigger as
// reason, and the ceiling, its cool-down and its figures as detail.
//
// The hysteresis rule: while no ceiling is in force, a demotion within
// the quiet period after the last lift ([Migration.Lift], or a move that
// cleared a ceiling) is refused, with false, unless d.Force. A lower
// ceiling over one in force is never refused by it. A demotion the quiet
// period refuses is recorded, as an event of kind "held" with the same
// actor, reason and figures, once per trigger per lift: the history then
// says that a trigger still fires after the lift, and the fleet stays
// where the operator put it. A demotion that loses the race to another,
// or finds a ceiling as low in force, records nothing: the ceiling's own
// event is the record.
//
// Demote is a compare-and-swap on the ceiling, in a transaction that
// holds the migration's row locked: of any number of instances demoting
// at once, one sets its ceiling and records one event, and the others get
// false without error, unless theirs is lower still. It returns an error
// wrapping [ErrNotFound] if the migration was never created, and one
// wrapping [ErrInvalidInput], changing nothing, for bad input: a ceiling
// that is not a stage or is complete, an empty or invalid trigger or
// instance, figures too long, a cool-down that is not positive, a
// negative quiet period.
func (m *Migration) Demote(ctx context.Context, d Demotion) (applied bool, why string, err error) {
	if err := d.check(); err != nil {
		return false, "", err
	}
	if d.Quiet == 0 {
		d.Quiet = d.CoolDown
	}
	k := m.s.m
	err = k.InTx(ctx, func(tx *sqlx.Tx) error {
		st, err := m.lockedState(ctx, tx)
		if err != nil {
			return err
		}
		now := k.Now()
		var held bool
		if why, held = demotionRefused(st, d, now); why != "" {
			if held {
				return m.recordHeld(ctx, tx, st, d)
			}
			return nil
		}
		c := &Ceiling{Stage: d.Ceiling, SetAt: now, Until: now.Add(d.CoolDown), Trigger: d.Trigger,
			Figures: d.Figures, Instance: d.Instance}
		res, err := tx.ExecContext(ctx, k.Q(`UPDATE `+k.T.Migrations+` SET ceiling_stage = ?, ceiling_set_at = ?,
			ceiling_until = ?, ceiling_trigger = ?, ceiling_figures = ?, ceiling_instance = ?,
			ceiling_version = ceiling_version + 1, updated_at = ? WHERE name = ? AND ceiling_version = ?`),
			c.Stage.String(), meta.Micros(c.SetAt), meta.Micros(c.Until), c.Trigger, c.Figures, c.Instance,
			meta.Micros(now), m.h.Name, st.ceilingVersion)
		if err != nil {
			return fmt.Errorf("expandcontract: demote %q: %w", m.h.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			why = "another demotion or lift came first"
			return nil
		}
		applied = true
		detail := fmt.Sprintf("%s (cool-down %s)", c, d.CoolDown)
		if d.Force {
			detail += "; forced"
		}
		ev := Event{Actor: d.Instance, Kind: "demote", From: st.Phase, To: st.Phase, Version: st.Version,
			Reason: d.Trigger, Detail: detail}
		if err := m.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record demotion of %q: %w", m.h.Name, err)
		}
		return nil
	})
	if err != nil {
		return false, "", err
	}
	if applied {
		k.Logger.WarnContext(ctx, "cutover: migration demoted", "migration", m.h.Name, "ceiling", d.Ceiling.String(),
			"trigger", d.Trigger, "figures", d.Figures, "instance", d.Instance, "cool_down", d.CoolDown)
	} else {
		k.Logger.InfoContext(ctx, "cutover: demotion not applied", "migration", m.h.Name, "ceiling", d.Ceiling.String(),
			"trigger", d.Trigger, "instance", d.Instance, "why", why)
	}
	return applied, why, nil
}

// recordHeld records, in tx, that the quiet period after the lift of st
// held the demotion d back, unless a demotion of d's trigger held back
// since that lift is recorded already.
func (m *Migration) recordHeld(ctx context.Context, tx *sqlx.Tx, st lockedState, d Demotion) error {
	last, err := m.lastEvent(ctx, tx, "held", d.Trigger, st.LiftedAt)
	if err != nil || last != nil {
		return err
	}
	detail := fmt.Sprintf("demotion to %s held by the quiet period of %s after the lift at %s", d.Ceiling, d.Quiet,
		st.LiftedAt.Format(time.RFC3339Nano))
	if d.Figures != "" {
		detail += ": " + d.Figures
	}
	ev := Event{Actor: d.Instance, Kind: "held", From: st.Phase, To: st.Phase, Version: st.Version,
		Reason: d.Trigger, Detail: detail}
	if err := m.addEvent(ctx, tx, ev); err != nil {
		return fmt.Errorf("expandcontract: record the held demotion of %q: %w", m.h.Name, err)
	}
	return nil
}

// demotionRefused says why d may not set its ceiling on the migration st
// at the time now, or "" if it may, and whether the quiet period after a
// lift is why.
func demotionRefused(st lockedState, d Demotion, now time.Time) (why string, held bool) {
	switch c := st.Ceiling; {
	case c.Active(now) && d.Ceiling >= c.Stage:
		return fmt.Sprintf("a ceiling of %s set by trigger %s on %s is in force until %s", c.Stage, c.Trigger, c.Instance,
			c.Until.Format(time.RFC3339Nano)), false
	case c.Active(now):
		return "", false
	case !d.Force && !st.LiftedAt.IsZero() && now.Before(st.LiftedAt.Add(d.Quiet)):
		return fmt.Sprintf("within the quiet period of %s after the lift at %s", d.Quiet, st.LiftedAt.Format(time.RFC3339Nano)), true
	}
	return "", false
}

// Lift clears the migration's ceiling, in force or past its cool-down,
// and reports whether there was one to clear. It records a history event
// of kind "lift" with actor and reason, whose detail describes the
// ceiling, and starts the quiet period of [Migration.Demote]. Without a
// ceiling it returns false and changes nothing. An empty actor is bad
// input: the error wraps [ErrInvalidInput] and nothing changes. It
// returns an error wrapping [ErrNotFound] if the migration was never
// created.
func (m *Migration) Lift(ctx context.Context, actor, reason string) (lifted bool, err error) {
	if strings.TrimSpace(actor) == "" {
		return false, fmt.Errorf("%w: a lift needs an actor", ErrInvalidInput)
	}
	k := m.s.m
	err = k.InTx(ctx, func(tx *sqlx.Tx) error {
		st, err := m.lockedState(ctx, tx)
		if err != nil {
			return err
		}
		detail, err := m.clearCeiling(ctx, tx, st)
		if err != nil || detail == "" {
			return err
		}
		lifted = true
		ev := Event{Actor: actor, Kind: "lift", From: st.Phase, To: st.Phase, Version: st.Version,
			Reason: reason, Detail: detail}
		if err := m.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record lift of %q: %w", m.h.Name, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if lifted {
		k.Logger.InfoContext(ctx, "cutover: migration ceiling lifted", "migration", m.h.Name, "actor", actor, "reason", reason)
	}
	return lifted, nil
}

// lockedState is a migration's state read in a transaction that holds
// its row locked, with the ceiling's compare-and-swap token.
type lockedState struct {
	State
	ceilingVersion int64
}

// lockedState reads the migration's state in tx, locking its row.
func (m *Migration) lockedState(ctx context.Context, tx *sqlx.Tx) (lockedState, error) {
	r, err := m.s.m.GetForUpdate(ctx, tx, m.h.Name)
	if err != nil {
		return lockedState{}, err
	}
	st, err := state(r)
	return lockedState{State: st, ceilingVersion: r.CeilingVersion}, err
}

// clearCeiling clears the ceiling of st, read in tx, and records the lift's
// time. It returns what it cleared, as an event's detail says it, or ""
// if st has no ceiling.
func (m *Migration) clearCeiling(ctx context.Context, tx *sqlx.Tx, st lockedState) (string, error) {
	c := st.Ceiling
	if c == nil {
		return "", nil
	}
	k := m.s.m
	now := k.Now()
	res, err := tx.ExecContext(ctx, k.Q(`UPDATE `+k.T.Migrations+` SET ceiling_stage = NULL, ceiling_set_at = NULL,
		ceiling_until = NULL, ceiling_trigger = NULL, ceiling_figures = NULL, ceiling_instance = NULL,
		ceiling_lifted_at = ?, ceiling_version = ceiling_version + 1, updated_at = ? WHERE name = ? AND ceiling_version = ?`),
		meta.Micros(now), meta.Micros(now), m.h.Name, st.ceilingVersion)
	if err != nil {
		return "", fmt.Errorf("expandcontract: lift the ceiling of %q: %w", m.h.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// The row is locked: nothing else can have changed the ceiling.
		return "", fmt.Errorf("%w: the ceiling of %q changed while its row was locked", ErrConflict, m.h.Name)
	}
	detail := "lifted " + c.String()
	if !c.Active(now) {
		detail += " (its cool-down had ended)"
	}
	return detail, nil
}

// ceiling converts the ceiling columns of a scanned row: nil if none is
// set.
func ceiling(r meta.Row) (*Ceiling, error) {
	if !r.CeilingStage.Valid {
		return nil, nil
	}
	stage, err := cutover.ParseStage(r.CeilingStage.String)
	if err != nil {
		return nil, fmt.Errorf("%w: migration %q: ceiling: %w", ErrCorrupt, r.Name, err)
	}
	return &Ceiling{Stage: stage, SetAt: meta.FromMicros(r.CeilingSetAt), Until: meta.FromMicros(r.CeilingUntil),
		Trigger: r.CeilingTrigger.String, Figures: r.CeilingFigures.String, Instance: r.CeilingInstance.String}, nil
}
