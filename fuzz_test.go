package cutover_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
			require.NoError(t, err, "ParseStage(%q)", s)
			require.NoError(t, uerr, "UnmarshalText(%q)", s)
			require.Equal(t, cutover.Stages[want], got, "ParseStage(%q)", s)
			require.Equal(t, got, into, "UnmarshalText(%q)", s)
			text, err := got.MarshalText()
			require.NoError(t, err, "%v: MarshalText", got)
			require.Equal(t, s, string(text), "%v: MarshalText", got)
			require.Equal(t, s, got.String())
			require.True(t, got.Valid(), "%v: Valid", got)
			return
		}

		require.Error(t, err, "ParseStage(%q) = %v: accepted a string that is no stage name", s, got)
		require.Error(t, uerr, "UnmarshalText(%q): accepted a string that is no stage name", s)
		for _, e := range []error{err, uerr} {
			require.ErrorIs(t, e, cutover.ErrUnknownStage, "ParseStage(%q)", s)
			require.LessOrEqual(t, len(e.Error()), maxStageErrLen, "ParseStage of %d bytes: error %.100s...", len(s), e.Error())
		}
		require.Equal(t, cutover.Off, got, "ParseStage(%q) with an error, want the zero stage", s)
		require.Equal(t, cutover.Rampdown, into, "UnmarshalText(%q) failed but changed the stage", s)
		if len(s) <= 64 {
			require.Contains(t, err.Error(), strconv.Quote(s), "ParseStage(%q): the error does not name the input", s)
		}
	})
}
