package main

import "time"

// The documents the command prints, as a reader decodes them: the
// library's document of a status (docs/status.md), in the fields the tests
// look at.

type statusJSON struct {
	Name     string         `json:"name"`
	Phase    string         `json:"phase"`
	Stages   []string       `json:"stages"`
	Ceiling  *ceilingJSON   `json:"ceiling"`
	Backfill backfillJSON   `json:"backfill"`
	ByStage  map[string]int `json:"by_stage"`
	Repairs  struct {
		Pending int64      `json:"pending"`
		Stuck   int64      `json:"stuck"`
		Oldest  *time.Time `json:"oldest"`
		History []struct {
			Pending int64 `json:"pending"`
		} `json:"history"`
	} `json:"repairs"`
}

type backfillJSON struct {
	Rows       int64   `json:"rows"`
	Total      int64   `json:"total"`
	Paused     bool    `json:"paused"`
	Canceled   bool    `json:"canceled"`
	LeaseOwner string  `json:"lease_owner"`
	RateLimit  float64 `json:"rate_limit"`
	BatchSize  int     `json:"batch_size"`
}

type ceilingJSON struct {
	Stage    string    `json:"stage"`
	SetAt    time.Time `json:"set_at"`
	Until    time.Time `json:"until"`
	Trigger  string    `json:"trigger"`
	Figures  string    `json:"figures"`
	Instance string    `json:"instance"`
}

type eventJSON struct {
	Kind   string `json:"kind"`
	To     string `json:"to"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type instanceJSON struct {
	ID string `json:"id"`
}
