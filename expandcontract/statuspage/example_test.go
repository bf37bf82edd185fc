package statuspage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/statuspage"
)

// exampleStore returns a store in the in-memory SQLite database name, with
// the migration "customers-phone" just created.
func exampleStore(name string) (*sqlx.DB, *expandcontract.Store, *expandcontract.Migration) {
	ctx := context.Background()
	db := sqlx.MustOpen("sqlite", "file:"+name+"?mode=memory&cache=shared")
	db.SetMaxOpenConns(1)
	store, err := expandcontract.Open(ctx, db, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	mig, err := store.Migration("customers-phone")
	if err != nil {
		panic(err)
	}
	if _, err := mig.Ensure(ctx, "deploy-42"); err != nil {
		panic(err)
	}
	return db, store, mig
}

func Example() {
	db, store, _ := exampleStore("statuspage_example")
	defer db.Close()

	// Mount the read-only page below /debug/cutover/, as net/http/pprof is
	// mounted below /debug/pprof/.
	page, err := statuspage.New(store)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", page))

	// A script reads a migration's JSON document.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/debug/cutover/m/customers-phone/status.json", nil))
	var status struct {
		Name   string   `json:"name"`
		Phase  string   `json:"phase"`
		Stages []string `json:"stages"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &status); err != nil {
		panic(err)
	}
	fmt.Println(w.Code, status.Name, status.Phase, status.Stages)

	// Read-only: the page refuses every action.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/debug/cutover/m/customers-phone/pause", nil))
	fmt.Println(w.Code)
	// Output:
	// 200 customers-phone expand [off]
	// 403
}

func ExampleWithActions() {
	ctx := context.Background()
	db, store, mig := exampleStore("statuspage_actions_example")
	defer db.Close()

	// Operators act under their own name, which the history records; the
	// service's own sign-in decides who they are.
	page, err := statuspage.New(store,
		statuspage.WithLogger(slog.New(slog.DiscardHandler)),
		statuspage.WithActions(func(r *http.Request) (string, error) {
			if user := r.Header.Get("X-Operator"); user != "" {
				return user, nil
			}
			return "", errors.New("sign in as an operator")
		}))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/cutover/", http.StripPrefix("/debug/cutover", page))

	// The form of the page's button "Move forward to dualwrite", as a
	// browser posts it.
	form := url.Values{"to": {"dualwrite"}, "version": {"1"}, "reason": {"the new column is there"}}
	r := httptest.NewRequest(http.MethodPost, "/debug/cutover/m/customers-phone/move", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://example.com")
	r.Header.Set("X-Operator", "alice")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Location"))

	st, err := mig.State(ctx)
	if err != nil {
		panic(err)
	}
	events, err := mig.Events(ctx)
	if err != nil {
		panic(err)
	}
	last := events[len(events)-1]
	fmt.Println(st.Phase, last.Actor, last.Reason)
	// Output:
	// 303 ./
	// dualwrite alice the new column is there
}
