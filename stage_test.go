package cutover_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
)

func TestStageTable(t *testing.T) {
	// One row per stage of the table in the package documentation.
	tests := []struct {
		name       string
		auth       cutover.Side
		secondary  cutover.Side
		dual       bool
		compares   bool
		stageValue cutover.Stage
	}{
		{"off", cutover.Old, 0, false, false, cutover.Off},
		{"dualwrite", cutover.Old, cutover.New, true, false, cutover.DualWrite},
		{"shadow", cutover.Old, cutover.New, true, true, cutover.Shadow},
		{"live", cutover.New, cutover.Old, true, true, cutover.Live},
		{"rampdown", cutover.New, cutover.Old, true, false, cutover.Rampdown},
		{"complete", cutover.New, 0, false, false, cutover.Complete},
	}
	require.Len(t, tests, len(cutover.Stages))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := cutover.ParseStage(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.stageValue, s)
			assert.Equal(t, cutover.Stages[i], s, "Stages is in order")
			assert.Equal(t, tt.name, s.String())
			assert.Equal(t, tt.auth, s.Authoritative())
			sec, dual := s.Secondary()
			assert.Equal(t, tt.dual, dual)
			if dual {
				assert.Equal(t, tt.secondary, sec)
			}
			assert.Equal(t, tt.compares, s.Compares())
		})
	}
}

func TestParseStageRejectsEverythingElse(t *testing.T) {
	for _, in := range []string{"", "Off", "OFF", " off", "shadow ", "dual-write", "dual_write", "on", "true", "0", strings.Repeat("x", 1000)} {
		s, err := cutover.ParseStage(in)
		assert.ErrorIs(t, err, cutover.ErrUnknownStage, "%q", in)
		assert.Equal(t, cutover.Off, s, "%q must fall back to the zero stage", in)
		assert.Less(t, len(err.Error()), 200, "the error must not echo unbounded input")
	}
}

func TestStageText(t *testing.T) {
	type doc struct {
		Stage cutover.Stage `json:"stage"`
	}
	b, err := json.Marshal(doc{cutover.Rampdown})
	require.NoError(t, err)
	assert.JSONEq(t, `{"stage":"rampdown"}`, string(b))

	var d doc
	require.NoError(t, json.Unmarshal([]byte(`{"stage":"live"}`), &d))
	assert.Equal(t, cutover.Live, d.Stage)

	err = json.Unmarshal([]byte(`{"stage":"later"}`), &d)
	assert.True(t, errors.Is(err, cutover.ErrUnknownStage), "got %v", err)
	assert.Equal(t, cutover.Live, d.Stage, "a failed unmarshal leaves the stage alone")

	_, err = cutover.Stage(42).MarshalText()
	assert.ErrorIs(t, err, cutover.ErrUnknownStage)
	assert.Equal(t, "Stage(42)", cutover.Stage(42).String())
	assert.False(t, cutover.Stage(6).Valid())
}

func TestStagesClampWithMin(t *testing.T) {
	assert.Equal(t, cutover.Shadow, min(cutover.Live, cutover.Shadow))
	assert.Equal(t, cutover.Complete, max(cutover.Off, cutover.Complete))
}

func TestSide(t *testing.T) {
	assert.Equal(t, "old", cutover.Old.String())
	assert.Equal(t, "new", cutover.New.String())
	assert.Equal(t, cutover.New, cutover.Old.Other())
	assert.Equal(t, cutover.Old, cutover.New.Other())
	var zero cutover.Side
	assert.Equal(t, cutover.Old, zero)
	assert.Equal(t, "Side(7)", cutover.Side(7).String())
}

func TestStageSources(t *testing.T) {
	ctx := t.Context()
	assert.Equal(t, cutover.Live, cutover.Fixed(cutover.Live).Stage(ctx))
	f := cutover.StageFunc(func(ctx context.Context) cutover.Stage { return cutover.Shadow })
	assert.Equal(t, cutover.Shadow, f.Stage(ctx))
}

func TestMemoryRepairLog(t *testing.T) {
	var l cutover.MemoryRepairLog
	ctx := t.Context()
	require.NoError(t, l.Record(ctx, cutover.Repair{Key: "1"}))
	require.NoError(t, l.Record(ctx, cutover.Repair{Key: "2"}))
	assert.Equal(t, 2, l.Len())
	e := l.Entries()
	e[0].Key = "changed"
	assert.Equal(t, "1", l.Entries()[0].Key, "Entries returns a copy")
	drained := l.Drain()
	assert.Len(t, drained, 2)
	assert.Zero(t, l.Len())
}
