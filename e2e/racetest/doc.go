// Package racetest holds tests, and nothing else, of what happens when
// writes to the same keys race each other while cutover dual writes,
// backfills, shadow-reads, verifies and repairs, on real SQLite, PostgreSQL
// and MariaDB databases.
//
// The tests that must prove an interleaving can happen force it: hooks in
// the store functions hold one call until another has finished, so the
// outcome does not depend on the scheduler. Randomized tests then let many
// goroutines write the same keys with jitter and check the end state the
// library promises: once writes stop, a verification finds every key the
// stores disagree on, the repair log's repairer fixes them, and a second
// verification is clean.
//
// docs/guarantees.md states the guarantees these tests demonstrate and
// names the test behind each claim.
package racetest
