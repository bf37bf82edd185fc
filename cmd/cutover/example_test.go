package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover/expandcontract"
)

// The command moves a migration that a service created, and says why when
// a guard refuses.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cutover-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	dsn := filepath.Join(dir, "app.db") + "?_pragma=busy_timeout(5000)"

	// The service: its database, the metadata tables and its migration.
	db := sqlx.MustOpen("sqlite", dsn)
	defer db.Close()
	store, err := expandcontract.Open(ctx, db, expandcontract.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	m, err := store.Migration("users-email")
	if err != nil {
		panic(err)
	}
	if _, err := m.Ensure(ctx, "svc-1"); err != nil {
		panic(err)
	}

	// The operator: cutover move, twice.
	e := &env{stdout: os.Stdout, stderr: os.Stdout, getenv: getenv(map[string]string{"CUTOVER_DRIVER": "sqlite", "CUTOVER_DSN": dsn})}
	code := run(ctx, []string{"move", "users-email", "dualwrite", "--actor", "alice", "--reason", "start dual writes"}, e)
	fmt.Println("exit status", code)
	code = run(ctx, []string{"move", "users-email", "switchreads", "--actor", "alice", "--reason", "in a hurry"}, e)
	fmt.Println("exit status", code)
	// Output:
	// users-email: moved from expand to dualwrite (version 2)
	// exit status 0
	// cutover: move users-email: refused: expandcontract: illegal phase move: "users-email" from dualwrite to switchreads: phases move one step at a time; from dualwrite the next is backfill and the previous expand
	// exit status 3
}

// getenv returns a getenv function that reads vars.
func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}
