package statuspage_test

import (
	"testing"

	"github.com/cutover-go/cutover/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }
