// Package dualwritetest provides fake backends for testing migration code,
// in the manner of net/http/httptest.
//
// A [Store] is an in-memory keyed store that records every call made to it
// and can be told to misbehave: fail, panic, answer slowly, block until the
// test lets it go, or return values that have drifted from what was written.
// A [Pair] holds the old and the new store of one migration and reports the
// keys on which they disagree.
//
// Tests never need to sleep: [Store.Hold] blocks calls until released,
// and [Store.WaitStarted] and [Store.WaitCalls] wait for calls to start
// or finish.
package dualwritetest
