package ectest

import (
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

// Main is the TestMain of the expand-contract packages: the tests run on
// the test databases of package testdb, which stops the servers it started
// and fails the run if a goroutine the tests started is still running.
func Main(m *testing.M) { testdb.Main(m) }
