package lockcheck_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract/lockcheck"
)

// Check refuses a plain CREATE INDEX on a table that exists, names the
// rule and what to run instead, and lets the concurrent build through, to
// run outside the move's transaction. On MySQL it adds the clauses that
// make the server refuse a change it cannot make online.
func ExampleCheck() {
	ctx := context.Background()
	_, err := lockcheck.Check(ctx, nil, lockcheck.Postgres, []string{
		"CREATE INDEX idx_users_email ON users (email)",
	})
	var unsafe *lockcheck.UnsafeError
	if errors.As(err, &unsafe) {
		fmt.Println("rule:", unsafe.Rule)
		fmt.Println("reason:", unsafe.Reason)
		fmt.Println("instead:", unsafe.Instead)
	}

	sts, err := lockcheck.Check(ctx, nil, lockcheck.Postgres, []string{
		"CREATE INDEX CONCURRENTLY idx_users_email ON users (email)",
	})
	fmt.Println(err, sts[0].Outside, sts[0].Index)

	sts, err = lockcheck.Check(ctx, nil, lockcheck.MySQL, []string{
		"ALTER TABLE users ADD COLUMN nickname varchar(50)",
	})
	fmt.Println(err, sts[0].SQL)
	// Output:
	// rule: create-index-concurrently
	// reason: CREATE INDEX without CONCURRENTLY holds a SHARE lock on users, blocking every write to it, for the whole build
	// instead: CREATE INDEX CONCURRENTLY, which blocks no writes (it runs outside the transaction; a failed build leaves an INVALID index to drop before a retry)
	// <nil> true idx_users_email
	// <nil> ALTER TABLE users ADD COLUMN nickname varchar(50), ALGORITHM=INPLACE, LOCK=NONE
}

// The error of a refusal says it all in one line: the statement, the rule,
// why, and what to run instead.
func ExampleUnsafeError() {
	_, err := lockcheck.Check(context.Background(), nil, lockcheck.Postgres, []string{
		"ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team) REFERENCES teams (id)",
	})
	fmt.Println(err)
	fmt.Println(errors.Is(err, lockcheck.ErrUnsafe))
	// Output:
	// lockcheck: statement 0 (ALTER TABLE users ADD CONSTRAINT users_team_fk FOREIGN KEY (team) REFERENCES ...) breaks rule add-constraint-not-valid: ADD CONSTRAINT ... FOREIGN KEY without NOT VALID checks every row of users while it holds a SHARE ROW EXCLUSIVE lock on both tables, which blocks writes to them; instead, ADD CONSTRAINT users_team_fk ... NOT VALID, which checks only new rows, then ALTER TABLE users VALIDATE CONSTRAINT users_team_fk in a statement of its own, which takes only a SHARE UPDATE EXCLUSIVE lock
	// true
}
