package trigger

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

// DemoteTo returns the [DemoteFunc] that puts the whole fleet under
// ceiling for coolDown when a trigger fires: it writes the ceiling into m's
// metadata with [expandcontract.Migration.Demote], with the trigger's kind
// as its name, the firing's figures and the monitor's instance (the host
// name if the monitor has none), so that every instance's
// [expandcontract.Bound] applies it within its TTL. Two instances firing
// at once make one demotion; a demotion the metadata does not take (one
// in force is as low, or a lift was recent, which the history records as
// held) is not an error but a skipped [Result] that says why. The ceiling
// must be a stage below complete and coolDown positive; otherwise the
// error wraps [ErrInvalidInput].
func DemoteTo(m *expandcontract.Migration, ceiling cutover.Stage, coolDown time.Duration) (DemoteFunc, error) {
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: nil migration", ErrInvalidInput)
	case !ceiling.Valid() || ceiling == cutover.Complete:
		return nil, fmt.Errorf("%w: ceiling %v is not a stage below complete", ErrInvalidInput, ceiling)
	case coolDown <= 0:
		return nil, fmt.Errorf("%w: cool-down %v is not positive", ErrInvalidInput, coolDown)
	}
	return func(ctx context.Context, f Firing) (Result, error) {
		applied, why, err := m.Demote(ctx, expandcontract.Demotion{Ceiling: ceiling, Trigger: f.Rule.Kind.String(),
			Figures: f.String(), Instance: instanceOf(f), CoolDown: coolDown})
		switch {
		case err != nil:
			return Result{}, fmt.Errorf("trigger: demote %q to %v: %w", m.Name(), ceiling, err)
		case !applied:
			return Result{Skipped: true, Detail: "not applied: " + why}, nil
		}
		return Result{Detail: fmt.Sprintf("ceiling %s for %s", ceiling, coolDown)}, nil
	}, nil
}

// instanceOf returns the instance that f names for the history: the
// monitor's, or the host name if it has none.
func instanceOf(f Firing) string {
	instance := f.Instance
	if instance == "" {
		instance, _ = os.Hostname()
	}
	if instance == "" {
		instance = "unknown"
	}
	return instance
}

// recordAlarm records the alarm of f in m's history, at most once per the
// rule's window for the whole fleet.
func recordAlarm(ctx context.Context, m *expandcontract.Migration, f Firing) (Result, error) {
	recorded, why, err := m.Alarm(ctx, expandcontract.Alarm{Trigger: f.Rule.Kind.String(), Figures: f.String(),
		Instance: instanceOf(f), Quiet: f.Rule.Window})
	switch {
	case err != nil:
		return Result{}, fmt.Errorf("trigger: record the alarm of %q: %w", m.Name(), err)
	case !recorded:
		return Result{Skipped: true, Detail: "not recorded: " + why}, nil
	}
	return Result{Detail: "recorded in the history"}, nil
}
