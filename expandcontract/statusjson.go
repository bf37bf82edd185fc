package expandcontract

import (
	"encoding/json"
	"strconv"
	"time"
)

// The JSON documents of a status, written by the MarshalJSON methods below
// and read by operators' tools: the status page and the cutover command
// both answer with them. Their schema is documented in docs/status.md:
// times are RFC 3339 strings in UTC, or null for none; durations are
// numbers of seconds; phases and stages are their names. Fields are only
// ever added, never renamed, removed or given another meaning.

// MarshalJSON implements [json.Marshaler]: it writes s as the document
// that docs/status.md describes.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(statusDoc(s)) }

// MarshalJSON implements [json.Marshaler]: it writes e as an entry of the
// events of a status.
func (e Event) MarshalJSON() ([]byte, error) { return json.Marshal(eventDoc(e)) }

// MarshalJSON implements [json.Marshaler]: it writes in as an entry of the
// instances of a status.
func (in Instance) MarshalJSON() ([]byte, error) {
	return json.Marshal(instanceJSON{ID: in.ID, Stage: in.Stage.String(), SeenAt: jsonTime(in.SeenAt)})
}

// MarshalJSON implements [json.Marshaler]: it writes c as the ceiling of a
// status.
func (c Ceiling) MarshalJSON() ([]byte, error) {
	return json.Marshal(ceilingJSON{Stage: c.Stage.String(), SetAt: jsonTime(c.SetAt), Until: jsonTime(c.Until),
		Trigger: c.Trigger, Figures: c.Figures, Instance: c.Instance})
}

// statusJSON is the document of a [Status].
type statusJSON struct {
	Name         string           `json:"name"`
	Phase        string           `json:"phase"`
	Version      int64            `json:"version"`
	CreatedAt    jsonTime         `json:"created_at"`
	UpdatedAt    jsonTime         `json:"updated_at"`
	At           jsonTime         `json:"at"`
	Stages       []string         `json:"stages"`
	Ceiling      *Ceiling         `json:"ceiling"`
	Backfill     backfillJSON     `json:"backfill"`
	Verification verificationJSON `json:"verification"`
	Verifying    *verifyingJSON   `json:"verifying"`
	Repairs      repairsJSON      `json:"repairs"`
	Instances    []Instance       `json:"instances"`
	ByStage      map[string]int   `json:"by_stage"`
	Events       []Event          `json:"events"`
}

type ceilingJSON struct {
	Stage    string   `json:"stage"`
	SetAt    jsonTime `json:"set_at"`
	Until    jsonTime `json:"until"`
	Trigger  string   `json:"trigger"`
	Figures  string   `json:"figures"`
	Instance string   `json:"instance"`
}

type backfillJSON struct {
	Rows       int64        `json:"rows"`
	Total      int64        `json:"total"`
	Done       bool         `json:"done"`
	Paused     bool         `json:"paused"`
	Canceled   bool         `json:"canceled"`
	Checkpoint string       `json:"checkpoint"`
	StartedAt  jsonTime     `json:"started_at"`
	DoneAt     jsonTime     `json:"done_at"`
	LeaseOwner string       `json:"lease_owner"`
	LeaseUntil jsonTime     `json:"lease_until"`
	RateLimit  float64      `json:"rate_limit"`
	BatchSize  int          `json:"batch_size"`
	Throttled  string       `json:"throttled"`
	Rate       float64      `json:"rate"`
	ETA        *jsonSeconds `json:"eta_seconds"`
	Samples    []sampleJSON `json:"samples"`
	Ranges     *rangesJSON  `json:"ranges,omitempty"` // a partitioned backfill's ranges; absent if it is not split
}

// rangesJSON counts the key ranges of a partitioned backfill.
type rangesJSON struct {
	Total  int `json:"total"`
	Done   int `json:"done"`
	Leased int `json:"leased"`
}

type sampleJSON struct {
	At   jsonTime `json:"at"`
	Rows int64    `json:"rows"`
}

type verificationJSON struct {
	At          jsonTime     `json:"at"`
	Age         *jsonSeconds `json:"age_seconds"`
	Clean       bool         `json:"clean"`
	Rows        int64        `json:"rows"`
	Differences int64        `json:"differences"`
	Detail      string       `json:"detail"`
}

// verifyingJSON is a running verification; the document holds null while
// none runs.
type verifyingJSON struct {
	StartedAt jsonTime     `json:"started_at"`
	Owner     string       `json:"owner"`
	Rows      int64        `json:"rows"`
	Total     int64        `json:"total"`
	Rate      float64      `json:"rate"`
	ETA       *jsonSeconds `json:"eta_seconds"`
	UpdatedAt jsonTime     `json:"updated_at"`
}

type repairsJSON struct {
	Pending int64               `json:"pending"`
	Stuck   int64               `json:"stuck"`
	Oldest  jsonTime            `json:"oldest"`
	History []backlogSampleJSON `json:"history"`
}

