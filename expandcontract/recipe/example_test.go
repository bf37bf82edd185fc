package recipe_test

import (
	"errors"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract/recipe"
)

// The NOT NULL change on PostgreSQL, as one move's statements; on MySQL
// the column's definition is needed, and SQLite cannot make the change.
func Example() {
	stmts, err := recipe.NotNull("postgres", "users", "email")
	if err != nil {
		panic(err)
	}
	for _, s := range stmts {
		fmt.Println(s)
	}
	stmts, _ = recipe.MySQLNotNull("users", "email", "varchar(255)")
	fmt.Println(stmts[0])
	_, err = recipe.NotNull("sqlite", "users", "email")
	fmt.Println(errors.Is(err, recipe.ErrUnsupported))
	// Output:
	// ALTER TABLE "users" ADD CONSTRAINT "users_email_not_null" CHECK ("email" IS NOT NULL) NOT VALID
	// ALTER TABLE "users" VALIDATE CONSTRAINT "users_email_not_null"
	// ALTER TABLE "users" ALTER COLUMN "email" SET NOT NULL
	// ALTER TABLE "users" DROP CONSTRAINT "users_email_not_null"
	// ALTER TABLE `users` MODIFY `email` varchar(255) NOT NULL
	// true
}

func ExampleUnique() {
	for _, dialect := range []string{"postgres", "mysql"} {
		stmts, err := recipe.Unique(dialect, "users", "users_email_key", "email")
		if err != nil {
			panic(err)
		}
		for _, s := range stmts {
			fmt.Println(s)
		}
	}
	// Output:
	// CREATE UNIQUE INDEX CONCURRENTLY "users_email_key" ON "users" ("email")
	// ALTER TABLE "users" ADD CONSTRAINT "users_email_key" UNIQUE USING INDEX "users_email_key"
	// ALTER TABLE `users` ADD UNIQUE INDEX `users_email_key` (`email`)
}

func ExampleForeignKey() {
	stmts, err := recipe.ForeignKey("postgres", recipe.ForeignKeyDef{
		Table: "orders", Name: "orders_user_fk", Columns: []string{"user_id"},
		RefTable: "users", RefColumns: []string{"id"}, OnDelete: "cascade",
	})
	if err != nil {
		panic(err)
	}
	for _, s := range stmts {
		fmt.Println(s)
	}
	// Output:
	// ALTER TABLE "orders" ADD CONSTRAINT "orders_user_fk" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE NOT VALID
	// ALTER TABLE "orders" VALIDATE CONSTRAINT "orders_user_fk"
}
