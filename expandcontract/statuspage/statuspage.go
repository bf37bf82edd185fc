package statuspage

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/validate"
)

// ErrInvalidInput is wrapped by every error that [New] returns for bad
// arguments or options. Each such error names what was wrong, as in
// "statuspage: invalid input: nil store".
var ErrInvalidInput = errors.New("statuspage: invalid input")

// Authorize decides whether the request r may act on a migration. It
// returns the actor recorded in the migration's history, such as the
// operator's user name, or an error that refuses the action: the page
// answers 403 Forbidden with the error's text, so that text should say
// what is missing and no more. It must be safe for concurrent use.
type Authorize func(r *http.Request) (actor string, err error)

// Option configures a [Handler].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	authorize Authorize
	logger    *slog.Logger
	errs      validate.Errors
}

// WithActions enables the page's actions (pause and resume the backfill,
// set its rate and batch size, move the phase) for the requests that
// authorize lets through, recording the actor it returns in the history.
// Without it the page is read-only and refuses every action with 403
// Forbidden. A nil authorize is bad input.
func WithActions(authorize Authorize) Option {
	return optionFunc(func(c *config) {
		if authorize == nil {
			c.errs.Addf("WithActions: nil authorize function")
		}
		c.authorize = authorize
	})
}

// WithLogger sets the logger of the database errors the page answers with
// 500 Internal Server Error, and of the actions it applies. The default is
// slog.Default(). A nil logger is bad input.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			c.errs.Addf("WithLogger: nil logger")
		}
		c.logger = l
	})
}

// Handler serves the status page of the migrations of one
// [expandcontract.Store], as HTML and as JSON, and its actions when
// [WithActions] enables them; see the package documentation for its paths.
// Create it with [New]; the zero value is not usable. It holds no state of
// its own between requests and is safe for concurrent use.
type Handler struct {
	src       source
	authorize Authorize // nil: read-only
	logger    *slog.Logger
	origins   *http.CrossOriginProtection
}

var _ http.Handler = (*Handler)(nil)

// New returns the status page of the migrations of store. A nil store, a
// nil Option or an invalid one makes it fail with an error wrapping
// [ErrInvalidInput] that names every problem.
func New(store *expandcontract.Store, opts ...Option) (*Handler, error) {
	var src source
	if store != nil {
		src = storeSource{store}
	}
	return newHandler(src, opts...)
}

// newHandler returns the page over src, the seam through which tests feed
// it canned statuses.
func newHandler(src source, opts ...Option) (*Handler, error) {
	var cfg config
	cfg.errs.NotNil(src, "nil store")
	validate.Apply(&cfg.errs, opts, func(o Option) { o.apply(&cfg) })
	if err := cfg.errs.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	return &Handler{src: src, authorize: cfg.authorize, logger: cfg.logger,
		origins: http.NewCrossOriginProtection()}, nil
}

// The paths the handler serves, below the prefix it is mounted at.
const (
	jsonName      = "status.json"
	migrationsDir = "m"
)

// ServeHTTP answers r; see the package documentation for the paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setHeaders(w)
	segs, ok := segments(r.URL)
	if !ok {
		h.fail(w, r, http.StatusNotFound, false, "statuspage: no such page")
		return
	}
	switch {
	case len(segs) == 1 && segs[0] == "":
		h.read(w, r, h.index)
	case len(segs) == 1 && segs[0] == jsonName:
		h.read(w, r, h.indexJSON)
	case len(segs) == 2 && segs[0] == migrationsDir && segs[1] != "":
		// The migration's page is the directory m/NAME/, so that its
		// links and forms are relative to it; send m/NAME there.
		if !allowed(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Location", "./"+url.PathEscape(segs[1])+"/")
		w.WriteHeader(http.StatusMovedPermanently)
	case len(segs) == 3 && segs[0] == migrationsDir && segs[1] != "":
		name := segs[1]
		switch a := segs[2]; {
		case a == "":
			h.read(w, r, func(w http.ResponseWriter, r *http.Request) { h.migration(w, r, name) })
		case a == jsonName:
			h.read(w, r, func(w http.ResponseWriter, r *http.Request) { h.migrationJSON(w, r, name) })
		case actionKinds[a] != 0:
			h.act(w, r, name, actionKinds[a])
		default:
			h.fail(w, r, http.StatusNotFound, false, "statuspage: no such page")
		}
	default:
		h.fail(w, r, http.StatusNotFound, strings.HasSuffix(r.URL.Path, ".json"), "statuspage: no such page")
	}
}

// read serves r with page if its method is GET or HEAD.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, page http.HandlerFunc) {
	if allowed(w, r, http.MethodGet, http.MethodHead) {
		page(w, r)
	}
}

// allowed reports whether r's method is one of methods, and answers 405
// Method Not Allowed if it is not.
func allowed(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, fmt.Sprintf("statuspage: method %s not allowed here; use %s", r.Method, strings.Join(methods, " or ")),
		http.StatusMethodNotAllowed)
	return false
}

// segments splits the path of u, as seen below the prefix the handler is
// mounted at, into unescaped segments: "/" is [""], "/m/a%2Fb/" is ["m",
// "a/b", ""]. A path mounted with a prefix that kept its slash ("m/x/")
// counts as if it started with one. It reports false for a path that does
// not unescape.
func segments(u *url.URL) ([]string, bool) {
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = v
	}
	return segs, true
}

// rootOf returns the index, relative to the page of r.
func rootOf(r *http.Request) string {
	if n := strings.Count(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/"); n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// setHeaders sets the headers of every answer: a Content-Security-Policy
// that allows no script, no frame and no resource from anywhere, with the
// page's one style sheet allowed by its hash, and forms posting only to
// the page's own origin.
func setHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}
