package meta

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAddSampleKeepsThemApartAndBounded(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var samples []Sample
	var added int
	// A batch every 4 seconds for an hour: a sample every 12 seconds,
	// the first at once.
	for i := range 900 {
		var ok bool
		before := slices.Clone(samples)
		samples, ok = AddSample(samples, start.Add(time.Duration(i)*4*time.Second), int64(i*100), false)
		if ok {
			added++
		} else if !slices.Equal(before, samples) {
			t.Fatalf("batch %d: samples changed without being added", i)
		}
	}
	if added != 300 {
		t.Errorf("%d samples added, want 300", added)
	}
	if len(samples) != MaxSamples {
		t.Fatalf("%d samples kept, want %d", len(samples), MaxSamples)
	}
	for i := 1; i < len(samples); i++ {
		if d := samples[i].At - samples[i-1].At; d != 12_000_000 {
			t.Errorf("samples %d and %d are %d µs apart", i-1, i, d)
		}
	}
	if last := samples[len(samples)-1]; last != (Sample{At: Micros(start.Add(897 * 4 * time.Second)), Rows: 89700}) {
		t.Errorf("last sample %+v", last)
	}

	// The end is kept, however soon after the last; the same point twice
	// is not.
	end := start.Add(899*4*time.Second + time.Second)
	samples, ok := AddSample(samples, end, 90000, true)
	if !ok || len(samples) != MaxSamples || samples[len(samples)-1] != (Sample{At: Micros(end), Rows: 90000}) {
		t.Errorf("end sample not added: %v, %+v", ok, samples[len(samples)-1])
	}
	if _, ok := AddSample(samples, end, 90000, true); ok {
		t.Error("the same end added twice")
	}

	// The input is never changed: a new sample gets a new array.
	first := []Sample{{At: 1, Rows: 1}, {At: 2, Rows: 2}}
	base := first[:1]
	if got, _ := AddSample(base, time.UnixMicro(20_000_001), 5, false); &got[0] == &first[0] || first[1] != (Sample{At: 2, Rows: 2}) {
		t.Error("AddSample wrote into its argument's array")
	}
}

func TestSamplesEncoding(t *testing.T) {
	samples := []Sample{{At: 1761998400000000, Rows: 0}, {At: 1761998410000000, Rows: 12345}, {At: -5, Rows: 1 << 62}}
	s := EncodeSamples(samples)
	if s != `[[1761998400000000,0],[1761998410000000,12345],[-5,4611686018427387904]]` {
		t.Errorf("encoded as %s", s)
	}
	back, err := DecodeSamples(s)
	if err != nil || !slices.Equal(back, samples) {
		t.Errorf("decoded as %v, %v", back, err)
	}
	if got, err := DecodeSamples(""); err != nil || got != nil {
		t.Errorf(`DecodeSamples("") = %v, %v`, got, err)
	}
	if EncodeSamples(nil) != "[]" {
		t.Errorf("no samples encoded as %s", EncodeSamples(nil))
	}
	defer func(e error) { ErrCorrupt = e }(ErrCorrupt)
	ErrCorrupt = errors.New("corrupt") // package expandcontract sets it
	for _, bad := range []string{"garbage", `[[1.5,2]]`, `{"at":1}`, `[["1",2]]`} {
		if _, err := DecodeSamples(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeSamples(%q) = %v", bad, err)
		}
	}
}
