package shadowread_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/shadowread"
)

type address struct {
	City  string
	Phone string // sensitive by WithSensitive("Address.Phone")
}

type phoneEntry struct {
	Kind   string
	Number string `cutover:"sensitive"`
}

type person struct {
	ID      string
	Name    string
	Email   string `cutover:"sensitive"`
	Address *address
	Phones  []phoneEntry
	Labels  map[string]string // "ssn" sensitive by WithSensitive("Labels.ssn")
}

func ann() person {
	return person{
		ID: "1", Name: "Ann", Email: "ann@example.org",
		Address: &address{City: "Oslo", Phone: "+47 555 01 00"},
		Phones:  []phoneEntry{{Kind: "home", Number: "+47 555 01 01"}, {Kind: "work", Number: "+47 555 01 02"}},
		Labels:  map[string]string{"ssn": "010203-12345", "tier": "gold"},
	}
}

// sensitiveValues are the values of ann and of the edits below that are
// sensitive; none may be seen outside the process.
var sensitiveValues = []string{
	"ann@example.org", "ann@example.net", "+47 555 01 00", "+47 555 01 99", "+47 555 01 01",
	"+47 555 01 02", "+47 555 01 98", "010203-12345", "999999-99999",
}

// sinks are everything a reader sends out of the process: all log output at
// every level, every span with its attributes, events and status, every
// metric with its attributes, and the repair log; and what the mismatch
// function gets.
type sinks struct {
	logs     logCapture
	spans    *tracetest.InMemoryExporter
	tp       *sdktrace.TracerProvider
	metrics  *sdkmetric.ManualReader
	mp       *sdkmetric.MeterProvider
	repairs  cutover.MemoryRepairLog
	reported []*shadowread.Mismatch[person]
}

func newSinks(t *testing.T) *sinks {
	s := &sinks{spans: tracetest.NewInMemoryExporter(), metrics: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(s.spans))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.metrics))
	t.Cleanup(func() {
		_ = s.tp.Shutdown(context.Background())
		_ = s.mp.Shutdown(context.Background())
	})
	return s
}

func (s *sinks) options() []shadowread.Option[person] {
	return []shadowread.Option[person]{
		shadowread.WithSynchronous[person](),
		shadowread.WithLogger[person](s.logs.logger()),
		shadowread.WithTracerProvider[person](s.tp),
		shadowread.WithMeterProvider[person](s.mp),
		shadowread.WithRepairLog[person](&s.repairs),
		shadowread.WithOnMismatch(func(_ context.Context, m *shadowread.Mismatch[person]) { s.reported = append(s.reported, m) }),
	}
}

// outside returns, as text, everything the reader sent out of the process.
func (s *sinks) outside(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(s.logs.String())
	for _, span := range s.spans.GetSpans() {
		fmt.Fprintf(&b, "%+v\n", span)
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, s.metrics.Collect(context.Background(), &rm))
	fmt.Fprintf(&b, "%+v\n", rm)
	for _, e := range s.repairs.Entries() {
		fmt.Fprintf(&b, "%+v %v\n", e, e.Err)
	}
	return b.String()
}

// read reads key through r inside a traced request, from the two stores.
func (s *sinks) read(t *testing.T, r *shadowread.Reader[person], stores dualwritetest.Pair[person], key string) {
	t.Helper()
	ctx, span := s.tp.Tracer("test").Start(t.Context(), "request")
	_, err := r.Read(ctx, key, func(ctx context.Context, side cutover.Side) (person, error) {
		return stores.Side(side).Get(ctx, key)
	})
	span.End()
	require.NoError(t, err)
}

var hashRE = regexp.MustCompile(`<redacted:[0-9a-f]{8}>`)

