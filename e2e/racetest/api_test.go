package racetest

import (
	"context"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

// migrationOf returns the handle of the migration name in s. The suite's
// names are valid, so an error is the suite's own mistake.
func migrationOf(s *expandcontract.Store, name string) *expandcontract.Migration {
	m, err := s.Migration(name)
	if err != nil {
		panic(err)
	}
	return m
}

// runVerify makes a verifier of m with old, new and opts and runs it once.
func runVerify(ctx context.Context, m *expandcontract.Migration, old, new verify.RowSource, opts ...verify.Option) (verify.Result, error) {
	v, err := verify.New(m, old, new, opts...)
	if err != nil {
		return verify.Result{}, err
	}
	return v.Run(ctx)
}
