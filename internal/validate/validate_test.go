package validate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/internal/validate"
)

func TestNil(t *testing.T) {
	var (
		log   *cutover.MemoryRepairLog
		fn    cutover.StageFunc
		iface cutover.RepairLog
	)
	for name, v := range map[string]any{
		"nil":                  nil,
		"nil pointer":          log,
		"nil pointer in iface": cutover.RepairLog(log),
		"nil func":             fn,
		"nil func in iface":    cutover.StageSource(fn),
		"nil map":              map[string]int(nil),
		"nil slice":            []int(nil),
		"nil chan":             (chan int)(nil),
		"nil iface":            iface,
	} {
		assert.True(t, validate.Nil(v), name)
	}
	for name, v := range map[string]any{
		"pointer":   new(cutover.MemoryRepairLog),
		"func":      cutover.StageFunc(func(context.Context) cutover.Stage { return cutover.Off }),
		"value":     cutover.Fixed(cutover.Off),
		"zero int":  0,
		"empty map": map[string]int{},
		"string":    "",
	} {
		assert.False(t, validate.Nil(v), name)
	}
}

func TestErrors(t *testing.T) {
	var e validate.Errors
	require.NoError(t, e.Err())
	cause := errors.New("cause")
	e.Addf("nil option")
	e.Addf("timeout %v: %w", -1, cause)
	err := e.Err()
	require.Error(t, err)
	assert.Equal(t, "nil option\ntimeout -1: cause", err.Error())
	assert.ErrorIs(t, err, cause)
}

func TestErrorsAddAndNotNil(t *testing.T) {
	var e validate.Errors
	e.Add(nil)
	require.NoError(t, e.Err())
	var log *cutover.MemoryRepairLog
	assert.True(t, e.NotNil(log, "WithRepairLog: nil repair log"))
	assert.False(t, e.NotNil(new(cutover.MemoryRepairLog), "not added"))
	e.Add(errors.New("cause"))
	assert.EqualError(t, e.Err(), "WithRepairLog: nil repair log\ncause")
}

type option interface{ apply(*[]string) }

type named string

func (n named) apply(c *[]string) { *c = append(*c, string(n)) }

func TestApply(t *testing.T) {
	var (
		e   validate.Errors
		got []string
	)
	validate.Apply(&e, []option{named("a"), nil, named("b")}, func(o option) { o.apply(&got) })
	assert.Equal(t, []string{"a", "b"}, got)
	assert.EqualError(t, e.Err(), "option 1 is nil")
}
