package expandcontract

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract/internal/meta"
)

// DefaultAlarmQuiet is the quiet period of an [Alarm] whose Quiet is zero.
const DefaultAlarmQuiet = 10 * time.Minute

// Alarm is a trigger's call for a person to decide, such as a latency
// that doubled, to record in a migration's history with
// [Migration.Alarm]. It changes nothing else: the stages stay as they are.
type Alarm struct {
	// Trigger names what fired, such as "latency"; 1 to 255 bytes of UTF-8
	// without control characters. Required.
	Trigger string
	// Figures says what the trigger measured; up to [MaxDemotionFigures]
	// bytes of UTF-8. Optional.
	Figures string
	// Instance is the id of the instance whose trigger fired, recorded as
	// the actor of the history event; as a trigger's name. Required.
	Instance string
	// Quiet is the quiet period: an alarm of a trigger is not recorded
	// within it after the last one of the same trigger, from any
	// instance, so that a fleet whose every instance sees the same
	// figures, evaluation after evaluation, records it once. Zero means
	// [DefaultAlarmQuiet]; it must not be negative.
	Quiet time.Duration
}

// check refuses an alarm that is bad input.
func (a Alarm) check() error { return checkFiring("alarm", a.Trigger, a.Figures, a.Instance, a.Quiet) }

// Alarm records a in the migration's history, as an event of kind
// "alarm" with a's instance as actor, its trigger as reason and its
// figures as detail, and reports whether it did. Within the quiet period
// after an alarm of the same trigger, recorded by any instance, it records
// nothing and returns false with the reason, such as "an alarm of trigger
// latency was recorded at ... by api-1, within the quiet period of 10m0s";
// the reason is empty when it records. The check and the record are one
// transaction that holds the migration's row locked, so that instances
// raising the same alarm at once record it once.
//
// It returns an error wrapping [ErrNotFound] if the migration was never
// created, and one wrapping [ErrInvalidInput], changing nothing, for bad
// input: an empty or invalid trigger or instance, figures too long, a
// negative quiet period.
func (m *Migration) Alarm(ctx context.Context, a Alarm) (recorded bool, why string, err error) {
	if err := a.check(); err != nil {
		return false, "", err
	}
	if a.Quiet == 0 {
		a.Quiet = DefaultAlarmQuiet
	}
	k := m.s.m
	err = k.InTx(ctx, func(tx *sqlx.Tx) error {
		st, err := m.lockedState(ctx, tx)
		if err != nil {
			return err
		}
		now := k.Now()
		// Times are kept in microseconds: an alarm exactly a quiet period
		// old is outside it.
		last, err := m.lastEvent(ctx, tx, "alarm", a.Trigger, now.Add(time.Microsecond-a.Quiet))
		if err != nil || last != nil {
			if last != nil {
				why = fmt.Sprintf("an alarm of trigger %s was recorded at %s by %s, within the quiet period of %s",
					a.Trigger, last.At.Format(time.RFC3339Nano), last.Actor, a.Quiet)
			}
			return err
		}
		recorded = true
		ev := Event{Actor: a.Instance, Kind: "alarm", From: st.Phase, To: st.Phase, Version: st.Version,
			Reason: a.Trigger, Detail: a.Figures}
		if err := m.addEvent(ctx, tx, ev); err != nil {
			return fmt.Errorf("expandcontract: record alarm of %q: %w", m.h.Name, err)
		}
		return nil
	})
	if err != nil {
		return false, "", err
	}
	if recorded {
		k.Logger.WarnContext(ctx, "cutover: migration alarm", "migration", m.h.Name, "trigger", a.Trigger,
			"figures", a.Figures, "instance", a.Instance)
	}
	return recorded, why, nil
}

// lastEvent returns the migration's last event of kind with reason at or
// after since, read in tx, or nil if there is none.
func (m *Migration) lastEvent(ctx context.Context, tx *sqlx.Tx, kind, reason string, since time.Time) (*Event, error) {
	k := m.s.m
	var r eventRow
	err := tx.GetContext(ctx, &r, k.Q(`SELECT `+eventColumns+` FROM `+k.T.Events+
		` WHERE migration = ? AND kind = ? AND reason = ? AND at >= ? ORDER BY id DESC LIMIT 1`),
		m.h.Name, kind, reason, meta.Micros(since))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("expandcontract: read the last %s event of %q: %w", kind, m.h.Name, err)
	}
	ev, err := r.event()
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
