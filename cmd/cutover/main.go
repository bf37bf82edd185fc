// Command cutover drives the expand-contract migrations of package
// github.com/cutover-go/cutover/expandcontract from a shell, on the
// metadata tables of the service's own database: what an operator would
// otherwise write Go for.
//
// Usage:
//
//	cutover COMMAND [ARGUMENTS] [FLAGS]
//
// The commands:
//
//	status [MIGRATION]               the phase, the backfill, the last verification, the repairs, the instances
//	history MIGRATION                the migration's history of moves, refusals and controls
//	instances MIGRATION              the instances and the stage each resolves
//	move MIGRATION PHASE             move the phase one step, forward or back, under the guards
//	lift MIGRATION                   lift the stage ceiling that a trigger set
//	backfill pause|resume|cancel|reset-cancel|mark-done MIGRATION
//	backfill set MIGRATION           change the rate or the batch size of a running backfill
//	verify MIGRATION                 compare the old and the new store and record the result
//	repairs list MIGRATION           the entries of the repair log
//	repairs retry MIGRATION          make the stuck entries due again
//	ddl                              print the DDL of the metadata tables
//	help [COMMAND]                   print the usage of cutover or of a command
//
// Every command that reads or changes a migration opens the database with
// --driver and --dsn, or the environment variables CUTOVER_DRIVER and
// CUTOVER_DSN: SQLite ("sqlite", "sqlite3"; modernc.org/sqlite),
// PostgreSQL ("pgx", "postgres"; pgx v5) or MySQL and MariaDB ("mysql";
// go-sql-driver/mysql). --prefix names the metadata tables, "cutover_" by
// default. The command never creates or upgrades the metadata tables: a
// database without them, or with tables of another schema version, is
// refused before anything is written.
//
// Every command prints tables for people, or JSON with --json, whose form
// docs/cli.md documents. The exit status says how the command ended:
//
//	0  done
//	1  failed: the database failed or could not be reached, or the work itself failed
//	2  usage: an unknown command or flag, a missing or bad argument; nothing was changed
//	3  refused: a guard or a rule refused the change (the refusal is in the history); nothing else was changed
//	4  not found: no such migration, or no metadata tables in the database
//
// Errors go to standard error and name what was wrong, as in
//
//	cutover: move users-email: refused: expandcontract: phase move refused by a guard: ...
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		terminal: isTerminal(os.Stdout),
	})
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a terminal (a character device), on
// which status --watch redraws its line instead of printing new ones.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
