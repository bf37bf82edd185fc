package crashtest

import (
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

// TestMain stops the database servers the parent process started. Child
// processes start none: they open the DSN their parent gives them.
func TestMain(m *testing.M) { testdb.Main(m) }
