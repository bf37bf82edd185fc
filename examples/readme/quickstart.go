package main

import (
	"context"
	"time"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/breaker"
	"github.com/cutover-go/cutover/dualwrite"
	"github.com/cutover-go/cutover/flags"
	"github.com/cutover-go/cutover/shadowread"
)

// README: quick-start

type User struct {
	ID        string
	Email     string
	UpdatedAt time.Time
}

type UserRepo interface {
	Get(ctx context.Context, id string) (User, error)
	Save(ctx context.Context, u User) error
}

// migratingRepo is a UserRepo that moves users from stores[cutover.Old]
// to stores[cutover.New] as the "users-migration" flag says.
type migratingRepo struct {
	stores [2]UserRepo
	saves  *dualwrite.Writer
	gets   *shadowread.Reader[User]
}

func newMigratingRepo(old, new UserRepo, client flags.Client, repairs cutover.RepairLog) (*migratingRepo, error) {
	stage, err := flags.New(client, "users-migration") // "off", "dualwrite", "shadow", ...
	if err != nil {
		return nil, err
	}
	newDB, err := breaker.New("users-new-db")
	if err != nil {
		return nil, err
	}
	saves, err := dualwrite.New("users.save", stage, repairs, dualwrite.WithBreaker(newDB))
	if err != nil {
		return nil, err
	}
	gets, err := shadowread.New[User]("users.get", stage,
		shadowread.WithBreaker[User](newDB),
		shadowread.WithRepairLog[User](repairs),
		shadowread.WithIgnore[User]("UpdatedAt"))
	if err != nil {
		return nil, err
	}
	return &migratingRepo{stores: [2]UserRepo{old, new}, saves: saves, gets: gets}, nil
}

func (r *migratingRepo) Save(ctx context.Context, u User) error {
	return r.saves.Write(ctx, u.ID, func(ctx context.Context, side cutover.Side) error {
		return r.stores[side].Save(ctx, u)
	})
}

func (r *migratingRepo) Get(ctx context.Context, id string) (User, error) {
	return r.gets.Read(ctx, id, func(ctx context.Context, side cutover.Side) (User, error) {
		return r.stores[side].Get(ctx, id)
	})
}

// README: end
