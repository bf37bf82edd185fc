package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/shadowread"
)

// Customer is what the service reads.
type Customer struct {
	ID    int64
	Name  string
	Phone string
}

// errInjected is the simulated fault of writes to the new column.
var errInjected = errors.New("simulated fault of the new column")

// columnStore reads and writes customers with their phone in one column:
// customer_phone for the old side of the rename, phone_number for the new.
type columnStore struct {
	db       *sqlx.DB
	column   string
	failRate float64 // share of saves that fail with errInjected
}

func (s columnStore) Get(ctx context.Context, id int64) (Customer, error) {
	var c Customer
	var p sql.NullString
	err := s.db.QueryRowxContext(ctx, s.db.Rebind(`SELECT id, name, `+s.column+` FROM customers WHERE id = ?`), id).
		Scan(&c.ID, &c.Name, &p)
	c.Phone = p.String
	return c, err
}

func (s columnStore) SavePhone(ctx context.Context, id int64, phone string) error {
	if s.failRate > 0 && rand.Float64() < s.failRate {
		return errInjected
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE customers SET `+s.column+` = ? WHERE id = ?`), phone, id)
	return err
}

// migratingRepo is the service's customer repository during the rename:
// one store per side, a writer and a reader choosing between them.
type migratingRepo struct {
	stores [2]columnStore
	saves  *dualwrite.Writer
	gets   *shadowread.Reader[Customer]
}

func (r *migratingRepo) SavePhone(ctx context.Context, id int64, phone string) error {
	return r.saves.Write(ctx, fmt.Sprint(id), func(ctx context.Context, side cutover.Side) error {
		return r.stores[side].SavePhone(ctx, id, phone)
	})
}

func (r *migratingRepo) Get(ctx context.Context, id int64) (Customer, error) {
	return r.gets.Read(ctx, fmt.Sprint(id), func(ctx context.Context, side cutover.Side) (Customer, error) {
		return r.stores[side].Get(ctx, id)
	})
}

// repairFunc copies a customer's phone to the column that may be behind.
// Within one table a single UPDATE reads and writes the row atomically, so
// the copy is always of the latest value.
func repairFunc(db *sqlx.DB) repair.Func {
	return func(ctx context.Context, r cutover.Repair) error {
		q := `UPDATE customers SET phone_number = customer_phone WHERE id = ?`
		if r.Target == cutover.Old {
			q = `UPDATE customers SET customer_phone = phone_number WHERE id = ?`
		}
		_, err := db.ExecContext(ctx, db.Rebind(q), r.Key)
		return err
	}
}

// traffic is the service's load: workers that save and read customers.
// Each worker saves only its own customers, so the last save of a
// customer that a caller saw succeed is well defined.
type traffic struct {
	repo    *migratingRepo
	o       options
	mu      sync.Mutex
	last    map[int64]string // customer id -> last acknowledged phone
	changes map[int64]int
	acked   atomic.Int64
}

type result struct {
	calls, errors int
	p99           time.Duration
}

func newTraffic(repo *migratingRepo, o options) *traffic {
	return &traffic{repo: repo, o: o, last: map[int64]string{}, changes: map[int64]int{}}
}

// run makes o.ops calls spread over the workers and returns what the
// callers saw.
func (t *traffic) run(ctx context.Context) result {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var res result
	var lat []time.Duration
	for w := range t.o.workers {
		wg.Go(func() {
			calls := t.o.ops / t.o.workers
			ds := make([]time.Duration, 0, calls)
			errs := 0
			for range calls {
				d, err := t.call(ctx, w)
				ds = append(ds, d)
				if err != nil {
					errs++
				}
			}
			mu.Lock()
			lat = append(lat, ds...)
			res.calls += len(ds)
			res.errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.p99 = p99(lat)
	return res
}

// background calls the repository until ctx is done.
func (t *traffic) background(ctx context.Context) {
	var wg sync.WaitGroup
	for w := range t.o.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				t.call(context.WithoutCancel(ctx), w)
			}
		})
	}
	wg.Wait()
}

// call makes one call as worker w: a save of one of its customers, or a
// read of any customer.
func (t *traffic) call(ctx context.Context, w int) (time.Duration, error) {
	n := int64(t.o.customers)
	start := time.Now()
	if rand.IntN(2) == 0 {
		id := rand.Int64N(n) + 1
		_, err := t.repo.Get(ctx, id)
		return time.Since(start), err
	}
	id := int64(w) + 1 + int64(t.o.workers)*rand.Int64N(n/int64(t.o.workers))
	t.mu.Lock()
	t.changes[id]++
	p := phone(int(id), t.changes[id])
	t.mu.Unlock()
	err := t.repo.SavePhone(ctx, id, p)
	d := time.Since(start)
	if err == nil {
		t.mu.Lock()
		t.last[id] = p
		t.mu.Unlock()
		t.acked.Add(1)
	}
	return d, err
}

func (t *traffic) acknowledged() int64 { return t.acked.Load() }

// lost counts customers whose phone_number is not the last save that its
// caller saw succeed.
func (t *traffic) lost(ctx context.Context, db *sqlx.DB) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lost := 0
	for id, want := range t.last {
		var got sql.NullString
		if err := db.GetContext(ctx, &got, db.Rebind(`SELECT phone_number FROM customers WHERE id = ?`), id); err != nil {
			return 0, err
		}
		if got.String != want {
			lost++
			fmt.Printf("lost: customer %d has %q, the last acknowledged save was %q\n", id, got.String, want)
		}
	}
	return lost, nil
}
