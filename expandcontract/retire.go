package expandcontract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// Retire asks for the removal of what the old store left behind, such as
// the old column of a rename, once nothing uses it any more.
type Retire struct {
	Actor  string   // who asks, recorded in the history; required
	Reason string   // why, recorded in the history
	SQL    []string // the statements that remove the old store, such as ALTER TABLE ... DROP COLUMN
	// Force runs the statements even while some instance still reports a
	// stage that uses the old store.
	Force bool
}

// Retire runs r.SQL for the migration, which must be in [Contract].
// Moving to contract only stops flags from selecting any stage but complete;
// instances see that within their [Bound]'s TTL. Retire is the step after:
// it refuses, with an error wrapping [ErrGuard], while any instance that
// reported its stage in the last [InstanceWindow] still resolves a stage
// other than complete, so that no running code writes to or reads from a
// column or table as it is dropped. The statements run under the store's
// lock timeout, with retries, like those of a [Move], and are recorded in
// the history.
func (m *Migration) Retire(ctx context.Context, r Retire) error {
	switch {
	case strings.TrimSpace(r.Actor) == "":
		return fmt.Errorf("%w: retiring needs an actor", ErrInvalidInput)
	case len(r.SQL) == 0:
		return fmt.Errorf("%w: nothing to run", ErrInvalidInput)
	}
	if err := checkStatements(r.SQL); err != nil {
		return err
	}
	st, err := m.State(ctx)
	if err != nil {
		return err
	}
	k := m.s.m
	refuse := func(kind error, why string) error {
		me := &MoveError{Migration: m.h.Name, From: st.Phase, To: st.Phase, Reason: why, kind: kind}
		ev := Event{Actor: r.Actor, Kind: "refuse", From: st.Phase, To: st.Phase,
			Version: st.Version, Reason: r.Reason, Detail: "retire: " + me.Error()}
		if err := m.addEvent(ctx, k.DB, ev); err != nil {
			return fmt.Errorf("%w (and recording the refusal failed: %v)", me, err)
		}
		return me
	}
	if st.Phase != Contract {
		return refuse(ErrIllegalMove, "the old store is retired only in contract")
	}
	touching, err := m.instancesTouchingOld(ctx)
	if err != nil {
		return err
	}
	detail := ""
	if len(touching) > 0 {
		why := "instances still resolving stages that use the old store: " + strings.Join(touching, ", ")
		if !r.Force {
			return refuse(ErrGuard, why)
		}
		detail = "forced: " + why
	}
	kind := "retire"
	if r.Force {
		kind = "force"
	}
	ev := Event{Actor: r.Actor, Kind: kind, From: Contract, To: Contract, Version: st.Version, Reason: r.Reason, Detail: detail}
	return m.withLockRetries(ctx, Contract, func() error {
		if k.Dialect.Name() == "mysql" {
			if err := m.s.runOnConn(ctx, r.SQL); err != nil {
				return err
			}
			return m.addEvent(ctx, k.DB, ev)
		}
		return k.InTx(ctx, func(tx *sqlx.Tx) error {
			if err := m.s.runInTx(ctx, tx, m.h.Name, Contract, r.SQL); err != nil {
				return err
			}
			return m.addEvent(ctx, tx, ev)
		})
	})
}
