package statuspage

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cutover-go/cutover/expandcontract"
)

// indexJSON is the document of status.json. A migration's document is its
// expandcontract.Status, whose MarshalJSON writes the schema of
// docs/status.md.
type indexJSON struct {
	Migrations []expandcontract.Status `json:"migrations"`
}

// writeJSON answers with v as an indented JSON document.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil { // only plain values: cannot happen
		http.Error(w, "statuspage: encode JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(b, '\n'))
	}
}
