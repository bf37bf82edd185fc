package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/cutover-go/cutover"
	"github.com/cutover-go/cutover/expandcontract"
	"github.com/cutover-go/cutover/expandcontract/backfill"
	"github.com/cutover-go/cutover/expandcontract/lockcheck"
	"github.com/cutover-go/cutover/expandcontract/repair"
	"github.com/cutover-go/cutover/expandcontract/verify"
)

// The exit statuses of the command.
const (
	exitOK       = 0 // done
	exitFailed   = 1 // the database or the work failed
	exitUsage    = 2 // unknown command or flag, bad argument; nothing changed
	exitRefused  = 3 // a guard or a rule refused; nothing changed but the record of the refusal
	exitNotFound = 4 // no such migration, or no metadata tables
)

// env is what the command reads and writes outside its arguments.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	terminal       bool // stdout is a terminal
}

// command is one command of the table below.
type command struct {
	name     string // as typed: "status", "backfill pause"
	args     string // the positional arguments, for the usage line
	summary  string // one line, for the list of commands
	about    string // what it does, for its usage
	min, max int    // how many positional arguments it takes
	// setup defines the command's own flags on fs and returns the function
	// that runs it once the flags are parsed.
	setup func(fs *flag.FlagSet) func(c *call) error
}

// call is one run of a command: its parsed arguments and, for commands that
// need one, the open store.
type call struct {
	ctx  context.Context
	env  *env
	cmd  *command
	args []string // the positional arguments
	json bool     // --json: print JSON instead of tables
	conn connFlags

	db    *sqlx.DB              // set by open
	store *expandcontract.Store // set by open
}

// out is where the command prints its result.
func (c *call) out() io.Writer { return c.env.stdout }

// commands lists every command, in the order help shows them.
var commands []*command

func init() {
	commands = []*command{
		statusCommand, historyCommand, instancesCommand, moveCommand, liftCommand,
		backfillControl("pause", "ask the runner to pause after its current batch"),
		backfillControl("resume", "lift a pause"),
		backfillControl("cancel", "ask the runner to stop after its current batch; the checkpoint stays"),
		backfillControl("reset-cancel", "lift a cancellation, so that a new run may start"),
		backfillControl("mark-done", "record the backfill as done, for one made by other means"),
		backfillSetCommand,
		verifyCommand, repairsListCommand, repairsRetryCommand, ddlCommand,
	}
}

// groups are the commands that take a subcommand.
var groups = map[string]bool{"backfill": true, "repairs": true}

// find returns the command named by the start of args and the arguments
// after its name, or nil.
func find(args []string) (*command, []string) {
	if len(args) == 0 {
		return nil, nil
	}
	name, rest := args[0], args[1:]
	if groups[name] && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = name+" "+rest[0], rest[1:]
	}
	for _, c := range commands {
		if c.name == name {
			return c, rest
		}
	}
	return nil, nil
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainUsage())
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 || args[0] != "help" {
			fmt.Fprint(e.stdout, mainUsage())
			return exitOK
		}
		cmd, rest := find(args[1:])
		if cmd == nil || len(rest) > 0 {
			fmt.Fprintf(e.stderr, "cutover: help: unknown command %q; run 'cutover help' for the list\n", strings.Join(args[1:], " "))
			return exitUsage
		}
		fs, _ := cmd.flagSet(&call{})
		fmt.Fprint(e.stdout, cmd.usage(fs))
		return exitOK
	}
	cmd, rest := find(args)
	if cmd == nil {
		return unknownCommand(args, e)
	}
	c := &call{ctx: ctx, env: e, cmd: cmd}
	fs, runFn := cmd.flagSet(c)
	pos, err := parseArgs(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, cmd.usage(fs))
		return exitOK
	}
	if err == nil {
		err = cmd.checkArgs(pos)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "cutover: %s: %v; run 'cutover %s -h' for its usage\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	c.args = pos
	err = c.do(runFn)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(e.stderr, "cutover: %s: %s%v\n", c.label(), kindPrefix(code), err)
	return code
}

