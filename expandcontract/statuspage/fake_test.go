package statuspage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
)

// fakeSource serves canned statuses and records the actions asked of it.
type fakeSource struct {
	mu      sync.Mutex
	sts     []expandcontract.Status // by name
	readErr error                   // returned by every read
	actErr  error                   // returned by every action
	acts    []fakeAct
}

type fakeAct struct {
	name string
	a    action
}

func (f *fakeSource) statuses(context.Context) ([]expandcontract.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sts), f.readErr
}

func (f *fakeSource) status(_ context.Context, name string) (expandcontract.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return expandcontract.Status{}, f.readErr
	}
	for _, st := range f.sts {
		if st.State.Name == name {
			return st, nil
		}
	}
	return expandcontract.Status{}, fmt.Errorf("%w: %q", expandcontract.ErrNotFound, name)
}

func (f *fakeSource) act(ctx context.Context, name string, a action) error {
	if _, err := f.status(ctx, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actErr != nil {
		return f.actErr
	}
	f.acts = append(f.acts, fakeAct{name, a})
	return nil
}

func (f *fakeSource) actions() []fakeAct {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acts)
}

// at is the time every canned status is read at.
var at = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// runningStatus is the status of a migration name whose backfill is a
// third done and running, with a verification that found differences, a
// repair backlog, two instances and some history.
func runningStatus(name string) expandcontract.Status {
	var samples []expandcontract.Sample
	for i := range 10 {
		samples = append(samples, expandcontract.Sample{At: at.Add(time.Duration(i-10) * 30 * time.Second), Rows: int64(i) * 3000})
	}
	var backlog []expandcontract.BacklogSample
	for i := range 30 {
		backlog = append(backlog, expandcontract.BacklogSample{At: at.Add(time.Duration(i-30) * 2 * time.Minute), Pending: int64(i % 7)})
	}
	return expandcontract.Status{
		State: expandcontract.State{
			Name: name, Phase: expandcontract.Backfill, Version: 3,
			CreatedAt: at.Add(-2 * time.Hour), UpdatedAt: at.Add(-time.Hour),
			Backfill: expandcontract.BackfillState{
				Checkpoint: "27000", Rows: 27000, Total: 81000, StartedAt: at.Add(-5 * time.Minute),
				LeaseOwner: "host-1/4242", LeaseUntil: at.Add(20 * time.Second), RateLimit: 500,
			},
			Verification: expandcontract.Verification{At: at.Add(-10 * time.Minute), Rows: 20000, Differences: 3,
				Detail: "3 keys differ: 17, 204, 9001"},
		},
		At:              at,
		Stages:          []cutover.Stage{cutover.DualWrite, cutover.Shadow},
		Backfill:        expandcontract.BackfillProgress{Rate: 100, ETA: 540 * time.Second, Samples: samples},
		VerificationAge: 10 * time.Minute,
		Repairs:         expandcontract.RepairBacklog{Pending: 5, Stuck: 1, Oldest: at.Add(-42 * time.Minute), History: backlog},
		Instances: []expandcontract.Instance{
			{ID: "host-1", Stage: cutover.Shadow, SeenAt: at.Add(-3 * time.Second)},
			{ID: "host-2", Stage: cutover.DualWrite, SeenAt: at.Add(-9 * time.Second)},
		},
		ByStage: map[cutover.Stage]int{cutover.Shadow: 1, cutover.DualWrite: 1},
		Events: []expandcontract.Event{
			{ID: 3, Migration: name, At: at.Add(-time.Hour), Actor: "alice", Kind: "move", From: expandcontract.DualWrite,
				To: expandcontract.Backfill, Version: 3, Reason: "dual writes everywhere"},
			{ID: 2, Migration: name, At: at.Add(-90 * time.Minute), Actor: "alice", Kind: "move", From: expandcontract.Expand,
				To: expandcontract.DualWrite, Version: 2, Reason: "<b>expand</b> & go"},
			{ID: 1, Migration: name, At: at.Add(-2 * time.Hour), Actor: "deploy-42", Kind: "create", Version: 1},
		},
	}
}

// newStatus is the status of a migration name just created.
func newStatus(name string) expandcontract.Status {
	return expandcontract.Status{
		State:  expandcontract.State{Name: name, Phase: expandcontract.Expand, Version: 1, CreatedAt: at, UpdatedAt: at},
		At:     at,
		Stages: []cutover.Stage{cutover.Off},
		Events: []expandcontract.Event{{ID: 1, Migration: name, At: at, Actor: "deploy-42", Kind: "create", Version: 1}},
	}
}

// page is a handler over canned statuses: "orders" running a backfill,
// "users/email" just created.
type page struct {
	src *fakeSource
	h   *Handler
	log *bytes.Buffer
}

// newPage returns a page over runningStatus("orders") and
// newStatus("users/email") with opts.
func newPage(t *testing.T, opts ...Option) *page {
	t.Helper()
	p := &page{src: &fakeSource{sts: []expandcontract.Status{runningStatus("orders"), newStatus("users/email")}},
		log: &bytes.Buffer{}}
	var err error
	p.h, err = newHandler(p.src, append([]Option{WithLogger(slog.New(slog.NewTextHandler(p.log, nil)))}, opts...)...)
	require.NoError(t, err)
	return p
}

// allowAll authorises every request as "carol".
func allowAll(*http.Request) (string, error) { return "carol", nil }

// do sends a request to the page, with the header pairs given, and
// returns the answer and its body.
func (p *page) do(t *testing.T, method, target, body string, header ...string) (*http.Response, string) {
	t.Helper()
	return serve(t, p.h, method, target, body, header...)
}

// serve sends a request to h, with the header pairs given, and returns
// the answer and its body. A POST is a form.
func serve(t *testing.T, h http.Handler, method, target, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// post sends a same-origin form to the page, as a browser does.
func (p *page) post(t *testing.T, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	return p.do(t, http.MethodPost, target, form.Encode(), "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin")
}

var errBroken = errors.New("connection refused")