// TestSensitiveValuesNeverLeaveTheProcess: a mismatch on a sensitive field
// (by tag or by path, nested, in a slice of structs, in a map, behind a
// pointer) is logged, traced, counted, recorded for repair and reported,
// and its value is in none of them: the diff shows a hash where it would
// have shown the value. Fields that are not sensitive are shown.
func TestSensitiveValuesNeverLeaveTheProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*person)
		want string // the diff, with hashes as #
	}{
		{"tagged field", func(p *person) { p.Email = "ann@example.net" }, ".Email: # != #"},
		{"nested path", func(p *person) { p.Address.Phone = "+47 555 01 99" }, ".Address.Phone: # != #"},
		{"slice of structs", func(p *person) { p.Phones[1].Number = "+47 555 01 98" }, ".Phones[1].Number: # != #"},
		{"element shown whole", func(p *person) { p.Phones = p.Phones[:1] },
			`.Phones[1]: missing in new (old: phoneEntry{Kind:"work", Number:#})`},
		{"map", func(p *person) { p.Labels["ssn"] = "999999-99999" }, `.Labels["ssn"]: # != #`},
		{"pointer shown whole", func(p *person) { p.Address = nil }, `.Address: &address{City:"Oslo", Phone:#} != <nil>`},
		{"several at once", func(p *person) { p.Name, p.Email, p.Address.Phone = "Anna", "ann@example.net", "+47 555 01 99" },
			".Name: \"Ann\" != \"Anna\"\n.Email: # != #\n.Address.Phone: # != #"},
	} {
		for _, stage := range []cutover.Stage{cutover.Shadow, cutover.Live} {
			t.Run(tc.name+"/"+stage.String(), func(t *testing.T) {
				s := newSinks(t)
				r, err := shadowread.New("people.get", cutover.Fixed(stage),
					append(s.options(), shadowread.WithSensitive[person]("Address.Phone", "Labels.ssn"))...)
				require.NoError(t, err)
				stores := dualwritetest.NewPair[person]()
				old, new := ann(), ann()
				tc.edit(&new)
				require.NoError(t, stores.Old.Put(t.Context(), "1", old))
				require.NoError(t, stores.New.Put(t.Context(), "1", new))

				s.read(t, r, stores, "1")

				require.Len(t, s.reported, 1)
				diff := s.reported[0].Diff
				assert.Equal(t, tc.want, hashRE.ReplaceAllString(diff, "#"))
				out := s.outside(t)
				for _, v := range sensitiveValues {
					assert.NotContains(t, out, v)
					assert.NotContains(t, diff, v)
				}
				// Everything was there to look at: the log line with
				// the diff, the spans, the counters, the repair entry.
				assert.Contains(t, out, "cutover: shadow read mismatch")
				assert.Contains(t, out, hashRE.FindString(diff))
				assert.Contains(t, out, "cutover.shadowread.mismatches")
				assert.NotEmpty(t, s.spans.GetSpans())
				require.Len(t, s.repairs.Entries(), 1)
				assert.Nil(t, s.repairs.Entries()[0].Err, "a repair entry carries the key, not the diff")
				// The mismatch function gets the answers themselves.
				assert.Equal(t, new, s.reported[0].New)
			})
		}
	}
}

// TestRedactionHashesTellEqualFromDifferent: the hash of a sensitive value
// is the same in every diff of the process, so that an operator can tell
// that two stores swapped two emails without seeing either; with the same
// redaction key, two readers (or two processes) agree, and another key
// gives other hashes.
func TestRedactionHashesTellEqualFromDifferent(t *testing.T) {
	key := []byte("a key of sixteen bytes or more")
	diffs := func(opts ...shadowread.Option[person]) [2]string {
		s := newSinks(t)
		r, err := shadowread.New("people.get", cutover.Fixed(cutover.Shadow), append(s.options(), opts...)...)
		require.NoError(t, err)
		stores := dualwritetest.NewPair[person]()
		a, b := ann(), ann()
		b.ID, b.Email = "2", "ann@example.net"
		require.NoError(t, stores.Old.Put(t.Context(), "1", a))
		require.NoError(t, stores.New.Put(t.Context(), "1", person{ID: "1", Name: a.Name, Email: b.Email, Address: a.Address, Phones: a.Phones, Labels: a.Labels}))
		require.NoError(t, stores.Old.Put(t.Context(), "2", b))
		require.NoError(t, stores.New.Put(t.Context(), "2", person{ID: "2", Name: b.Name, Email: a.Email, Address: b.Address, Phones: b.Phones, Labels: b.Labels}))
		s.read(t, r, stores, "1")
		s.read(t, r, stores, "2")
		require.Len(t, s.reported, 2)
		return [2]string{s.reported[0].Diff, s.reported[1].Diff}
	}
	hashes := func(d string) []string { return hashRE.FindAllString(d, -1) }

	d := diffs()
	first, second := hashes(d[0]), hashes(d[1])
	require.Len(t, first, 2)
	require.Len(t, second, 2)
	assert.NotEqual(t, first[0], first[1], "different emails, different hashes")
	assert.Equal(t, []string{first[1], first[0]}, second, "the same emails, swapped: the same hashes, swapped")
	assert.Equal(t, d, diffs(), "one process, one key: the same hashes in every reader")

	keyed := diffs(shadowread.WithRedactionKey[person](key))
	assert.Equal(t, keyed, diffs(shadowread.WithRedactionKey[person]([]byte("a key of sixteen bytes or more"))))
	assert.NotEqual(t, keyed, d)
	assert.NotEqual(t, keyed, diffs(shadowread.WithRedactionKey[person]([]byte("another key, just as long"))))
}

