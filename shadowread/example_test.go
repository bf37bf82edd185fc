package shadowread_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/dualwrite/dualwritetest"
	"github.com/cutover-go/cutover/shadowread"
)

func Example() {
	type User struct {
		ID, Name, Email string
	}
	ctx := context.Background()
	stores := dualwritetest.NewPair[User]()
	_ = stores.Old.Put(ctx, "42", User{"42", "Ada", "ada@example.org"})
	_ = stores.New.Put(ctx, "42", User{"42", "Ada", "ada@example.net"}) // copied wrong

	mismatches := make(chan *shadowread.Mismatch[User], 1)
	gets, err := shadowread.New("users.get", cutover.Fixed(cutover.Shadow),
		shadowread.WithLogger[User](slog.New(slog.DiscardHandler)),
		shadowread.WithOnMismatch(func(_ context.Context, m *shadowread.Mismatch[User]) { mismatches <- m }))
	if err != nil {
		panic(err)
	}
	u, err := gets.Read(ctx, "42", func(ctx context.Context, side cutover.Side) (User, error) {
		return stores.Side(side).Get(ctx, "42")
	})
	fmt.Println("caller got:", u.Email, err)

	// The comparison runs on its own goroutine; at shutdown, wait for it.
	if err := gets.Drain(ctx); err != nil {
		panic(err)
	}
	m := <-mismatches
	fmt.Printf("mismatch %s %q:\n%s\n", m.Op, m.Key, m.Diff)
	// Output:
	// caller got: ada@example.org <nil>
	// mismatch users.get "42":
	// .Email: "ada@example.org" != "ada@example.net"
}

// A compare function says what "the same" means for a payload; it gives
// the reader its payload type, and one of another type does not compile.
func ExampleWithCompare() {
	type Account struct {
		ID      string
		Balance int64
		Note    string // free text the new store trims; not worth a mismatch
	}
	ctx := context.Background()
	stores := dualwritetest.NewPair[Account]()
	_ = stores.Old.Put(ctx, "7", Account{"7", 100, "vip  "})
	_ = stores.New.Put(ctx, "7", Account{"7", 100, "vip"})

	var mismatches []string
	gets, err := shadowread.New("accounts.get", cutover.Fixed(cutover.Shadow),
		shadowread.WithCompare(func(old, new Account) bool { return old.ID == new.ID && old.Balance == new.Balance }),
		shadowread.WithOnMismatch(func(_ context.Context, m *shadowread.Mismatch[Account]) { mismatches = append(mismatches, m.Key) }),
		shadowread.WithSynchronous[Account](),
		shadowread.WithLogger[Account](slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	read := func(ctx context.Context, side cutover.Side) (Account, error) { return stores.Side(side).Get(ctx, "7") }
	a, err := gets.Read(ctx, "7", read)
	fmt.Printf("%q %v, mismatches %v\n", a.Note, err, mismatches)

	stores.New.Drift("7", func(a Account) Account { a.Balance = 90; return a })
	_, _ = gets.Read(ctx, "7", read)
	fmt.Println("mismatches", mismatches)
	// Output:
	// "vip  " <nil>, mismatches []
	// mismatches [7]
}
