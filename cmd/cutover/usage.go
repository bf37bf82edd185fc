package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
)

// mainUsage is the text of cutover help.
func mainUsage() string {
	var b strings.Builder
	b.WriteString(`cutover drives expand-contract migrations from a shell.

usage: cutover COMMAND [ARGUMENTS] [FLAGS]

Commands:
`)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(tw, "  help [COMMAND]\tprint this, or the usage of a command\n")
	tw.Flush()
	b.WriteString(`
The database: --driver (sqlite, sqlite3, pgx, postgres, mysql) and --dsn, or
the environment variables CUTOVER_DRIVER and CUTOVER_DSN; --prefix names the
metadata tables (default "cutover_"). --json prints JSON (see docs/cli.md).

Exit status: 0 done, 1 failed, 2 usage (nothing changed), 3 refused (nothing
changed but the record of the refusal), 4 not found.

Run 'cutover COMMAND -h' for the flags of a command.
`)
	return b.String()
}

// usage is the text of cutover CMD -h.
func (cmd *command) usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: cutover %s %s [FLAGS]\n\n%s\n\nFlags:\n", cmd.name, cmd.args, cmd.about)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		kind, text := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if kind != "" {
			name += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, text)
	})
	tw.Flush()
	return b.String()
}
