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

// Sensitive fields, tagged on the type or named by a path, are shown in a
// mismatch's diff, and so in its log line, as keyed hashes. The fixed key
// makes this output the same on every run; without WithRedactionKey the
// key is drawn at random once per process.
func ExampleWithSensitive() {
	type Customer struct {
		ID    string
		Email string `cutover:"sensitive"`
		Phone string
		Plan  string
	}
	ctx := context.Background()
	stores := dualwritetest.NewPair[Customer]()
	_ = stores.Old.Put(ctx, "7", Customer{"7", "ann@example.org", "+1 555 0100", "pro"})
	_ = stores.New.Put(ctx, "7", Customer{"7", "ann@example.net", "+1 555 0199", "free"})

	gets, err := shadowread.New("customers.get", cutover.Fixed(cutover.Shadow),
		shadowread.WithSensitive[Customer]("Phone"),
		shadowread.WithRedactionKey[Customer]([]byte("example key, at least 16 bytes")),
		shadowread.WithOnMismatch(func(_ context.Context, m *shadowread.Mismatch[Customer]) { fmt.Println(m.Diff) }),
		shadowread.WithSynchronous[Customer](),
		shadowread.WithLogger[Customer](slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	_, _ = gets.Read(ctx, "7", func(ctx context.Context, side cutover.Side) (Customer, error) {
		return stores.Side(side).Get(ctx, "7")
	})
	// Output:
	// .Email: <redacted:2801ee8f> != <redacted:b0f6d5a9>
	// .Phone: <redacted:7fc4b570> != <redacted:7b3137dd>
	// .Plan: "pro" != "free"
}
