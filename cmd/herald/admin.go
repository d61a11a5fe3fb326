package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"herald/store"
	"herald/web/admin"
)

// The admin commands: departments, sources, topics and subscribers. Each
// is "herald NOUN VERB [flags] [ARG]" and a thin adapter over the admin
// operations the API and the console call: its flags fill the operation's
// typed input, and a refused input comes back as one line naming the
// flags (inputError).

// adminCommand is one verb of a noun.
type adminCommand struct {
	usage string
	// flags defines the verb's flags on fs, each bound to a variable of
	// the verb's own, and returns what runs the verb once they are
	// parsed.
	flags func(fs *flag.FlagSet) adminRun
}

// adminRun runs a verb with its positional arguments.
type adminRun func(ctx context.Context, c adminEnv, args []string) error

// adminEnv is what a verb works with: the store for reads, the admin
// operations for changes, and where to print.
type adminEnv struct {
	db             *store.DB
	ops            *admin.Service
	stdout, stderr io.Writer
}

// noFlags is the flags of a verb that has none.
func noFlags(run adminRun) func(*flag.FlagSet) adminRun {
	return func(*flag.FlagSet) adminRun { return run }
}

// runNoun parses "VERB [flags] [ARG]", opens the store and runs the verb.
func runNoun(ctx context.Context, noun string, verbs map[string]adminCommand, aliases map[string]string,
	args []string, stdout, stderr io.Writer, open func(ctx context.Context, cfgFlag string, stderr io.Writer) (*store.DB, func(), error)) error {
	names := make([]string, 0, len(verbs))
	for v := range verbs {
		names = append(names, v)
	}
	slices.Sort(names)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, "Usage: herald %s VERB [flags]\n\nVerbs:\n", noun)
		for _, v := range names {
			fmt.Fprintf(stderr, "  %s %s\n", v, verbs[v].usage)
		}
		if len(args) == 0 {
			return usageError("which %s command? one of %s", noun, strings.Join(names, ", "))
		}
		return flag.ErrHelp
	}
	verb := args[0]
	if a, ok := aliases[verb]; ok {
		verb = a
	}
	cmd, ok := verbs[verb]
	if !ok {
		return usageError("unknown %s command %q (one of %s)", noun, args[0], strings.Join(names, ", "))
	}
	fs, cfgFlag := newFlags(noun+" "+verb, stderr)
	run := cmd.flags(fs)
	// Go's flag package stops at the first argument that is not a flag, so
	// "update SLUG --title X" takes SLUG first.
	rest := args[1:]
	var positional []string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		positional, rest = rest[:1], rest[1:]
	}
	if err := parseFlags(fs, rest, true); err != nil {
		return err
	}
	positional = append(positional, fs.Args()...)
	db, closeDB, err := open(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	return run(ctx, adminEnv{db: db, ops: admin.New(db), stdout: stdout, stderr: stderr}, positional)
}

// openStore opens the configured database for an admin command.
func openStore(ctx context.Context, cfgFlag string, stderr io.Writer) (*store.DB, func(), error) {
	a, err := openConfigured(ctx, cfgFlag, stderr)
	if err != nil {
		return nil, nil, err
	}
	return a.db, func() { a.Close() }, nil
}

func oneArg(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usageError("give exactly one %s", what)
	}
	return args[0], nil
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// flagSet reports whether the flag was given on the command line, so an
// update changes only what it names.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// notFound words a missing thing for the command line.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf(format, args...)
	}
	return err
}

// inputError words the problems of an input the admin operations refused
// as one usage error (exit status 2); other errors pass through. labels
// names the input's fields as the command line knows them (see problems).
func inputError(err error, in any, labels map[string]string) error {
	var fe admin.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	return usageError("%s", strings.Join(problems(fe, in, labels), "; "))
}

// problems words each problem of fe as "LABEL "VALUE" MESSAGE": the label
// is labels' name for the field (a list item by its list's name, as
// "match.keywords" for "match.keywords[2]") or else the field's own path;
// the value is what in (the input as given) holds there, shown when it is
// short and the message does not quote it already.
func problems(fe admin.FieldErrors, in any, labels map[string]string) []string {
	out := make([]string, 0, len(fe))
	for _, field := range fe.Fields() {
		list, _, _ := strings.Cut(field, "[")
		label, ok := labels[list]
		if !ok {
			label = field
		}
		msg := fe[field]
		if v := strings.TrimSpace(fieldValue(in, field)); v != "" && len(v) <= 100 && !strings.Contains(msg, strconv.Quote(v)) {
			label += " " + strconv.Quote(v)
		}
		out = append(out, label+" "+msg)
	}
	return out
}

// fieldValue returns the string at path ("match.keywords[2]") in v's JSON
// form, the form whose paths the admin package's field errors use, or ""
// when there is none.
func fieldValue(v any, path string) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var cur any
	if json.Unmarshal(raw, &cur) != nil {
		return ""
	}
	for part := range strings.SplitSeq(path, ".") {
		name, idx, isItem := strings.Cut(part, "[")
		obj, _ := cur.(map[string]any)
		cur = obj[name]
		if isItem {
			i, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			list, _ := cur.([]any)
			if i < 0 || i >= len(list) {
				return ""
			}
			cur = list[i]
		}
	}
	s, _ := cur.(string)
	return s
}
