package sqldialect_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cutover-go/cutover/internal/sqldialect"
)

func Example() {
	for _, driver := range []string{"sqlite", "pgx", "mysql"} {
		d, err := sqldialect.ForDriver(driver)
		if err != nil {
			panic(err)
		}
		table, err := d.QuoteIdent("app.order") // a keyword, safe once quoted
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-8s %s\n", d.Name(), d.Rebind("UPDATE "+table+" SET state = ? WHERE id = ?"))
	}

	pg, _ := sqldialect.ForDriver("pgx")
	_, err := pg.QuoteIdent(`users"; DROP TABLE users; --`)
	fmt.Println(errors.Is(err, sqldialect.ErrInvalidIdentifier))
	fmt.Println(err)
	// Output:
	// sqlite   UPDATE "app"."order" SET state = ? WHERE id = ?
	// postgres UPDATE "app"."order" SET state = $1 WHERE id = $2
	// mysql    UPDATE `app`.`order` SET state = ? WHERE id = ?
	// true
	// sqldialect: invalid SQL identifier "users\"; DROP TABLE users; --": character '"' at byte 5; only ASCII letters, digits and underscores are allowed
}

func ExampleDialect_CreateIndex() {
	// Names are checked before anything is sent to the database (here
	// there is none).
	d, _ := sqldialect.ForDriver("mysql")
	err := d.CreateIndex(context.Background(), nil, sqldialect.Index{Name: "users_by_email", Table: "users", Columns: []string{"e-mail"}})
	fmt.Println(err)
	// Output:
	// sqldialect: create index users_by_email: column: invalid SQL identifier "e-mail": character '-' at byte 1; only ASCII letters, digits and underscores are allowed
}
