package trigger

import (
	"encoding/json"
	"net/http"
)

// Readiness returns an http.Handler for a readiness probe: it answers
// every GET or HEAD with the monitor's [Health] as JSON, status 200 while
// the health is ready and 503 Service Unavailable while a [Demote] trigger
// fires, and 405 to other methods. It reads the last evaluation and
// evaluates nothing. It is safe for concurrent use.
func (m *Monitor) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "trigger: readiness answers GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		h := m.Health()
		body, err := json.Marshal(h)
		if err != nil { // a kind, action or state out of range: the monitor never makes one
			http.Error(w, "trigger: readiness: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !h.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
