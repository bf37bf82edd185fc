package cutover_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover-go/cutover"
)

// maxStageErrLen bounds the text of a ParseStage error whatever its input:
// the fixed words, and at most 64 bytes of the input quoted, each byte
// taking at most four characters (\xff), plus "...".
const maxStageErrLen = 400

// FuzzParseStage checks that ParseStage never panics and accepts exactly
// the six stage names, as written; that an accepted name round-trips
// through String, MarshalText and UnmarshalText; and that anything else
// gets an error that wraps ErrUnknownStage, names the input (cut short if
// long), stays bounded in length, comes with the zero stage, and leaves a
// Stage it is unmarshaled into unchanged.
func FuzzParseStage(f *testing.F) {
	for _, s := range cutover.Stages {
		f.Add(s.String())
	}
	for _, s := range []string{"", "Off", "SHADOW", " live", "live ", "live\n", "dual-write", "dual_write",
		"shadow\x00", "l\u0456ve", "\uff4c\uff49\uff56\uff45", "\xff", "completed", "rampdown; DROP TABLE x",
		"Stage(3)", "3", strings.Repeat("off", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := -1
		for i, st := range cutover.Stages {
			if st.String() == s {
				want = i
			}
		}
		got, err := cutover.ParseStage(s)
		into := cutover.Rampdown
		uerr := into.UnmarshalText([]byte(s))

		if want >= 0 {
			if err != nil || uerr != nil {
				t.Fatalf("ParseStage(%q) = %v, %v; UnmarshalText: %v", s, got, err, uerr)
			}
			if got != cutover.Stages[want] || into != got {
				t.Fatalf("ParseStage(%q) = %v, UnmarshalText gave %v, want %v", s, got, into, cutover.Stages[want])
			}
			text, err := got.MarshalText()
			if err != nil || string(text) != s || got.String() != s || !got.Valid() {
				t.Fatalf("%v: MarshalText = %q, %v; String = %q", got, text, err, got.String())
			}
			return
		}

		if err == nil || uerr == nil {
			t.Fatalf("ParseStage(%q) = %v, %v; UnmarshalText: %v: accepted a string that is no stage name", s, got, err, uerr)
		}
		for _, e := range []error{err, uerr} {
			if !errors.Is(e, cutover.ErrUnknownStage) {
				t.Fatalf("ParseStage(%q): %v does not wrap ErrUnknownStage", s, e)
			}
			if n := len(e.Error()); n > maxStageErrLen {
				t.Fatalf("ParseStage of %d bytes: error of %d bytes: %.100s...", len(s), n, e.Error())
			}
		}
		if got != cutover.Off {
			t.Fatalf("ParseStage(%q) = %v with an error, want the zero stage", s, got)
		}
		if into != cutover.Rampdown {
			t.Fatalf("UnmarshalText(%q) failed but changed the stage to %v", s, into)
		}
		if len(s) <= 64 && !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Fatalf("ParseStage(%q): error %q does not name the input", s, err)
		}
	})
}
