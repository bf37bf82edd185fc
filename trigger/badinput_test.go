package trigger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/trigger"
)

func TestNewRefusesBadInput(t *testing.T) {
	demote := func(context.Context, trigger.Firing) (trigger.Result, error) { return trigger.Result{}, nil }
	rule := trigger.DefaultRules()[0]
	with := func(f func(*trigger.Rule)) trigger.Rule {
		r := rule
		f(&r)
		return r
	}
	tests := []struct {
		name      string
		migration string
		demote    trigger.DemoteFunc
		opts      []trigger.Option
		want      []string
	}{
		{"no name, no demote", "", nil, nil, []string{"empty migration name", "nil demote function"}},
		{"nil option", "m", demote, []trigger.Option{nil}, []string{"option 0 is nil"}},
		{"nil clock, alarm, logger", "m", demote, []trigger.Option{trigger.WithClock(nil), trigger.WithAlarm(nil), trigger.WithLogger(nil)},
			[]string{"WithClock: nil clock", "WithAlarm: nil function", "WithLogger: nil logger"}},
		{"nil alarm history", "m", demote, []trigger.Option{trigger.WithAlarmHistory(nil)}, []string{"WithAlarmHistory: nil migration"}},
		{"durations", "m", demote, []trigger.Option{trigger.WithResolution(0), trigger.WithInterval(-1), trigger.WithActionTimeout(0)},
			[]string{"resolution must be positive", "interval must be positive", "action timeout must be positive"}},
		{"no rules", "m", demote, []trigger.Option{trigger.WithRules()}, []string{"no rules"}},
		{"two of a kind", "m", demote, []trigger.Option{trigger.WithRules(rule, rule)}, []string{"rule 2: a second error_rate rule"}},
		{"rate above one", "m", demote, []trigger.Option{trigger.WithRules(with(func(r *trigger.Rule) { r.Threshold = 5 }))},
			[]string{"rule 1 (error_rate): threshold must be a rate in (0, 1], got 5"}},
		{"zero ratio", "m", demote, []trigger.Option{trigger.WithRules(with(func(r *trigger.Rule) { r.Kind, r.Threshold = trigger.Latency, 0 }))},
			[]string{"rule 1 (latency): threshold must be a positive ratio, got 0"}},
		{"window off the buckets", "m", demote, []trigger.Option{trigger.WithRules(with(func(r *trigger.Rule) { r.Window = 15 * time.Second }))},
			[]string{"window must be a positive whole number of 10s buckets, got 15s"}},
		{"zero minimum, unknown action and kind", "m", demote, []trigger.Option{trigger.WithRules(
			with(func(r *trigger.Rule) { r.MinSamples, r.Action = 0, 9 }), with(func(r *trigger.Rule) { r.Kind = 9 }))},
			[]string{"minimum samples must be positive, got 0", "unknown action 9", "rule 2: unknown kind 9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := trigger.New(tt.migration, tt.demote, tt.opts...)
			require.ErrorIs(t, err, trigger.ErrInvalidInput)
			assert.Nil(t, m)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestTextOfTheEnumerations(t *testing.T) {
	for k := range trigger.Availability + 1 {
		b, err := k.MarshalText()
		require.NoError(t, err)
		var back trigger.Kind
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, k, back)
	}
	_, err := trigger.Kind(9).MarshalText()
	require.Error(t, err)
	var a trigger.Action
	require.Error(t, a.UnmarshalText([]byte("reboot")))
	require.NoError(t, a.UnmarshalText([]byte("alarm")))
	assert.Equal(t, trigger.Alarm, a)
	var s trigger.State
	require.NoError(t, s.UnmarshalText([]byte("firing")))
	assert.Equal(t, trigger.StateFiring, s)
}
