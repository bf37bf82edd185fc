// Package suite holds what the proof suites share of the library's API:
// a migration handle by name and a verification run once; and a setting
// read from the environment.
package suite

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

// Migration returns the handle of the migration name in s. The suites'
// names are valid, so an error is the suite's own mistake and panics.
func Migration(s *expandcontract.Store, name string) *expandcontract.Migration {
	m, err := s.Migration(name)
	if err != nil {
		panic(err)
	}
	return m
}

// Verify makes a verifier of m with old, new and opts and runs it once.
func Verify(ctx context.Context, m *expandcontract.Migration, old, new verify.RowSource, opts ...verify.Option) (verify.Result, error) {
	v, err := verify.New(m, old, new, opts...)
	if err != nil {
		return verify.Result{}, err
	}
	return v.Run(ctx)
}

// EnvInt returns the positive integer in the environment variable name,
// or def if it is unset; anything else fails the test.
func EnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "%s", name)
	require.Positive(t, n, "%s", name)
	return n
}
