// Package suite holds what the proof suites share of the library's API:
// a migration handle by name and a verification run once.
package suite

import (
	"context"

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