// TestWithoutDiffValues: no value read from either store reaches anything
// outside the process, sensitive or not, and the diff does not quote the
// stores' errors; it still names each differing path.
func TestWithoutDiffValues(t *testing.T) {
	s := newSinks(t)
	r, err := shadowread.New("people.get", cutover.Fixed(cutover.Shadow), append(s.options(), shadowread.WithoutDiffValues[person]())...)
	require.NoError(t, err)
	stores := dualwritetest.NewPair[person]()
	old, new := ann(), ann()
	new.Name, new.Email, new.Phones = "Anna", "ann@example.net", new.Phones[:1]
	new.Labels["tier"], new.Labels["extra"] = "silver", "x"
	require.NoError(t, stores.Old.Put(t.Context(), "1", old))
	require.NoError(t, stores.New.Put(t.Context(), "1", new))
	s.read(t, r, stores, "1")

	// The new store fails where the old one answers. Its error is
	// recorded on the span of its call, as every store call's is; the
	// diff says only which store failed.
	require.NoError(t, stores.Old.Put(t.Context(), "2", old))
	stores.New.FailNext(1, errors.New("new store: row 7f3e unreadable"))
	s.read(t, r, stores, "2")

	require.Len(t, s.reported, 2)
	want := ".Name: values differ\n.Email: values differ\n.Phones[1]: missing in new\n.Labels[#]: missing in old\n.Labels[#]: values differ"
	assert.ElementsMatch(t, strings.Split(want, "\n"), strings.Split(hashRE.ReplaceAllString(s.reported[0].Diff, "#"), "\n"))
	assert.Equal(t, "error: <nil> != <error>", s.reported[1].Diff)
	out := s.outside(t)
	for _, v := range append(sensitiveValues, "Anna", "gold", "silver", "tier", "extra") {
		assert.NotContains(t, out, v)
	}
	assert.NotContains(t, s.logs.String(), "7f3e")
	for _, m := range s.reported {
		assert.NotContains(t, m.Diff, `"`, "no quoted value in %q", m.Diff)
	}
}

// TestSensitiveHidesTooLargeReports: the log line of a comparison stopped
// at its limits hides sensitive values, map keys included, as a
// mismatch's does.
func TestSensitiveHidesTooLargeReports(t *testing.T) {
	s := newSinks(t)
	r, err := shadowread.New("people.get", cutover.Fixed(cutover.Shadow),
		append(s.options(), shadowread.WithSensitive[person]("Labels"), shadowread.WithCompareLimits[person](2, 0))...)
	require.NoError(t, err)
	stores := dualwritetest.NewPair[person]()
	p := ann()
	p.Phones, p.Address = nil, nil
	require.NoError(t, stores.Old.Put(t.Context(), "1", p))
	q := ann()
	q.Phones, q.Address = nil, nil
	require.NoError(t, stores.New.Put(t.Context(), "1", q))
	s.read(t, r, stores, "1")
	out := s.outside(t)
	assert.Regexp(t, `comparison stopped: depth limit 2 exceeded at \.Labels\[<redacted:[0-9a-f]{8}>\]`, out)
	for _, v := range append(sensitiveValues, "ssn", "tier", "gold") {
		assert.NotContains(t, out, v)
	}
	assert.Empty(t, s.reported)
}
