package main

import (
	"cmp"
	"flag"
	"fmt"

	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/internal/sqldialect"
)

var ddlCommand = &command{
	name: "ddl", args: "", min: 0, max: 0,
	summary: "print the DDL of the metadata tables",
	about: "DDL prints the statements that create the metadata tables at the library's schema version,\n" +
		"for a service whose own migration tool runs its DDL and that opens the store with\n" +
		"expandcontract.WithoutSchemaChanges; with --upgrade-from, those that bring tables of an older\n" +
		"version up to it. Each statement ends with a semicolon, to run once, in order. It touches no\n" +
		"database: --dialect (sqlite, postgres or mysql) names the SQL, or else --driver.",
	setup: func(fs *flag.FlagSet) func(c *call) error {
		dialect := fs.String("dialect", "", "the SQL dialect: sqlite, postgres or mysql (default: that of --driver)")
		from := fs.Int64("upgrade-from", 0, "print the statements that upgrade tables of this schema version instead")
		return func(c *call) error {
			given := cmp.Or(*dialect, c.conn.driver)
			if given == "" {
				return usageErrorf("missing --dialect (sqlite, postgres or mysql)")
			}
			drv, err := driverName(given)
			if err != nil {
				return usageErrorf("unknown dialect %q (want sqlite, postgres or mysql)", given)
			}
			d, err := sqldialect.ForDriver(drv)
			if err != nil {
				return err
			}
			name := d.Name()
			prefix := expandcontract.WithTablePrefix(c.conn.prefix)
			var stmts []string
			if *from != 0 {
				stmts, err = expandcontract.SchemaUpgradeDDL(name, *from, prefix)
			} else {
				stmts, err = expandcontract.SchemaDDL(name, prefix)
			}
			if err != nil {
				return err
			}
			if c.json {
				return writeJSON(c.out(), struct {
					Dialect       string   `json:"dialect"`
					Prefix        string   `json:"prefix"`
					SchemaVersion int64    `json:"schema_version"`
					UpgradeFrom   int64    `json:"upgrade_from,omitempty"`
					Statements    []string `json:"statements"`
				}{name, c.conn.prefix, expandcontract.SchemaVersion, *from, stmts})
			}
			for _, q := range stmts {
				if _, err := fmt.Fprintf(c.out(), "%s;\n\n", q); err != nil {
					return err
				}
			}
			return nil
		}
	},
}
