package trigger_test

import (
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain runs the tests on the test databases, then fails the run if a
// goroutine that they or the code under test started is still running:
// every goroutine must stop on every exit path.
func TestMain(m *testing.M) { testdb.Main(m) }
