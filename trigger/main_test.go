package trigger_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, then fails the run if a goroutine that they or
// the code under test started is still running: every goroutine must stop
// on every exit path.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
