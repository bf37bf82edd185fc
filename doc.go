// Package cutover moves an application's data from an old store to a new
// one (another database, another table, another column) while the
// application keeps serving: no maintenance window, a way back at every
// step, and no write lost.
//
// The unit of control is the [Stage]. For each operation of each request a
// stage says which store is authoritative, whose answer the caller gets, and
// which one is secondary. A feature flag holds it (see package flags), so a
// flag owner moves a migration forward or back, for everyone or for a
// share of users, by changing one value:
//
//	stage      writes                         reads: returned / compared
//	off        old only                       old / -
//	dualwrite  old (authoritative), then new  old / -
//	shadow     old (authoritative), then new  old / new
//	live       new (authoritative), then old  new / old
//	rampdown   new (authoritative), then old  new / -
//	complete   new only                       new / -
//
// The stage strings are the values of LaunchDarkly's migration flags, so a
// flag that already drives such a migration drives this library unchanged.
//
// The subpackages do the work:
//
//   - flags resolves the stage of a request from an OpenFeature flag, with
//     the request's targeting key, and falls back to a safe stage when the
//     flag cannot be read; flags/flagstest is an in-memory flag set for tests.
//   - dualwrite writes both stores in stage order. A secondary write that
//     fails never fails the request by default and is never lost: its key
//     goes to a [RepairLog].
//   - shadowread returns the authoritative answer untouched and compares it
//     with the other store's, off the request's path, reporting mismatches.
//   - breaker keeps calls off a failing new store; in live and rampdown the
//     old store answers in its place.
//   - dualwrite/dualwritetest has fake stores with fault injection for tests.
//
// The root package holds only the vocabulary they share: [Stage], [Side],
// [StageSource] and the repair log. It imports none of them.
//
// Every call takes a context.Context first. Calls to a secondary store and
// shadow reads run on a context that the caller's cancellation does not
// reach, under a timeout of their own, so that a finished request does not
// cut them short and a slow new store never holds the caller. A panic of
// the new store before complete, or of the old store where it is not
// authoritative, is a failure like any other (see [PanicError]); only the
// panic of the store the caller would use without the library goes on to
// the caller. Telemetry
// goes to the OpenTelemetry meter and tracer providers and the slog logger
// given as options, and to the global ones by default.
package cutover
