package dualwritetest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
)

var errBoom = errors.New("boom")

// waitCtx bounds a wait so that a broken store fails the test quickly
// instead of hanging it.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustPanic runs f and returns the value it panicked with.
func mustPanic(t *testing.T, f func()) (value any) {
	t.Helper()
	defer func() {
		if value = recover(); value == nil {
			t.Fatal("no panic")
		}
	}()
	f()
	return nil
}

// async runs f on its own goroutine and returns a channel that receives
// its error.
func async(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return done
}

func TestGetPutDelete(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[int]("s")

	if _, err := s.Get(ctx, "a"); err != dualwritetest.ErrNotFound {
		t.Fatalf("Get of absent key: err = %v, want ErrNotFound", err)
	}
	for _, v := range []int{1, 2} {
		if err := s.Put(ctx, "a", v); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got, err := s.Get(ctx, "a"); got != v || err != nil {
			t.Fatalf("Get = %d, %v; want %d, nil", got, err, v)
		}
	}
	_ = s.Put(ctx, "b", 3)
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}

	snap := s.Snapshot()
	snap["c"] = 4
	if s.Len() != 2 {
		t.Fatal("changing a snapshot changed the store")
	}

	for range 2 { // deleting an absent key succeeds
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if _, err := s.Get(ctx, "a"); err != dualwritetest.ErrNotFound {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if got := s.Snapshot(); len(got) != 1 || got["b"] != 3 {
		t.Fatalf("Snapshot = %v, want map[b:3]", got)
	}
}

func TestCalls(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[string]("s")
	before := time.Now()
	_ = s.Put(ctx, "a", "x")
	_, _ = s.Get(ctx, "a")
	_, _ = s.Get(ctx, "b")
	_ = s.Delete(ctx, "a")

	want := []dualwritetest.Call{
		{Op: dualwritetest.OpPut, Key: "a"},
		{Op: dualwritetest.OpGet, Key: "a"},
		{Op: dualwritetest.OpGet, Key: "b", Err: dualwritetest.ErrNotFound},
		{Op: dualwritetest.OpDelete, Key: "a"},
	}
	calls := s.Calls()
	if len(calls) != len(want) {
		t.Fatalf("got %d calls, want %d", len(calls), len(want))
	}
	for i, c := range calls {
		w := want[i]
		if c.Op != w.Op || c.Key != w.Key || c.Err != w.Err || c.Panic != nil {
			t.Errorf("call %d = %+v, want %+v", i, c, w)
		}
		if c.Start.Before(before) || c.Duration < 0 {
			t.Errorf("call %d: Start %v, Duration %v", i, c.Start, c.Duration)
		}
		before = c.Start
	}
	for op, n := range map[string]int{dualwritetest.OpGet: 2, dualwritetest.OpPut: 1, dualwritetest.OpDelete: 1, "other": 0} {
		if got := s.Count(op); got != n {
			t.Errorf("Count(%q) = %d, want %d", op, got, n)
		}
	}

	calls[0].Key = "changed"
	if s.Calls()[0].Key != "a" {
		t.Error("changing the result of Calls changed the store")
	}
}

func TestFailNext(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[int]("s")
	_ = s.Put(ctx, "a", 1)

	s.FailNext(3, errBoom)
	if _, err := s.Get(ctx, "a"); err != errBoom {
		t.Errorf("Get: err = %v, want %v", err, errBoom)
	}
	if err := s.Put(ctx, "a", 2); err != errBoom {
		t.Errorf("Put: err = %v, want %v", err, errBoom)
	}
	if err := s.Delete(ctx, "a"); err != errBoom {
		t.Errorf("Delete: err = %v, want %v", err, errBoom)
	}
	if got, err := s.Get(ctx, "a"); got != 1 || err != nil {
		t.Errorf("after 3 failures: Get = %d, %v; want 1, nil", got, err)
	}
	if c := s.Calls()[2]; c.Err != errBoom {
		t.Errorf("recorded Err = %v, want %v", c.Err, errBoom)
	}

	s.FailNext(1, nil)
	if err := s.Put(ctx, "a", 2); err != dualwritetest.ErrInjected {
		t.Errorf("nil err: got %v, want ErrInjected", err)
	}

	s.FailNext(5, nil)
	s.FailNext(0, nil)
	if err := s.Put(ctx, "a", 2); err != nil {
		t.Errorf("after FailNext(0): %v", err)
	}

	mustPanic(t, func() { s.FailNext(-1, nil) })
}

func TestFailWhen(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[int]("s")
	s.FailWhen(func(op, key string) error {
		if op == dualwritetest.OpPut && key == "bad" {
			return errBoom
		}
		return nil
	})

	if err := s.Put(ctx, "bad", 1); err != errBoom {
		t.Errorf("Put bad: err = %v, want %v", err, errBoom)
	}
	if err := s.Put(ctx, "good", 1); err != nil {
		t.Errorf("Put good: %v", err)
	}
	if _, err := s.Get(ctx, "bad"); err != dualwritetest.ErrNotFound {
		t.Errorf("Get bad: err = %v, want ErrNotFound", err)
	}

	s.FailNext(1, nil) // takes precedence
	if err := s.Put(ctx, "bad", 1); err != dualwritetest.ErrInjected {
		t.Errorf("FailNext and FailWhen: err = %v, want ErrInjected", err)
	}

	s.FailWhen(nil)
	if err := s.Put(ctx, "bad", 1); err != nil {
		t.Errorf("after FailWhen(nil): %v", err)
	}
}

// failures returns which of n calls to a store with the given seed and
// failure rate fail.
func failures(seed uint64, rate float64, n int) []bool {
	s := dualwritetest.NewStore[int]("s")
	s.SetSeed(seed)
	s.FailRate(rate, errBoom)
	failed := make([]bool, n)
	for i := range failed {
		err := s.Put(context.Background(), "k", i)
		failed[i] = err == errBoom
	}
	return failed
}

func count(failed []bool) int {
	n := 0
	for _, f := range failed {
		if f {
			n++
		}
	}
	return n
}

func TestFailRate(t *testing.T) {
	const n = 1000
	if got := count(failures(1, 0, n)); got != 0 {
		t.Errorf("rate 0: %d failures", got)
	}
	if got := count(failures(1, 1, n)); got != n {
		t.Errorf("rate 1: %d failures, want %d", got, n)
	}
	half := failures(1, 0.5, n)
	if got := count(half); got < 400 || got > 600 {
		t.Errorf("rate 0.5: %d failures of %d", got, n)
	}
	if fmt.Sprint(half) != fmt.Sprint(failures(1, 0.5, n)) {
		t.Error("same seed, different failures")
	}
	if fmt.Sprint(half) == fmt.Sprint(failures(2, 0.5, n)) {
		t.Error("different seeds, same failures")
	}

	s := dualwritetest.NewStore[int]("s")
	if fmt.Sprint(half) != fmt.Sprint(failures(dualwritetest.DefaultSeed, 0.5, n)) {
		t.Error("DefaultSeed is not the seed of a new store")
	}
	s.FailRate(1, nil)
	if err := s.Put(t.Context(), "k", 1); err != dualwritetest.ErrInjected {
		t.Errorf("nil err: got %v, want ErrInjected", err)
	}
	if s.Len() != 0 {
		t.Error("failed Put stored its value")
	}
	for _, rate := range []float64{-0.1, 1.1, math.NaN()} {
		mustPanic(t, func() { s.FailRate(rate, nil) })
	}
}

func TestPanicNext(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[int]("s")
	s.PanicNext(1, "boom")
	s.FailNext(1, errBoom)

	if v := mustPanic(t, func() { _ = s.Put(ctx, "a", 1) }); v != "boom" {
		t.Errorf("panic value = %v, want boom", v)
	}
	if c := s.Calls(); len(c) != 1 || c[0].Panic != "boom" || c[0].Err != nil {
		t.Errorf("calls after panic = %+v", c)
	}
	if s.Len() != 0 {
		t.Error("panicking Put stored its value")
	}
	// The panic comes before the failure, and each is used once.
	if err := s.Put(ctx, "a", 1); err != errBoom {
		t.Errorf("after the panic: err = %v, want %v", err, errBoom)
	}
	if err := s.Put(ctx, "a", 1); err != nil {
		t.Errorf("after the failure: %v", err)
	}

	s.PanicNext(1, nil)
	if v := mustPanic(t, func() { _, _ = s.Get(ctx, "a") }); v != dualwritetest.ErrInjected {
		t.Errorf("nil value: panicked with %v, want ErrInjected", v)
	}
	s.PanicNext(3, nil)
	s.PanicNext(0, nil)
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Errorf("after PanicNext(0): %v", err)
	}
	mustPanic(t, func() { s.PanicNext(-1, nil) })
}

func TestDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := dualwritetest.NewStore[int]("s")
	_ = s.Put(t.Context(), "a", 1)
	s.FailNext(1, errBoom)
	s.PanicNext(1, "boom")

	if err := s.Put(ctx, "a", 2); err != context.Canceled {
		t.Errorf("Put: err = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "a"); err != context.Canceled {
		t.Errorf("Delete: err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "a"); err != context.Canceled {
		t.Errorf("Get: err = %v, want context.Canceled", err)
	}
	if got := s.Snapshot(); got["a"] != 1 {
		t.Errorf("data changed: %v", got)
	}
	if c := s.Calls(); len(c) != 4 || c[3].Err != context.Canceled {
		t.Errorf("calls = %+v", c)
	}
	// The faults are still due.
	mustPanic(t, func() { _ = s.Put(t.Context(), "a", 2) })
	if err := s.Put(t.Context(), "a", 2); err != errBoom {
		t.Errorf("err = %v, want %v", err, errBoom)
	}
}

func TestHold(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")

	release := s.Hold()
	done := async(func() error { return s.Put(ctx, "a", 1) })
	if err := s.WaitStarted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Calls()); n != 0 || s.Len() != 0 {
		t.Fatalf("held call finished: %d calls, %d keys", n, s.Len())
	}

	release()
	release()
	if s.Held() {
		t.Fatal("still held after release")
	}
	if err := <-done; err != nil {
		t.Fatalf("Put: %v", err)
	}
	if s.Len() != 1 {
		t.Fatal("released Put did not store its value")
	}

	// A call started after the release does not block.
	if err := s.Put(ctx, "b", 2); err != nil {
		t.Fatal(err)
	}
}

