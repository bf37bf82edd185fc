package cdc

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain stops the database servers the parent process started; the
// children start none, they open the DSNs their parent gives them. Then it
// fails the run if any goroutine is left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(servers{m}, testdb.IgnoreForkThread) }

// servers runs the tests of m and stops the servers, as testdb.Main does.
type servers struct{ m *testing.M }

func (s servers) Run() int { return testdb.Run(s.m) }