// do runs fn, and closes the store and the database if fn opened them.
func (c *call) do(fn func(c *call) error) error {
	c.conn.fill(c.env.getenv)
	defer func() {
		if c.store != nil {
			_ = c.store.Close()
		}
		if c.db != nil {
			c.db.Close()
		}
	}()
	return fn(c)
}

// open opens the database and the store of its metadata tables, once. A
// command calls it after checking its arguments, so that bad input is
// reported before the database is touched.
func (c *call) open() error {
	if c.store != nil {
		return nil
	}
	db, store, err := c.conn.open(c.ctx)
	if err != nil {
		return err
	}
	c.db, c.store = db, store
	return nil
}

// label names the command and its migration in an error.
func (c *call) label() string {
	if strings.HasPrefix(strings.TrimPrefix(c.cmd.args, "["), "MIGRATION") && len(c.args) > 0 {
		return c.cmd.name + " " + c.args[0]
	}
	return c.cmd.name
}

// unknownCommand reports a command line that names no command, and
// prints the subcommands of a group for "cutover GROUP -h".
func unknownCommand(args []string, e *env) int {
	group := args[0]
	if !groups[group] {
		fmt.Fprintf(e.stderr, "cutover: unknown command %q; run 'cutover help' for the list\n", group)
		return exitUsage
	}
	var subs []string
	for _, c := range commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			subs = append(subs, sub)
		}
	}
	switch {
	case len(args) > 1 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help"):
		fmt.Fprint(e.stdout, mainUsage())
		return exitOK
	case len(args) == 1 || strings.HasPrefix(args[1], "-"):
		fmt.Fprintf(e.stderr, "cutover: %s: missing subcommand (%s); run 'cutover help' for the list\n", group, strings.Join(subs, ", "))
	default:
		fmt.Fprintf(e.stderr, "cutover: unknown command \"%s %s\" (%s takes %s); run 'cutover help' for the list\n",
			group, args[1], group, strings.Join(subs, ", "))
	}
	return exitUsage
}

// flagSet returns the command's flags, the common ones included, and the
// function that runs it.
func (cmd *command) flagSet(c *call) (*flag.FlagSet, func(c *call) error) {
	fs := flag.NewFlagSet("cutover "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, usage by usage
	c.conn.define(fs)
	fs.BoolVar(&c.json, "json", false, "print JSON instead of tables (see docs/cli.md)")
	return fs, cmd.setup(fs)
}

// checkArgs checks the number of positional arguments.
func (cmd *command) checkArgs(pos []string) error {
	switch {
	case len(pos) < cmd.min:
		return usageErrorf("missing %s", strings.Fields(cmd.args)[len(pos)])
	case len(pos) > cmd.max:
		return usageErrorf("unexpected argument %q", pos[cmd.max])
	}
	for _, p := range pos {
		if strings.TrimSpace(p) == "" {
			return usageErrorf("empty argument")
		}
	}
	return nil
}

// parseArgs parses args with fs, allowing flags after positional
// arguments, as in "cutover status users-email --json". Everything after
// "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is bad input on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// notFoundError is a migration, or metadata tables, that are not there:
// exit status 4.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// exitCode returns the exit status for err.
func exitCode(err error) int {
	var ue *usageError
	var nf *notFoundError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nf), errors.Is(err, expandcontract.ErrNotFound):
		return exitNotFound
	case errors.Is(err, expandcontract.ErrIllegalMove), errors.Is(err, expandcontract.ErrGuard),
		errors.Is(err, expandcontract.ErrConflict), errors.Is(err, lockcheck.ErrUnsafe):
		return exitRefused
	case errors.Is(err, expandcontract.ErrInvalidInput), errors.Is(err, backfill.ErrInvalidInput),
		errors.Is(err, verify.ErrInvalidInput), errors.Is(err, repair.ErrInvalidInput),
		errors.Is(err, expandcontract.ErrUnknownPhase), errors.Is(err, cutover.ErrUnknownStage):
		return exitUsage
	}
	return exitFailed
}

// kindPrefix is what an error message says before the error for status
// code.
func kindPrefix(code int) string {
	switch code {
	case exitRefused:
		return "refused: "
	case exitNotFound:
		return "not found: "
	}
	return ""
}
