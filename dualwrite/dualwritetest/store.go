package dualwritetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// ErrNotFound is returned by [Store.Get] for a key the store does not hold.
var ErrNotFound = errors.New("dualwritetest: not found")

// ErrInjected is the error of injected failures when the test names none,
// and the value of injected panics when it gives none.
var ErrInjected = errors.New("dualwritetest: injected failure")

// The operation names that appear in [Call.Op] and are passed to
// [Store.Count] and to the function given to [Store.FailWhen].
const (
	OpGet    = "get"
	OpPut    = "put"
	OpDelete = "delete"
)

// DefaultSeed seeds the generator behind [Store.FailRate] until
// [Store.SetSeed] is called.
const DefaultSeed = 1

// Call records one finished call to a [Store]. The zero value records no
// call; [Store.Calls] returns filled ones. A Call is a plain value, and the
// copies Calls returns are safe for concurrent use by readers.
type Call struct {
	Op  string // OpGet, OpPut or OpDelete
	Key string // the key passed to the call
	// Err is the error the call returned: nil, ErrNotFound, an injected
	// error, or ctx.Err() if the context was done before the call reached
	// its data.
	Err error
	// Panic is the value the call panicked with, or nil if it returned.
	Panic    any
	Start    time.Time     // when the call was made
	Duration time.Duration // how long it took, waiting included
}

// Store is an in-memory keyed store of values of type V with fault
// injection, standing in for one of the two stores of a migration.
// Values are stored as given: a V that holds pointers, slices or maps
// shares their memory with the caller.
//
// Each call runs in this order: it counts as started; it blocks while the
// store is held ([Store.Hold]) and then waits out the latency
// ([Store.SetLatency]), returning ctx.Err() as soon as ctx is done; it
// panics if a panic is due ([Store.PanicNext]); it fails if a failure is
// due ([Store.FailNext], [Store.FailRate], [Store.FailWhen]); it reads or
// changes the data; and it is recorded ([Store.Calls]). A call whose
// context is already done returns ctx.Err() without touching the data or
// using up a fault. Calls that fail or panic change nothing.
//
// The zero value is not usable; create stores with [NewStore]. A Store is
// safe for concurrent use.
type Store[V any] struct {
	// Name identifies the store in test output. NewStore sets it; it
	// must not be changed while the store is in use.
	Name string

	mu      sync.Mutex
	data    map[string]V
	drift   map[string]func(V) V
	rng     *rand.Rand
	calls   []Call
	started int
	changed chan struct{} // closed when started or calls change; nil if no one waits

	// Faults, cleared by Reset.
	failNext    int
	failNextErr error
	failWhen    func(op, key string) error
	failRate    float64
	failRateErr error
	panicNext   int
	panicValue  any
	latency     time.Duration
	holds       int
	gate        chan struct{} // closed when the last hold is released; nil if none
}

