package statuspage

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
)

// actionKind is what an action does.
type actionKind uint8

const (
	actPause actionKind = iota + 1
	actResume
	actRate
	actBatchSize
	actMove
	actLift
)

// actionKinds maps the last segment of an action's path to its kind.
var actionKinds = map[string]actionKind{
	"pause": actPause, "resume": actResume, "rate": actRate, "batch-size": actBatchSize, "move": actMove,
	"lift": actLift,
}

// actionFields lists the form fields each kind of action takes; reason is
// optional in each.
var actionFields = map[actionKind][]string{
	actPause:     {"reason"},
	actResume:    {"reason"},
	actRate:      {"rate", "reason"},
	actBatchSize: {"size", "reason"},
	actMove:      {"to", "version", "reason"},
	actLift:      {"reason"},
}

// action is one validated action on a migration.
type action struct {
	kind          actionKind
	actor, reason string
	rate          float64              // actRate: rows per second, 0 for none
	size          int                  // actBatchSize: keys per batch, 0 for the runner's own
	to            expandcontract.Phase // actMove
	version       int64                // actMove: the version the move applies to, 0 for the current one
}

// Limits of an action's form.
const (
	maxForm   = 16 << 10 // bytes of a form's body
	maxReason = 1000     // bytes of a reason
)

// act answers r, a request for an action of kind on the migration name:
// 405 unless it is a POST, 403 if actions are not enabled, the request
// comes from another site or authorize refuses it, 400 for bad input, 404
// for an unknown migration, 409 with the migration's page for a refused
// move, and otherwise, once the action is applied, 303 See Other back to
// the migration's page.
func (h *Handler) act(w http.ResponseWriter, r *http.Request, name string, kind actionKind) {
	if !allowed(w, r, http.MethodPost) {
		return
	}
	if h.authorize == nil {
		h.fail(w, r, http.StatusForbidden, false, "statuspage: actions are not enabled on this page; it is read-only")
		return
	}
	if err := h.origins.Check(r); err != nil {
		h.fail(w, r, http.StatusForbidden, false, "statuspage: refused a request from another site: "+err.Error())
		return
	}
	actor, err := h.authorize(r)
	switch {
	case err != nil:
		h.fail(w, r, http.StatusForbidden, false, "statuspage: not authorised: "+err.Error())
		return
	case strings.TrimSpace(actor) == "":
		h.fail(w, r, http.StatusForbidden, false, "statuspage: not authorised: the service's authorisation named no actor")
		return
	}
	a, err := parseAction(w, r, kind)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, false, err.Error())
		return
	}
	a.actor = actor
	ctx := r.Context()
	err = h.src.act(ctx, name, a)
	var ce *expandcontract.ConflictError
	switch {
	case err == nil:
		h.logger.InfoContext(ctx, "cutover: status page action", "migration", name, "action", a.String(),
			"actor", actor, "reason", a.reason)
		w.Header().Set("Location", "./")
		w.WriteHeader(http.StatusSeeOther)
	case errors.Is(err, expandcontract.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, false, msgMigration+quote(name))
	case errors.Is(err, expandcontract.ErrIllegalMove), errors.Is(err, expandcontract.ErrGuard), errors.As(err, &ce):
		st, serr := h.src.status(ctx, name)
		if serr != nil {
			h.readFailed(w, r, name, false, serr)
			return
		}
		render(w, r, http.StatusConflict, h.migrationPage(st, "Refused: "+err.Error()))
	case errors.Is(err, expandcontract.ErrInvalidInput), errors.Is(err, backfill.ErrInvalidInput),
		errors.Is(err, expandcontract.ErrUnknownPhase):
		h.fail(w, r, http.StatusBadRequest, false, err.Error())
	default:
		h.logger.ErrorContext(ctx, "cutover: status page action failed", "migration", name, "action", a.String(),
			"actor", actor, "err", err)
		h.fail(w, r, http.StatusInternalServerError, false,
			"statuspage: the action failed; the service's log has the error")
	}
}

// String names the action for the log: "pause", "rate 500", "move to
// switchreads".
func (a action) String() string {
	switch a.kind {
	case actPause:
		return "pause"
	case actResume:
		return "resume"
	case actRate:
		return "rate " + strconv.FormatFloat(a.rate, 'g', -1, 64)
	case actBatchSize:
		return "batch size " + strconv.Itoa(a.size)
	case actMove:
		return "move to " + a.to.String()
	case actLift:
		return "lift the ceiling"
	}
	return "unknown"
}

// parseAction reads and checks the form of r, an action of kind. Every
// error names the field and what is wrong with it.
func parseAction(w http.ResponseWriter, r *http.Request, kind actionKind) (action, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return action{}, fmt.Errorf("statuspage: the action's body must be a form (application/x-www-form-urlencoded), not %q", ct)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return action{}, fmt.Errorf("statuspage: read the form: %w", err)
	}
	a := action{kind: kind}
	known := actionFields[kind]
	for f, vs := range r.PostForm {
		switch {
		case !slices.Contains(known, f):
			return action{}, fmt.Errorf("statuspage: unknown field %q (this action takes %s)", f, strings.Join(known, ", "))
		case len(vs) > 1:
			return action{}, fmt.Errorf("statuspage: field %q given %d times", f, len(vs))
		}
	}
	var err error
	if a.reason, err = parseReason(r.PostForm.Get("reason")); err != nil {
		return action{}, err
	}
	switch kind {
	case actRate:
		a.rate, err = parseNumber(r.PostForm, "rate", backfill.MaxRate)
	case actBatchSize:
		var n float64
		n, err = parseNumber(r.PostForm, "size", backfill.MaxBatchSize)
		if err == nil && n != math.Trunc(n) {
			err = fmt.Errorf("statuspage: size %v: not a whole number of keys", n)
		}
		a.size = int(n)
	case actMove:
		if a.to, err = expandcontract.ParsePhase(r.PostForm.Get("to")); err != nil {
			return action{}, fmt.Errorf("statuspage: field \"to\": %w", err)
		}
		if v := r.PostForm.Get("version"); v != "" {
			if a.version, err = strconv.ParseInt(v, 10, 64); err != nil || a.version < 1 {
				return action{}, fmt.Errorf("statuspage: version %q: not a migration version (a whole number from 1)", cut(v))
			}
		}
	}
	return a, err
}

// parseReason checks a reason given in a form: at most maxReason bytes of
// UTF-8 without control characters. Spaces around it are dropped.
func parseReason(s string) (string, error) {
	switch {
	case len(s) > maxReason:
		return "", fmt.Errorf("statuspage: reason of %d bytes: longer than %d", len(s), maxReason)
	case !utf8.ValidString(s):
		return "", errors.New("statuspage: reason: not valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "", errors.New("statuspage: reason: holds a control character")
	}
	return strings.TrimSpace(s), nil
}

// parseNumber reads the required field f of form: a number from 0 to
// most, 0 meaning none.
func parseNumber(form map[string][]string, f string, most float64) (float64, error) {
	vs := form[f]
	if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
		return 0, fmt.Errorf("statuspage: field %q is required (0 for none)", f)
	}
	s := strings.TrimSpace(vs[0])
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("statuspage: %s %q: not a number", f, cut(s))
	case v < 0:
		return 0, fmt.Errorf("statuspage: %s %v: negative", f, v)
	case v > most:
		return 0, fmt.Errorf("statuspage: %s %v: more than %v", f, v, most)
	}
	return v, nil
}

// cut shortens a value quoted in an error to 40 bytes.
func cut(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "..."
	}
	return s
}

// quote quotes a migration's name for a message.
func quote(name string) string { return strconv.Quote(name) }
