package statuspage

import (
	"context"
	"errors"
	"net/http"

	"github.com/cutover-go/cutover/expandcontract"
)

// source is where a [Handler] reads statuses and applies actions: the
// store, or canned statuses in tests. Its methods must be safe for
// concurrent use.
type source interface {
	// statuses returns every migration's status, by name.
	statuses(ctx context.Context) ([]expandcontract.Status, error)
	// status returns the status of the migration name, or an error
	// wrapping expandcontract.ErrNotFound.
	status(ctx context.Context, name string) (expandcontract.Status, error)
	// act applies a to the migration name.
	act(ctx context.Context, name string, a action) error
}

// Messages of the answers that are not pages.
const (
	msgNotFound  = "statuspage: no such page"
	msgDatabase  = "statuspage: could not read the migrations' metadata; the service's log has the error"
	msgMigration = "statuspage: no migration named "
)

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	sts, err := h.src.statuses(r.Context())
	if err != nil {
		h.readFailed(w, r, "", false, err)
		return
	}
	v := pageView{Title: "cutover migrations", Root: "./", JSON: jsonName, Migrations: make([]migrationView, len(sts))}
	for i, st := range sts {
		v.Migrations[i] = newMigrationView(st)
	}
	render(w, r, http.StatusOK, v)
}

func (h *Handler) indexJSON(w http.ResponseWriter, r *http.Request) {
	sts, err := h.src.statuses(r.Context())
	if err != nil {
		h.readFailed(w, r, "", true, err)
		return
	}
	if sts == nil {
		sts = []expandcontract.Status{} // [], not null
	}
	writeJSON(w, r, http.StatusOK, indexJSON{Migrations: sts})
}

func (h *Handler) migration(w http.ResponseWriter, r *http.Request, name string) {
	st, err := h.src.status(r.Context(), name)
	if err != nil {
		h.readFailed(w, r, name, false, err)
		return
	}
	render(w, r, http.StatusOK, h.migrationPage(st, ""))
}

// migrationPage is the page of st, with notice, a refused action's
// message, above it.
func (h *Handler) migrationPage(st expandcontract.Status, notice string) pageView {
	m := newMigrationView(st)
	return pageView{Title: title(st.State.Name), Root: "../../", JSON: jsonName, M: &m,
		Actions: h.authorize != nil, Notice: notice}
}

func (h *Handler) migrationJSON(w http.ResponseWriter, r *http.Request, name string) {
	st, err := h.src.status(r.Context(), name)
	if err != nil {
		h.readFailed(w, r, name, true, err)
		return
	}
	writeJSON(w, r, http.StatusOK, st)
}

// readFailed answers a read of the migration name ("" for all of them)
// that failed with err: 404 Not Found for an unknown migration, 500
// Internal Server Error, logged, for anything else.
func (h *Handler) readFailed(w http.ResponseWriter, r *http.Request, name string, asJSON bool, err error) {
	if errors.Is(err, expandcontract.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, asJSON, msgMigration+quote(name))
		return
	}
	h.logger.ErrorContext(r.Context(), "cutover: status page: read the metadata", "migration", name, "err", err)
	h.fail(w, r, http.StatusInternalServerError, asJSON, msgDatabase)
}

// fail answers with status and msg, as JSON or as a page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, asJSON bool, msg string) {
	if asJSON {
		writeJSON(w, r, status, struct {
			Error string `json:"error"`
		}{msg})
		return
	}
	render(w, r, status, pageView{Title: http.StatusText(status) + " · cutover", Root: rootOf(r), Message: msg})
}