func TestHoldTwice(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")

	release1, release2 := s.Hold(), s.Hold()
	done := async(func() error { return s.Put(ctx, "a", 1) })
	if err := s.WaitStarted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	release1()
	release1()
	if !s.Held() {
		t.Fatal("released by the first of two holds")
	}
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("%d calls finished while held", n)
	}
	release2()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHoldCanceled(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")
	s.FailNext(1, errBoom)
	defer s.Hold()()

	callCtx, cancel := context.WithCancel(ctx)
	done := async(func() error { return s.Put(callCtx, "a", 1) })
	if err := s.WaitStarted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s.Len() != 0 {
		t.Error("canceled Put stored its value")
	}
	if c := s.Calls(); len(c) != 1 || c[0].Err != context.Canceled {
		t.Errorf("calls = %+v", c)
	}
}

// TestHoldDeadline runs in a synctest bubble: the held call returns at its
// context's deadline, exactly, on the bubble's fake clock.
func TestHoldDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := dualwritetest.NewStore[int]("s")
		defer s.Hold()()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := s.Get(ctx, "a"); err != context.DeadlineExceeded {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(start); took != time.Second {
			t.Errorf("held Get returned after %v, want the deadline's 1s", took)
		}
	})
}

// TestLatency runs in a synctest bubble, so the latency is waited out on the
// fake clock: exactly, and without slowing the test.
func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		s := dualwritetest.NewStore[int]("s")

		const d = 5 * time.Second
		s.SetLatency(d)
		start := time.Now()
		if err := s.Put(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != d {
			t.Errorf("Put took %v, want %v", took, d)
		}
		if c := s.Calls()[0]; c.Duration != d {
			t.Errorf("recorded Duration %v, want %v", c.Duration, d)
		}

		s.SetLatency(time.Hour)
		callCtx, cancel := context.WithCancel(ctx)
		done := async(func() error { return s.Delete(callCtx, "a") })
		synctest.Wait() // the Delete is waiting out its latency
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if c := s.Calls(); len(c) != 2 || c[1].Duration != 0 {
			t.Errorf("calls = %+v, want the canceled Delete recorded at once", c)
		}
		if s.Len() != 1 {
			t.Error("canceled Delete removed the key")
		}

		s.SetLatency(0)
		start = time.Now()
		if err := s.Put(ctx, "b", 1); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 0 {
			t.Errorf("Put without latency took %v", took)
		}
	})
}

