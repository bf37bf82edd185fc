package expandcontract_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

// A status with nothing in it encodes what is not there as null, and its
// lists as empty lists, so that a reader never meets a zero time or a
// missing list.
func TestStatusJSONOfNothing(t *testing.T) {
	b, err := json.Marshal(expandcontract.Status{})
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	for _, k := range []string{"created_at", "updated_at", "at", "ceiling", "verifying"} {
		assert.Contains(t, doc, k)
		assert.Nil(t, doc[k], k)
	}
	assert.Equal(t, []any{}, doc["instances"])
	assert.Equal(t, []any{}, doc["events"])
	assert.Equal(t, map[string]any{}, doc["by_stage"])
	backfill := doc["backfill"].(map[string]any)
	assert.Nil(t, backfill["eta_seconds"], "unknown")
	assert.Nil(t, backfill["started_at"])
	assert.Nil(t, doc["verification"].(map[string]any)["age_seconds"], "no verification ran")
}

// The parts of a status encode themselves the same way on their own, as
// the cutover command prints them.
func TestStatusPartsJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 4, 0, 0, 500, time.FixedZone("CET", 3600))
	b, err := json.Marshal(expandcontract.Instance{ID: "api-1", Stage: cutover.Shadow, SeenAt: at})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id": "api-1", "stage": "shadow", "seen_at": "2026-12-02T03:00:00.0000005Z"}`, string(b))

	b, err = json.Marshal(expandcontract.Event{ID: 7, Migration: "users", At: at, Actor: "ann", Kind: "move",
		From: expandcontract.Expand, To: expandcontract.DualWrite, Version: 2, Reason: "go"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id": 7, "migration": "users", "at": "2026-12-02T03:00:00.0000005Z", "actor": "ann",
		"kind": "move", "from": "expand", "to": "dualwrite", "version": 2, "reason": "go", "detail": ""}`, string(b))

	var none *expandcontract.Ceiling
	b, err = json.Marshal(struct{ C *expandcontract.Ceiling }{none})
	require.NoError(t, err)
	assert.JSONEq(t, `{"C": null}`, string(b))
	b, err = json.Marshal(&expandcontract.Ceiling{Stage: cutover.DualWrite, SetAt: at, Until: at.Add(time.Hour),
		Trigger: "errors", Figures: "12%", Instance: "api-2"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"stage": "dualwrite", "set_at": "2026-12-02T03:00:00.0000005Z",
		"until": "2026-12-02T04:00:00.0000005Z", "trigger": "errors", "figures": "12%", "instance": "api-2"}`, string(b))
}
