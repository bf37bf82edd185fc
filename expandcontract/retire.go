package expandcontract

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/internal/telemetry"
)

// Retire asks for the removal of what the old store left behind, such as
// the old column of a rename, once nothing uses it any more.
type Retire struct {
	Actor  string // who asks, recorded in the history; required
	Reason string // why, recorded in the history
	// SQL lists the statements that remove the old store, such as ALTER
	// TABLE ... DROP COLUMN or DROP INDEX CONCURRENTLY, one to an entry.
	// They are checked and run as those of a [Move] are (see Move.SQL),
	// with the phase staying contract: on PostgreSQL those up to the last
	// that cannot run in a transaction block run first, on a connection of
	// their own, and the rest in the transaction that records the retire;
	// on MySQL each runs on its own; on SQLite all run in that transaction.
	// Those that run before the rest are recorded done ("ddl" events), and
	// a retire tried again after a failure skips them.
	SQL []string
	// Overrides lets statements of SQL run although they break a
	// lock-safety rule of [lockcheck.Check]; each one used is recorded in
	// the history as an event of kind "override".
	Overrides []lockcheck.Override
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
// the history. A statement that would lock or rewrite a busy table, by the
// rules of [lockcheck.Check], refuses the retire with an error wrapping
// [lockcheck.ErrUnsafe], recorded in the history, unless an override lets
// it through.
//
// With a tracer provider ([WithTracerProvider]), a retire is a span named
// cutover.expandcontract.retire, with a child per statement it runs.
func (m *Migration) Retire(ctx context.Context, r Retire) (err error) {
	ctx, span := m.s.tracer.Start(ctx, spanRetire, trace.WithAttributes(telemetry.KeyMigration.String(m.h.Name),
		keyForced.Bool(r.Force), keyStatements.Int(len(r.SQL))))
	defer func() { telemetry.EndSpan(span, moveOutcome(err), err) }()
	return m.retire(ctx, span, r)
}

// retire is Retire, in span.
func (m *Migration) retire(ctx context.Context, span trace.Span, r Retire) error {
	switch {
	case strings.TrimSpace(r.Actor) == "":
		return fmt.Errorf("%w: retiring needs an actor", ErrInvalidInput)
	case len(r.SQL) == 0:
		return fmt.Errorf("%w: nothing to run", ErrInvalidInput)
	}
	if err := checkStatements(r.SQL); err != nil {
		return err
	}
	stmts, unsafe, err := m.s.checkLocks(ctx, r.SQL, r.Overrides)
	if err != nil {
		return err
	}
	st, err := m.State(ctx)
	if err != nil {
		return err
	}
	span.SetAttributes(telemetry.KeyPhaseFrom.String(st.Phase.String()), telemetry.KeyPhaseTo.String(st.Phase.String()))
	k := m.s.m
	refuse := func(refusal error) error {
		ev := Event{Actor: r.Actor, Kind: "refuse", From: st.Phase, To: st.Phase,
			Version: st.Version, Reason: r.Reason, Detail: "retire: " + refusal.Error()}
		if err := m.addEvent(ctx, k.DB, ev); err != nil {
			return fmt.Errorf("%w (and recording the refusal failed: %v)", refusal, err)
		}
		return refusal
	}
	guard := func(kind error, why string) error {
		return refuse(&MoveError{Migration: m.h.Name, From: st.Phase, To: st.Phase, Reason: why, kind: kind})
	}
	if st.Phase != Contract {
		return guard(ErrIllegalMove, "the old store is retired only in contract")
	}
	touching, err := m.instancesTouchingOld(ctx)
	if err != nil {
		return err
	}
	detail := ""
	if len(touching) > 0 {
		why := "instances still resolving stages that use the old store: " + strings.Join(touching, ", ")
		if !r.Force {
			return guard(ErrGuard, why)
		}
		detail = "forced: " + why
	}
	if unsafe != nil {
		return refuse(fmt.Errorf("expandcontract: %q, retire: %w", m.h.Name, unsafe))
	}
	kind := "retire"
	if r.Force {
		kind = "force"
	}
	ev := Event{Actor: r.Actor, Kind: kind, From: Contract, To: Contract, Version: st.Version, Reason: r.Reason, Detail: detail}
	run := &ddlRun{m: m, from: Contract, to: Contract, version: st.Version, actor: r.Actor, reason: r.Reason, stmts: stmts}
	return run.do(ctx, &ev, nil)
}