func TestDrift(t *testing.T) {
	ctx := t.Context()
	s := dualwritetest.NewStore[int]("s")
	_ = s.Put(ctx, "a", 1)
	s.Drift("a", func(v int) int { return v + 100 })
	s.Drift("absent", func(v int) int { return v + 100 })

	if got, _ := s.Get(ctx, "a"); got != 101 {
		t.Errorf("Get = %d, want 101", got)
	}
	if got := s.Snapshot()["a"]; got != 1 {
		t.Errorf("Snapshot has %d, want the stored 1", got)
	}
	if _, err := s.Get(ctx, "absent"); err != dualwritetest.ErrNotFound {
		t.Errorf("drifted absent key: err = %v, want ErrNotFound", err)
	}
	_ = s.Put(ctx, "a", 2)
	if got, _ := s.Get(ctx, "a"); got != 102 {
		t.Errorf("Get after Put = %d, want 102", got)
	}

	s.Drift("a", nil)
	if got, _ := s.Get(ctx, "a"); got != 2 {
		t.Errorf("Get after Drift(nil) = %d, want 2", got)
	}
}

func TestReset(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")
	_ = s.Put(ctx, "a", 1)

	release := s.Hold()
	done := async(func() error { return s.Put(ctx, "b", 2) })
	if err := s.WaitStarted(ctx, 2); err != nil {
		t.Fatal(err)
	}
	s.FailNext(1, nil)
	s.FailRate(1, nil)
	s.FailWhen(func(string, string) error { return errBoom })
	s.PanicNext(1, nil)
	s.SetLatency(time.Hour)
	s.Drift("a", func(int) int { return 0 })

	s.Reset()
	if err := <-done; err != nil {
		t.Fatalf("held Put after Reset: %v", err)
	}
	if got, err := s.Get(ctx, "a"); got != 1 || err != nil {
		t.Fatalf("Get after Reset = %d, %v; want 1, nil", got, err)
	}
	if s.Len() != 2 || len(s.Calls()) != 3 {
		t.Fatalf("Reset lost data or calls: %d keys, %d calls", s.Len(), len(s.Calls()))
	}

	// A release from before the Reset does not release a later hold.
	release2 := s.Hold()
	release()
	if !s.Held() {
		t.Fatal("a release from before Reset released a later hold")
	}
	release2()
	if s.Held() {
		t.Fatal("still held after release")
	}
}

func TestWaitCalls(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")

	if err := s.WaitCalls(ctx, 0); err != nil {
		t.Fatalf("WaitCalls(0): %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.WaitCalls(done, 1); err != context.Canceled {
		t.Fatalf("WaitCalls with done ctx: err = %v, want context.Canceled", err)
	}
	if err := s.WaitStarted(done, 1); err != context.Canceled {
		t.Fatalf("WaitStarted with done ctx: err = %v, want context.Canceled", err)
	}

	const n = 50
	for i := range n {
		go s.Put(ctx, fmt.Sprint(i), i)
	}
	if err := s.WaitCalls(ctx, n); err != nil {
		t.Fatal(err)
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := waitCtx(t)
	s := dualwritetest.NewStore[int]("s")
	s.FailRate(0.2, nil)

	const workers, perWorker = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprint(i % 10)
				var err error
				switch i % 3 {
				case 0:
					err = s.Put(ctx, key, w)
				case 1:
					_, err = s.Get(ctx, key)
				case 2:
					err = s.Delete(ctx, key)
				}
				if err != nil && err != dualwritetest.ErrInjected && err != dualwritetest.ErrNotFound {
					t.Errorf("unexpected error: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			release := s.Hold()
			s.Drift(fmt.Sprint(i%10), func(v int) int { return -v })
			s.FailNext(1, nil)
			_ = s.Snapshot()
			_ = s.Calls()
			_, _ = s.Len(), s.Count(dualwritetest.OpGet)
			release()
			if i%10 == 0 {
				s.Reset()
				s.FailRate(0.2, nil)
			}
		}
	})
	if err := s.WaitCalls(ctx, workers*perWorker); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := len(s.Calls()); n != workers*perWorker {
		t.Fatalf("%d calls recorded, want %d", n, workers*perWorker)
	}
}
