package diff

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, then fails the run if a goroutine that they
// started is still running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