type backlogSampleJSON struct {
	At      jsonTime `json:"at"`
	Pending int64    `json:"pending"`
}

type instanceJSON struct {
	ID     string   `json:"id"`
	Stage  string   `json:"stage"`
	SeenAt jsonTime `json:"seen_at"`
}

type eventJSON struct {
	ID        int64    `json:"id"`
	Migration string   `json:"migration"`
	At        jsonTime `json:"at"`
	Actor     string   `json:"actor"`
	Kind      string   `json:"kind"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Version   int64    `json:"version"`
	Reason    string   `json:"reason"`
	Detail    string   `json:"detail"`
}

func eventDoc(e Event) eventJSON {
	return eventJSON{ID: e.ID, Migration: e.Migration, At: jsonTime(e.At), Actor: e.Actor, Kind: e.Kind,
		From: e.From.String(), To: e.To.String(), Version: e.Version, Reason: e.Reason, Detail: e.Detail}
}

// jsonTime is a time written in RFC 3339 in UTC, with the fraction of a
// second when there is one, and null for the zero time.
type jsonTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(tt.UTC().Format(time.RFC3339Nano))), nil
}

// jsonSeconds is a duration written as a number of seconds.
type jsonSeconds time.Duration

// MarshalJSON implements json.Marshaler.
func (d jsonSeconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// seconds returns d as jsonSeconds, or nil (null) if ok is false.
func seconds(d time.Duration, ok bool) *jsonSeconds {
	if !ok {
		return nil
	}
	s := jsonSeconds(d)
	return &s
}

// statusDoc returns the document of st.
func statusDoc(st Status) statusJSON {
	s, b, v, rp := st.State, st.State.Backfill, st.State.Verification, st.Repairs
	eta := seconds(st.Backfill.ETA, st.Backfill.ETA > 0) // null while unknown
	if b.Done() {
		eta = seconds(0, true)
	}
	doc := statusJSON{
		Name: s.Name, Phase: s.Phase.String(), Version: s.Version,
		CreatedAt: jsonTime(s.CreatedAt), UpdatedAt: jsonTime(s.UpdatedAt), At: jsonTime(st.At),
		Stages:  make([]string, len(st.Stages)),
		Ceiling: st.Ceiling,
		Backfill: backfillJSON{
			Rows: b.Rows, Total: b.Total, Done: b.Done(), Paused: b.Paused, Canceled: b.Canceled,
			Checkpoint: b.Checkpoint, StartedAt: jsonTime(b.StartedAt), DoneAt: jsonTime(b.DoneAt),
			LeaseOwner: b.LeaseOwner, LeaseUntil: jsonTime(b.LeaseUntil),
			RateLimit: b.RateLimit, BatchSize: b.BatchSize, Throttled: b.Throttled,
			Rate:    st.Backfill.Rate,
			ETA:     eta,
			Samples: make([]sampleJSON, len(st.Backfill.Samples)),
		},
		Verification: verificationJSON{
			At: jsonTime(v.At), Age: seconds(st.VerificationAge, !v.At.IsZero()),
			Clean: v.Clean, Rows: v.Rows, Differences: v.Differences, Detail: v.Detail,
		},
		Repairs: repairsJSON{Pending: rp.Pending, Stuck: rp.Stuck, Oldest: jsonTime(rp.Oldest),
			History: make([]backlogSampleJSON, len(rp.History))},
		Instances: st.Instances,
		ByStage:   make(map[string]int, len(st.ByStage)),
		Events:    st.Events,
	}
	if r := st.Backfill.Ranges; r.Total > 0 {
		doc.Backfill.Ranges = &rangesJSON{Total: r.Total, Done: r.Done, Leased: r.Leased}
	}
	if p := st.Verifying; p != nil {
		doc.Verifying = &verifyingJSON{StartedAt: jsonTime(p.Started), Owner: p.Owner, Rows: p.Rows, Total: p.Total,
			Rate: p.Rate, ETA: seconds(p.ETA, p.ETA > 0), UpdatedAt: jsonTime(p.UpdatedAt)}
	}
	if doc.Instances == nil {
		doc.Instances = []Instance{}
	}
	if doc.Events == nil {
		doc.Events = []Event{}
	}
	for i, stage := range st.Stages {
		doc.Stages[i] = stage.String()
	}
	for i, sm := range st.Backfill.Samples {
		doc.Backfill.Samples[i] = sampleJSON{At: jsonTime(sm.At), Rows: sm.Rows}
	}
	for i, h := range rp.History {
		doc.Repairs.History[i] = backlogSampleJSON{At: jsonTime(h.At), Pending: h.Pending}
	}
	for stage, n := range st.ByStage {
		doc.ByStage[stage.String()] = n
	}
	return doc
}
