package meta

import (
	"encoding/json"
	"fmt"
	"time"
)

// Sample is one point of a backfill's progress, as backfill_samples keeps
// it: the store's time, in microseconds, and the rows copied by then.
type Sample struct {
	At, Rows int64
}

// SampleEvery is the least time between two samples of a backfill, but
// for the one of its end (see [AddSample]); MaxSamples is the most kept, the
// oldest dropped first: a quarter of an hour at one sample every
// SampleEvery.
const (
	SampleEvery = 10 * time.Second
	MaxSamples  = 90
)

// EncodeSamples returns samples as backfill_samples keeps them: a JSON
// array of [at, rows] pairs, oldest first.
func EncodeSamples(samples []Sample) string {
	pairs := make([][2]int64, len(samples))
	for i, s := range samples {
		pairs[i] = [2]int64{s.At, s.Rows}
	}
	b, _ := json.Marshal(pairs) // integers always encode
	return string(b)
}

// DecodeSamples reads samples written by [EncodeSamples]; "" is none.
func DecodeSamples(s string) ([]Sample, error) {
	if s == "" {
		return nil, nil
	}
	var pairs [][2]int64
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, fmt.Errorf("%w: backfill samples: %w", ErrCorrupt, err)
	}
	out := make([]Sample, len(pairs))
	for i, p := range pairs {
		out[i] = Sample{At: p[0], Rows: p[1]}
	}
	return out, nil
}

// AddSample returns samples with the progress rows at at added, and
// whether that changed them. The sample is appended if it comes
// [SampleEvery] or more after the last one, or if last is set (the
// backfill's end) and it differs from the last one, dropping the oldest
// beyond [MaxSamples]; otherwise it is left out. samples is not changed.
func AddSample(samples []Sample, at time.Time, rows int64, last bool) ([]Sample, bool) {
	s := Sample{At: Micros(at), Rows: rows}
	if n := len(samples); n > 0 && s.At-samples[n-1].At < SampleEvery.Microseconds() && (!last || s == samples[n-1]) {
		return samples, false
	}
	out := append(samples[:len(samples):len(samples)], s)
	if len(out) > MaxSamples {
		out = out[len(out)-MaxSamples:]
	}
	return out, true
}
