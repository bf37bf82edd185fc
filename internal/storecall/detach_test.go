package storecall_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cutover-go/cutover/internal/storecall"
)

type key struct{}

// The tests of Detached run in synctest bubbles, whose fake clock moves only
// when every goroutine of the bubble waits: a deadline passes exactly when
// the test sleeps past it, however loaded the machine.

func TestDetachedKeepsValuesNotCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		caller, cancel := context.WithCancelCause(context.WithValue(t.Context(), key{}, "v"))
		d := storecall.Detach(caller, time.Second)
		defer d.Release()
		cancel(context.Canceled)

		assert.Equal(t, "v", d.Value(key{}))
		assert.NoError(t, d.Err(), "the caller's cancellation does not reach a detached call")
		assert.NoError(t, context.Cause(d), "nor does the caller's cause")
		select {
		case <-d.Done():
			t.Fatal("Done closed by the caller's cancellation")
		default:
		}
		child, stop := context.WithCancel(d)
		defer stop()
		assert.NoError(t, child.Err())
	})
}

func TestDetachedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := storecall.Detach(t.Context(), time.Second)
		defer d.Release()
		deadline, ok := d.Deadline()
		require.True(t, ok)
		assert.Equal(t, time.Now().Add(time.Second), deadline)

		time.Sleep(time.Second - time.Nanosecond)
		assert.NoError(t, d.Err())
		time.Sleep(time.Nanosecond)
		assert.ErrorIs(t, d.Err(), context.DeadlineExceeded, "Err sees the deadline though Done was never asked for")
		assert.ErrorIs(t, context.Cause(d), context.DeadlineExceeded)
		<-d.Done() // closed already
	})
}

// The timeout begins when the call first looks at its context, not when
// the context is made: a store that never looks reads no clock.
func TestDetachedTimeoutStartsAtTheFirstLook(t *testing.T) {
	for name, look := range map[string]func(d *storecall.Detached){
		"Err":      func(d *storecall.Detached) { _ = d.Err() },
		"Deadline": func(d *storecall.Detached) { _, _ = d.Deadline() },
		"Done":     func(d *storecall.Detached) { _ = d.Done() },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := storecall.Detach(t.Context(), time.Second)
				defer d.Release()
				time.Sleep(5 * time.Second)
				look(d)
				deadline, _ := d.Deadline()
				assert.Equal(t, time.Now().Add(time.Second), deadline, "a second from the first look")
				time.Sleep(time.Second - time.Nanosecond)
				assert.NoError(t, d.Err())
				time.Sleep(time.Nanosecond)
				assert.ErrorIs(t, d.Err(), context.DeadlineExceeded)
				<-d.Done()
			})
		})
	}
}

func TestDetachedDoneClosesAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := storecall.Detach(t.Context(), time.Second)
		defer d.Release()
		child, stop := context.WithTimeout(d, time.Hour)
		defer stop()
		ran := make(chan struct{})
		context.AfterFunc(d, func() { close(ran) })

		start := time.Now()
		<-d.Done()
		assert.Equal(t, time.Second, time.Since(start))
		assert.ErrorIs(t, d.Err(), context.DeadlineExceeded)
		<-child.Done()
		assert.ErrorIs(t, child.Err(), context.DeadlineExceeded, "a derived context ends with its parent")
		assert.ErrorIs(t, context.Cause(child), context.DeadlineExceeded)
		<-ran
	})
}

func TestDetachedRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := storecall.Detach(t.Context(), time.Second)
		stopped := context.AfterFunc(d, func() { t.Error("a stopped function ran") })
		ran := make(chan struct{})
		context.AfterFunc(d, func() { close(ran) })
		assert.True(t, stopped())

		d.Release()
		d.Release()
		<-d.Done()
		<-ran
		assert.ErrorIs(t, d.Err(), context.Canceled)
		time.Sleep(time.Hour)
		assert.ErrorIs(t, d.Err(), context.Canceled, "the first end stays")
		assert.False(t, stopped())

		late := make(chan struct{})
		context.AfterFunc(d, func() { close(late) })
		<-late
	})
}

func TestDetachedWithoutTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := storecall.Detach(t.Context(), 0)
		_, ok := d.Deadline()
		assert.False(t, ok)
		done := d.Done()
		time.Sleep(time.Hour)
		select {
		case <-done:
			t.Fatal("Done closed without a timeout or a release")
		default:
		}
		d.Release()
		<-done
		assert.ErrorIs(t, d.Err(), context.Canceled)
	})
}

// TestDetachedIsSafeForConcurrentUse is for the race detector: the deadline,
// the release and every method at once.
func TestDetachedIsSafeForConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := storecall.Detach(t.Context(), time.Millisecond)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_ = d.Err()
				<-d.Done()
				_, _ = d.Deadline()
				child, cancel := context.WithCancel(d)
				<-child.Done()
				cancel()
			})
		}
		wg.Go(d.Release)
		wg.Wait()
		assert.Error(t, d.Err())
	})
}

// TestDetachedReleaseRacingDone releases contexts while another goroutine
// makes their Done channel: whichever comes first, the channel closes and
// Err reports the release.
func TestDetachedReleaseRacingDone(t *testing.T) {
	for range 1000 {
		d := storecall.Detach(t.Context(), time.Hour)
		released := make(chan struct{})
		go func() {
			d.Release()
			close(released)
		}()
		select {
		case <-d.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("waited 10 s for Done after a racing Release")
		}
		<-released
		require.ErrorIs(t, d.Err(), context.Canceled)
	}
}