// NewStore returns an empty store called name, with no faults.
func NewStore[V any](name string) *Store[V] {
	return &Store[V]{
		Name:  name,
		data:  make(map[string]V),
		drift: make(map[string]func(V) V),
		rng:   newRand(DefaultSeed),
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// Get returns the value stored under key, passed through the drift
// function of key if one is set, or [ErrNotFound] if there is none.
func (s *Store[V]) Get(ctx context.Context, key string) (V, error) {
	var v V
	err := s.call(ctx, OpGet, key, func() error {
		s.mu.Lock()
		stored, ok := s.data[key]
		f := s.drift[key]
		s.mu.Unlock()
		if !ok {
			return ErrNotFound
		}
		if f != nil {
			stored = f(stored)
		}
		v = stored
		return nil
	})
	return v, err
}

// Put stores v under key, replacing any value stored before.
func (s *Store[V]) Put(ctx context.Context, key string, v V) error {
	return s.call(ctx, OpPut, key, func() error {
		s.mu.Lock()
		s.data[key] = v
		s.mu.Unlock()
		return nil
	})
}

// Delete removes key from the store. Deleting a key that is absent
// succeeds.
func (s *Store[V]) Delete(ctx context.Context, key string) error {
	return s.call(ctx, OpDelete, key, func() error {
		s.mu.Lock()
		delete(s.data, key)
		s.mu.Unlock()
		return nil
	})
}

// Snapshot returns a copy of the stored data, without drift applied.
func (s *Store[V]) Snapshot() map[string]V {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.data)
}

// Len returns the number of keys stored.
func (s *Store[V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// FailNext makes the next n calls that reach the failure check fail with
// err, or with [ErrInjected] if err is nil. It replaces any earlier
// FailNext; n = 0 cancels it. It panics if n is negative.
func (s *Store[V]) FailNext(n int, err error) {
	if n < 0 {
		panic(fmt.Sprintf("dualwritetest: %s: FailNext with negative n %d", s.Name, n))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failNextErr = n, orInjected(err)
}

// FailWhen makes every call that reaches the failure check, and is not
// already failed by [Store.FailNext] or [Store.FailRate], ask f(op, key);
// a non-nil answer is the call's error. It lets a test fail only some
// operations or keys, for example only writes. f is called without the
// store's lock held and must be safe for concurrent use. A nil f removes
// the check.
func (s *Store[V]) FailWhen(f func(op, key string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWhen = f
}

// FailRate makes each call that reaches the failure check, and is not
// already failed by [Store.FailNext], fail with probability rate, with
// err or with [ErrInjected] if err is nil. The draws come from a PCG
// generator with a fixed seed (see [Store.SetSeed]), so a test that makes
// its calls one at a time sees the same failures on every run. A rate of 0 stops random failures.
// It panics if rate is not between 0 and 1.
func (s *Store[V]) FailRate(rate float64, err error) {
	if !(rate >= 0 && rate <= 1) {
		panic(fmt.Sprintf("dualwritetest: %s: FailRate with rate %v outside [0, 1]", s.Name, rate))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRate, s.failRateErr = rate, orInjected(err)
}

// SetSeed restarts the generator behind [Store.FailRate] from seed.
func (s *Store[V]) SetSeed(seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rng = newRand(seed)
}

// PanicNext makes the next n calls that reach the panic check panic with
// value, or with [ErrInjected] if value is nil. The call is recorded,
// with [Call.Panic] set, before it panics. It replaces any earlier
// PanicNext; n = 0 cancels it. It panics if n is negative.
func (s *Store[V]) PanicNext(n int, value any) {
	if n < 0 {
		panic(fmt.Sprintf("dualwritetest: %s: PanicNext with negative n %d", s.Name, n))
	}
	if value == nil {
		value = ErrInjected
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.panicNext, s.panicValue = n, value
}

// SetLatency makes every call that starts from now on wait d before it
// goes on, or less if its context is done first, in which case it returns
// ctx.Err(). A d of 0 or less removes the latency.
func (s *Store[V]) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hold blocks every call that starts from now on until release is called,
// or until the call's context is done, in which case it returns ctx.Err().
// With several holds taken, calls wait until all of them are released.
// Calling release more than once is harmless. Hold lets a test show that
// code did not wait for this store, with no timing involved: hold it, run
// the code, see it return, release, then [Store.WaitCalls].
func (s *Store[V]) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
	s.holds++
	gate := s.gate
	return sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gate != gate { // released by Reset
			return
		}
		if s.holds--; s.holds == 0 {
			s.openGateLocked()
		}
	})
}

// Drift makes [Store.Get] of key return f applied to the stored value,
// so that a test can make two stores disagree without writing to them.
// The stored value itself, as seen by [Store.Snapshot], is unchanged.
// f is called without the store's lock held. A nil f removes the drift
// of key.
func (s *Store[V]) Drift(key string, f func(V) V) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.drift, key)
	} else {
		s.drift[key] = f
	}
}

// Reset removes every fault: failures, panics, latency and drift. It
// releases all holds, letting blocked calls go on. It keeps the data,
// the recorded calls and the state of the FailRate generator.
func (s *Store[V]) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failNextErr = 0, nil
	s.failWhen = nil
	s.failRate, s.failRateErr = 0, nil
	s.panicNext, s.panicValue = 0, nil
	s.latency = 0
	clear(s.drift)
	if s.gate != nil {
		s.openGateLocked()
	}
}

func (s *Store[V]) openGateLocked() {
	close(s.gate)
	s.gate, s.holds = nil, 0
}

// Calls returns a copy of the calls finished so far, in the order they
// finished.
func (s *Store[V]) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Count returns the number of finished calls whose Op is op.
func (s *Store[V]) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Op == op {
			n++
		}
	}
	return n
}

// WaitStarted blocks until at least n calls have started, counting calls
// still blocked by [Store.Hold] or latency, or until ctx is done, in
// which case it returns ctx.Err().
func (s *Store[V]) WaitStarted(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return s.started >= n })
}

// WaitCalls blocks until at least n calls have finished, or until ctx is
// done, in which case it returns ctx.Err().
func (s *Store[V]) WaitCalls(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.calls) >= n })
}

// waitFor blocks until done, called with s.mu held, reports true.
func (s *Store[V]) waitFor(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		if done() {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Store[V]) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// call runs one call of kind op on key, with apply doing the work on the
// data, in the order documented on Store.
func (s *Store[V]) call(ctx context.Context, op, key string, apply func() error) error {
	c := Call{Op: op, Key: key, Start: time.Now()}
	s.mu.Lock()
	s.started++
	s.notifyLocked()
	gate, latency := s.gate, s.latency
	s.mu.Unlock()

	err := pause(ctx, gate, latency)
	if err == nil {
		var p any
		if p, err = s.injected(op, key); p != nil {
			c.Panic = p
			s.record(c)
			panic(p)
		}
	}
	if err == nil {
		err = apply()
	}
	c.Err = err
	s.record(c)
	return err
}

// pause waits until gate is closed, if there is one, and then for
// latency. It returns ctx.Err() if ctx is done before or while it waits.
func pause(ctx context.Context, gate <-chan struct{}, latency time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// injected uses up the panic or failure due for one call, if any, and
// returns the panic value or the error.
func (s *Store[V]) injected(op, key string) (panicValue any, err error) {
	s.mu.Lock()
	switch {
	case s.panicNext > 0:
		s.panicNext--
		panicValue = s.panicValue
	case s.failNext > 0:
		s.failNext--
		err = s.failNextErr
	case s.failRate > 0 && s.rng.Float64() < s.failRate:
		err = s.failRateErr
	}
	failWhen := s.failWhen
	s.mu.Unlock()

	if panicValue == nil && err == nil && failWhen != nil {
		err = failWhen(op, key)
	}
	return panicValue, err
}

func (s *Store[V]) record(c Call) {
	c.Duration = time.Since(c.Start)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}
