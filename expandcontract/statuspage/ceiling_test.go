package statuspage_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/testdb"
)

// TestStoreCeiling shows a migration's stage ceiling on its page and in
// its JSON, offers the Lift button with actions, and lifts it.
func TestStoreCeiling(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		f := newFixture(t, db.DB)
		_, body := f.do(t, http.MethodGet, "/debug/cutover/m/orders/", nil)
		assert.NotContains(t, body, `id="ceiling"`)
		assert.NotContains(t, body, `action="lift"`, "no ceiling, no Lift button")

		applied, _, err := f.orders.Demote(t.Context(), expandcontract.Demotion{Ceiling: cutover.DualWrite,
			Trigger: "new-store-errors", Figures: "error rate 12% over 1m", Instance: "host-1", CoolDown: time.Hour})
		require.NoError(t, err)
		require.True(t, applied)
		res, body := f.do(t, http.MethodGet, "/debug/cutover/m/orders/", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Contains(t, body, `<p class="ceiling" role="status" id="ceiling">Demoted: no stage above dualwrite until `)
		assert.Contains(t, body, `(1h 00m left), set by trigger new-store-errors on host-1: error rate 12% over 1m</p>`)
		assert.Contains(t, body, `<button type="submit" id="lift">Lift ceiling</button>`)

		res, body = f.do(t, http.MethodGet, "/debug/cutover/m/orders/status.json", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		var doc struct {
			Ceiling *struct {
				Stage, Trigger, Figures, Instance string
			} `json:"ceiling"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
		require.NotNil(t, doc.Ceiling)
		assert.Equal(t, "dualwrite", doc.Ceiling.Stage)
		assert.Equal(t, "new-store-errors", doc.Ceiling.Trigger)
		assert.Equal(t, "host-1", doc.Ceiling.Instance)

		res, body = f.do(t, http.MethodPost, "/debug/cutover/m/orders/lift", url.Values{"reason": {"recovered"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
		st, evs := f.state(t)
		assert.Nil(t, st.Ceiling)
		ev := evs[len(evs)-1]
		assert.Equal(t, "lift", ev.Kind)
		assert.Equal(t, "carol", ev.Actor)
		assert.Equal(t, "recovered", ev.Reason)
		_, body = f.do(t, http.MethodGet, "/debug/cutover/m/orders/", nil)
		assert.NotContains(t, body, `id="ceiling"`)
	})
}
