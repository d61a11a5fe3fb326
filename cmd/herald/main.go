// Command herald pulls publishers' feeds into SQLite, publishes Atom, RSS
// and JSON feeds per department and topic, and emails subscribers what is
// new. Run `herald help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // time zones work in a scratch container too
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" and
// never changed after; the commands pass it to what names the build (the
// User-Agent of pulls).
var version = "dev"

const usage = `Herald: syndication and email alerts for published news.

Usage: herald COMMAND [flags]

Commands:
  demo           run a working instance with sample publishers, no set-up
  serve          pull on a schedule, serve feeds and pages, send email
  pull           pull sources once and print what changed
  releases       list stored releases
  digest         send the due daily or weekly digests once
  render         write every feed as static files
  departments    list, add or update departments
  sources        list, add, update, enable or disable sources
  topics         list, add, update, retire or preview topics
  subscribers    look up, export, erase, import subscribers
  migrate        create or upgrade the database and exit
  copy-data      copy every row of one database into a new one (SQLite to PostgreSQL)
  bounce         read one bounce or complaint on stdin (an MTA's pipe transport)
  check-config   validate a config file and the templates it names
  version        print the version

Every command takes --config FILE (default: $HERALD_CONFIG, else herald.yaml
if present, else built-in defaults). Run "herald COMMAND -h" for its flags.
`

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func commands() map[string]command {
	return map[string]command{
		"demo":         runDemo,
		"serve":        runServe,
		"pull":         runPull,
		"releases":     runReleases,
		"digest":       runDigest,
		"render":       runRender,
		"departments":  runDepartments,
		"sources":      runSources,
		"topics":       runTopics,
		"subscribers":  runSubscribers,
		"migrate":      runMigrate,
		"copy-data":    runCopyData,
		"check-config": runCheckConfig,
		"bounce": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runBounce(ctx, args, os.Stdin, stdout, stderr)
		},
		"version": func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "herald", version)
			return nil
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errFailed means the command already reported what went wrong; exit 1.
var errFailed = errors.New("failed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "herald: unknown command %q (run \"herald help\" for the list)\n", args[0])
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	if code, ok := exitStatus(args[0], err, stderr); ok {
		return code
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "herald %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "herald %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage")

// usageError reports bad flags or arguments; it exits with status 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// newFlags makes a flag set that reports errors instead of exiting and
// knows the --config flag every command takes.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "", "config `FILE` (default $HERALD_CONFIG, else herald.yaml if present, else built-in defaults)")
	return fs, cfg
}

// parseFlags parses args and refuses stray positional arguments unless
// allowArgs.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !allowArgs && fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// configPath resolves which config file to read.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("HERALD_CONFIG"); env != "" {
		return env
	}
	if _, err := os.Stat("herald.yaml"); err == nil {
		return "herald.yaml"
	}
	return ""
}
