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
	gets, err := shadowread.New[User]("users.get", cutover.Fixed(cutover.Shadow),
		shadowread.WithLogger(slog.New(slog.DiscardHandler)),
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
