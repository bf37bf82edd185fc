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
// in force is as low, or a lift was recent) is not an error. The ceiling
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
	return func(ctx context.Context, f Firing) error {
		instance := f.Instance
		if instance == "" {
			instance, _ = os.Hostname()
		}
		if instance == "" {
			instance = "unknown"
		}
		_, err := m.Demote(ctx, expandcontract.Demotion{Ceiling: ceiling, Trigger: f.Rule.Kind.String(),
			Figures: f.String(), Instance: instance, CoolDown: coolDown})
		if err != nil {
			return fmt.Errorf("trigger: demote %q to %v: %w", m.Name(), ceiling, err)
		}
		return nil
	}, nil
}
