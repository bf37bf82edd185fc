package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/internal/metrictest"
	"github.com/cutover-go/cutover/internal/testutil"
)

var errDown = errors.New("store down")

func newBreaker(t *testing.T, m *metrictest.Reader, s breaker.Settings) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New("users-db", breaker.WithSettings(s),
		breaker.WithMeterProvider(m.Provider()), breaker.WithLogger(testutil.Quiet()))
	require.NoError(t, err)
	return b
}

func tripAfter(n uint32) func(breaker.Counts) bool {
	return func(c breaker.Counts) bool { return c.ConsecutiveFailures >= n }
}

func TestOpensAfterFailuresAndRefuses(t *testing.T) {
	m := metrictest.New(t)
	b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(3), Timeout: time.Hour})
	fail := func(context.Context) error { return errDown }
	for range 3 {
		assert.ErrorIs(t, b.Do(t.Context(), fail), errDown)
	}
	assert.Equal(t, breaker.Open, b.State())

	called := false
	err := b.Do(t.Context(), func(context.Context) error { called = true; return nil })
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.False(t, called, "a refused call must not reach the store")
	assert.Equal(t, int64(1), m.Sum("cutover.breaker.rejections", "cutover.reason", "open"))
	assert.Equal(t, int64(1), m.Sum("cutover.breaker.transitions", "cutover.breaker.state", "open"))
	assert.Equal(t, int64(2), m.Sum("cutover.breaker.state", "cutover.breaker", "users-db"), "gauge: 2 means open")
}

func TestCallerCancellationIsNotAFailure(t *testing.T) {
	m := metrictest.New(t)
	b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(1), Timeout: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 5 {
		err := b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
		assert.ErrorIs(t, err, context.Canceled)
	}
	assert.Equal(t, breaker.Closed, b.State())
	assert.Zero(t, b.Counts().TotalFailures)
	assert.False(t, b.IsFailure(ctx, context.Canceled))
}

func TestDetachedTimeoutIsAFailure(t *testing.T) {
	m := metrictest.New(t)
	b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(1), Timeout: time.Hour})
	caller, cancel := context.WithCancel(t.Context())
	cancel() // the request is over; the detached call timed out on its own
	tk, err := b.Allow()
	require.NoError(t, err)
	tk.Done(context.WithoutCancel(caller), context.DeadlineExceeded)
	assert.Equal(t, breaker.Open, b.State())
}

func TestIsFailureSetting(t *testing.T) {
	m := metrictest.New(t)
	notFound := errors.New("not found")
	b := newBreaker(t, m, breaker.Settings{
		ReadyToTrip: tripAfter(1),
		IsFailure:   func(err error) bool { return !errors.Is(err, notFound) },
	})
	for range 3 {
		_ = b.Do(t.Context(), func(context.Context) error { return notFound })
	}
	assert.Equal(t, breaker.Closed, b.State())
	assert.False(t, b.IsFailure(t.Context(), notFound))
	assert.True(t, b.IsFailure(t.Context(), errDown))
	assert.False(t, b.IsFailure(t.Context(), nil))
}

// TestHalfOpenProbeClosesTheBreaker runs in a synctest bubble, whose fake
// clock gobreaker reads: the breaker stays open for its whole timeout, goes
// half-open just after, and lets one probe through, which closes it.
func TestHalfOpenProbeClosesTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(1), Timeout: time.Minute})
		_ = b.Do(t.Context(), func(context.Context) error { return errDown })
		time.Sleep(time.Minute)
		assert.Equal(t, breaker.Open, b.State())
		time.Sleep(time.Nanosecond)
		assert.Equal(t, breaker.HalfOpen, b.State())
		require.NoError(t, b.Do(t.Context(), func(context.Context) error { return nil }))
		assert.Equal(t, breaker.Closed, b.State())
		assert.Equal(t, int64(1), m.Sum("cutover.breaker.transitions", "cutover.breaker.state", "half-open"))
		assert.Equal(t, int64(1), m.Sum("cutover.breaker.transitions", "cutover.breaker.state", "closed"))
	})
}

func TestNewRejectsBadInput(t *testing.T) {
	_, err := breaker.New("")
	assert.ErrorIs(t, err, breaker.ErrInvalidInput)
	assert.ErrorContains(t, err, "breaker: invalid input: empty name")
	_, err = breaker.New("x", breaker.WithSettings(breaker.Settings{Timeout: -time.Second}))
	assert.ErrorIs(t, err, breaker.ErrInvalidInput)
	assert.ErrorContains(t, err, "breaker: invalid input: negative")
}

// TestDoCompletesTheTicketWhenFnPanics runs in a synctest bubble, whose fake
// clock gobreaker reads. A probe that panics is a failed probe: the breaker
// opens again and, after its timeout, lets the next probe through. A
// ticket left open would keep it half-open, refusing every call for good.
func TestDoCompletesTheTicketWhenFnPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := metrictest.New(t)
		b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(1), Timeout: time.Minute})
		_ = b.Do(t.Context(), func(context.Context) error { return errDown })
		time.Sleep(time.Minute + time.Nanosecond)
		require.Equal(t, breaker.HalfOpen, b.State())

		assert.PanicsWithValue(t, "probe bug", func() {
			_ = b.Do(t.Context(), func(context.Context) error { panic("probe bug") })
		}, "the panic goes on to Do's caller unchanged")
		assert.Equal(t, breaker.Open, b.State(), "a panicking probe is a failed probe")

		time.Sleep(time.Minute + time.Nanosecond)
		require.NoError(t, b.Do(t.Context(), func(context.Context) error { return nil }), "the next probe goes through")
		assert.Equal(t, breaker.Closed, b.State())
	})
}

// TestPanicIsAFailureWhateverIsFailureSays: a breaker told that no error is
// a failure still counts a panic.
func TestPanicIsAFailureWhateverIsFailureSays(t *testing.T) {
	m := metrictest.New(t)
	b := newBreaker(t, m, breaker.Settings{ReadyToTrip: tripAfter(1), Timeout: time.Hour,
		IsFailure: func(error) bool { return false }})
	assert.Panics(t, func() { _ = b.Do(t.Context(), func(context.Context) error { panic("bug") }) })
	assert.Equal(t, breaker.Open, b.State())
	pe := &cutover.PanicError{Value: "bug"}
	assert.True(t, b.IsFailure(t.Context(), fmt.Errorf("wrapped: %w", pe)))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	assert.True(t, b.IsFailure(canceled, pe), "a panic is no cancellation")
}
