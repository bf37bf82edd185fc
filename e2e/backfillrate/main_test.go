package backfillrate

import (
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain runs the tests, stops the database servers the process started
// and fails the run if a goroutine is left.
func TestMain(m *testing.M) { testdb.Main(m) }
