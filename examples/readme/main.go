// Command readme runs the code of the README, on embedded SQLite and
// in-memory flags, so that what the README shows compiles and works. Its
// test checks that the README's blocks are the same as the code here.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/flags"
	"github.com/jmoiron/sqlx"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	_ "modernc.org/sqlite"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	db, err := sqlx.Open("sqlite", "file:readme?mode=memory&cache=shared")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_phone TEXT)`); err != nil {
		return err
	}
	for id := 1; id <= 100; id++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO customers (id, customer_phone) VALUES (?, ?)`, id, fmt.Sprintf("+1-555-%04d", id)); err != nil {
			return err
		}
	}
	api := isolated.NewAPI()
	defer api.Shutdown(ctx)
	flag := func(key string) memprovider.InMemoryFlag {
		return memprovider.InMemoryFlag{Key: key, State: memprovider.Enabled, DefaultVariant: "on",
			Variants: map[string]any{"on": "shadow"}}
	}
	provider := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		"customers-phone": flag("customers-phone"), "users-migration": flag("users-migration")})
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		return err
	}
	if err := quickStart(ctx, api.NewClient()); err != nil {
		return err
	}
	return renamePhone(ctx, db, api.NewClient(), "web-1")
}

// quickStart saves a user through the migrating repository in the shadow
// stage and reads it back, compared with the new store.
func quickStart(ctx context.Context, client flags.Client) error {
	repairs := &cutover.MemoryRepairLog{}
	old, new := &mapRepo{users: map[string]User{}}, &mapRepo{users: map[string]User{}}
	repo, err := newMigratingRepo(old, new, client, repairs)
	if err != nil {
		return err
	}
	if err := repo.Save(ctx, User{ID: "42", Email: "ada@example.com", UpdatedAt: time.Now()}); err != nil {
		return err
	}
	u, err := repo.Get(ctx, "42")
	if err != nil {
		return err
	}
	repo.gets.Drain(ctx)
	fmt.Printf("user %s <%s> in both stores: %v; repairs: %d\n", u.ID, u.Email, len(new.users) == 1, len(repairs.Entries()))
	return nil
}

// mapRepo is a UserRepo in memory.
type mapRepo struct {
	mu    sync.Mutex
	users map[string]User
}

func (r *mapRepo) Get(_ context.Context, id string) (User, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.users[id]
	if !ok {
		return User{}, fmt.Errorf("user %q not found", id)
	}
	return u, nil
}

func (r *mapRepo) Save(_ context.Context, u User) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[u.ID] = u
	return nil
}
