package statuspage

import (
	"context"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
)

// storeSource is the source of a page over an expandcontract.Store.
type storeSource struct{ s *expandcontract.Store }

func (src storeSource) statuses(ctx context.Context) ([]expandcontract.Status, error) {
	return src.s.Statuses(ctx)
}

func (src storeSource) status(ctx context.Context, name string) (expandcontract.Status, error) {
	m, err := src.migration(name)
	if err != nil {
		return expandcontract.Status{}, err
	}
	return m.Status(ctx)
}

func (src storeSource) act(ctx context.Context, name string, a action) error {
	m, err := src.migration(name)
	if err != nil {
		return err
	}
	switch a.kind {
	case actPause:
		return backfill.Pause(ctx, m, a.actor, a.reason)
	case actResume:
		return backfill.Resume(ctx, m, a.actor, a.reason)
	case actRate:
		return backfill.SetRate(ctx, m, a.rate, a.actor, a.reason)
	case actBatchSize:
		return backfill.SetBatchSize(ctx, m, a.size, a.actor, a.reason)
	case actMove:
		_, err := m.Move(ctx, expandcontract.Move{To: a.to, Actor: a.actor, Reason: a.reason, Version: a.version})
		return err
	case actLift:
		_, err := m.Lift(ctx, a.actor, a.reason)
		return err
	}
	return fmt.Errorf("statuspage: unknown action %d", a.kind)
}

// migration returns the handle of the migration name. A name no
// migration can have is one that is not found.
func (src storeSource) migration(name string) (*expandcontract.Migration, error) {
	m, err := src.s.Migration(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", expandcontract.ErrNotFound, err)
	}
	return m, nil
}
