package ectest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cutover-go/cutover/internal/testdb"
)

// Main is the TestMain of the expand-contract packages: it runs the tests
// on the test databases of package testdb, stops the servers it started,
// and then fails the run if any goroutine the tests started is still
// running.
func Main(m *testing.M) {
	code := testdb.Run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "ectest: goroutines left running after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
