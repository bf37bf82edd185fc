package statuspage

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain runs the tests, stops the database servers the process started
// and then fails the run if any goroutine is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(servers{m}, testdb.IgnoreForkThread) }

// servers runs the tests of m and stops the servers, as testdb.Main does.
type servers struct{ m *testing.M }

func (s servers) Run() int { return testdb.Run(s.m) }
