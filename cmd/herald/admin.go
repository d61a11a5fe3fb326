package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"herald/alerts/address"
	"herald/store"
	"herald/web"
)

// The admin commands: departments, sources, topics and subscribers, over
// the same store methods the admin API and console call. Each command is
// "herald NOUN VERB [flags] [ARG]".

// adminCommand is one verb of a noun: it gets the open store.
type adminCommand struct {
	usage string
	run   func(ctx context.Context, db *store.DB, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error
	flags func(fs *flag.FlagSet)
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
	if cmd.flags != nil {
		cmd.flags(fs)
	}
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
	return cmd.run(ctx, db, fs, positional, stdout, stderr)
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

// conflict words a uniqueness failure for the command line.
func conflict(err error, what, key string) error {
	if store.IsConflict(err) {
		return fmt.Errorf("a %s named %q already exists", what, key)
	}
	return err
}

// ---- departments ----

func runDepartments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "departments", departmentVerbs(), nil, args, stdout, stderr, openStore)
}

func departmentVerbs() map[string]adminCommand {
	var slug, name, url *string
	var asJSON *bool
	return map[string]adminCommand{
		"list": {usage: "[--json]", flags: func(fs *flag.FlagSet) {
			asJSON = fs.Bool("json", false, "print JSON")
		}, run: func(ctx context.Context, db *store.DB, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			ds, err := db.Departments(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(stdout, append([]store.Department{}, ds...))
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLUG\tNAME\tWEBSITE")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Slug, d.Name, d.URL)
			}
			return tw.Flush()
		}},
		"add": {usage: "--slug SLUG --name NAME [--url URL]", flags: func(fs *flag.FlagSet) {
			slug = fs.String("slug", "", "the department's `SLUG`, as in /departments/SLUG")
			name = fs.String("name", "", "the department's `NAME`")
			url = fs.String("url", "", "the department's website `URL`")
		}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			if len(args) > 0 {
				return usageError("unexpected argument %q", args[0])
			}
			if err := checkURL(*url, false); err != nil {
				return err
			}
			d, err := db.CreateDepartment(ctx, store.Department{Slug: *slug, Name: *name, URL: *url})
			if err != nil {
				return conflict(err, "department", *slug)
			}
			fmt.Fprintf(stdout, "added department %s (%s)\n", d.Slug, d.Name)
			return nil
		}},
		"update": {usage: "SLUG [--name NAME] [--url URL]", flags: func(fs *flag.FlagSet) {
			name = fs.String("name", "", "the department's new `NAME`")
			url = fs.String("url", "", "the department's new website `URL` (\"\" to remove it)")
		}, run: func(ctx context.Context, db *store.DB, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			s, err := oneArg(args, "department slug")
			if err != nil {
				return err
			}
			d, err := db.DepartmentBySlug(ctx, s)
			if err != nil {
				return fmt.Errorf("no department with slug %q", s)
			}
			if flagSet(fs, "name") {
				d.Name = *name
			}
			if flagSet(fs, "url") {
				if err := checkURL(*url, false); err != nil {
					return err
				}
				d.URL = *url
			}
			d, err = db.UpdateDepartment(ctx, s, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "updated department %s (%s)\n", d.Slug, d.Name)
			return nil
		}},
	}
}

func checkURL(raw string, required bool) error {
	if raw == "" && !required {
		return nil
	}
	if msg := store.CheckFeedURL(raw); msg != "" {
		return usageError("%s", msg)
	}
	return nil
}

// ---- sources ----

func runSources(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "sources", sourceVerbs(), map[string]string{"remove": "disable"}, args, stdout, stderr, openStore)
}

func sourceVerbs() map[string]adminCommand {
	var name, url, dept, format *string
	var disabled, asJSON *bool
	enable := func(on bool) func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
		return func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			n, err := oneArg(args, "source name")
			if err != nil {
				return err
			}
			if err := db.SetSourceEnabled(ctx, n, on); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no source named %q", n)
			} else if err != nil {
				return err
			}
			if on {
				fmt.Fprintf(stdout, "enabled source %s\n", n)
			} else {
				fmt.Fprintf(stdout, "disabled source %s (its releases are kept)\n", n)
			}
			return nil
		}
	}
	return map[string]adminCommand{
		"list": {usage: "[--json]", flags: func(fs *flag.FlagSet) {
			asJSON = fs.Bool("json", false, "print JSON")
		}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, _ []string, stdout, _ io.Writer) error {
			srcs, err := db.Sources(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(stdout, append([]store.Source{}, srcs...))
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDEPARTMENT\tFORMAT\tENABLED\tLAST SUCCESS\tFAILURES\tURL")
			for _, s := range srcs {
				last := "never"
				if !s.LastSuccessAt.IsZero() {
					last = s.LastSuccessAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%d\t%s\n", s.Name, s.DepartmentSlug, s.Format, s.Enabled, last, s.FailureCount, s.URL)
			}
			return tw.Flush()
		}},
		"add": {usage: "--name NAME --url URL --department SLUG [--format auto|atom|rss|jsonfeed|govuk-search] [--disabled]", flags: func(fs *flag.FlagSet) {
			name = fs.String("name", "", "the source's `NAME`")
			url = fs.String("url", "", "the publisher's feed `URL`")
			dept = fs.String("department", "", "the `SLUG` of the department its releases belong to")
			format = fs.String("format", store.FormatAuto, "the feed's `FORMAT`")
			disabled = fs.Bool("disabled", false, "add it without pulling it on schedule")
		}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			if len(args) > 0 {
				return usageError("unexpected argument %q", args[0])
			}
			if _, err := db.DepartmentBySlug(ctx, *dept); err != nil {
				return fmt.Errorf("no department with slug %q (see \"herald departments list\")", *dept)
			}
			s, err := db.CreateSource(ctx, store.Source{Name: *name, URL: *url, DepartmentSlug: *dept, Format: *format, Enabled: !*disabled})
			if err != nil {
				return conflict(err, "source", *name)
			}
			fmt.Fprintf(stdout, "added source %s (%s)\n", s.Name, s.URL)
			return nil
		}},
		"update": {usage: "NAME [--url URL] [--department SLUG] [--format FORMAT]", flags: func(fs *flag.FlagSet) {
			url = fs.String("url", "", "the publisher's new feed `URL`")
			dept = fs.String("department", "", "the `SLUG` of the department its releases belong to")
			format = fs.String("format", "", "the feed's `FORMAT`")
		}, run: func(ctx context.Context, db *store.DB, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			n, err := oneArg(args, "source name")
			if err != nil {
				return err
			}
			s, err := db.SourceByName(ctx, n)
			if err != nil {
				return fmt.Errorf("no source named %q", n)
			}
			if flagSet(fs, "url") {
				s.URL = *url
			}
			if flagSet(fs, "department") {
				if _, err := db.DepartmentBySlug(ctx, *dept); err != nil {
					return fmt.Errorf("no department with slug %q", *dept)
				}
				s.DepartmentSlug = *dept
			}
			if flagSet(fs, "format") {
				s.Format = *format
			}
			s, err = db.UpsertSource(ctx, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "updated source %s\n", s.Name)
			return nil
		}},
		"enable":  {usage: "NAME", run: enable(true)},
		"disable": {usage: "NAME (also: remove; sources are disabled, never deleted, so their releases stay)", run: enable(false)},
	}
}

// ---- topics ----

func runTopics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "topics", topicVerbs(), map[string]string{"remove": "retire"}, args, stdout, stderr, openStore)
}

// ruleFlags are the flags that define a topic's rule.
type ruleFlags struct {
	departments, categories, keywords, exclude stringList
}

func (r *ruleFlags) define(fs *flag.FlagSet) {
	*r = ruleFlags{}
	fs.Var(&r.departments, "department", "match releases of the department with this `SLUG` (repeatable)")
	fs.Var(&r.categories, "category", "match releases with this upstream `CATEGORY` (repeatable)")
	fs.Var(&r.keywords, "keyword", "match releases whose title or summary has this `WORD` or phrase (repeatable)")
	fs.Var(&r.exclude, "exclude", "never match releases with this `WORD` or phrase (repeatable)")
}

func (r *ruleFlags) rule() store.Rule {
	return store.Rule{Departments: r.departments, Categories: r.categories, Keywords: r.keywords, Exclude: r.exclude}
}

// given reports whether any rule flag was given, for update.
func (r *ruleFlags) given(fs *flag.FlagSet) bool {
	return flagSet(fs, "department") || flagSet(fs, "category") || flagSet(fs, "keyword") || flagSet(fs, "exclude")
}

func checkRuleDepartments(ctx context.Context, db *store.DB, rule store.Rule) error {
	for _, d := range rule.Departments {
		if _, err := db.DepartmentBySlug(ctx, d); err != nil {
			return fmt.Errorf("no department with slug %q (see \"herald departments list\")", d)
		}
	}
	return nil
}

func topicVerbs() map[string]adminCommand {
	var slug, title, description *string
	var all, asJSON *bool
	var rf ruleFlags
	return map[string]adminCommand{
		"list": {usage: "[--all] [--json]", flags: func(fs *flag.FlagSet) {
			all = fs.Bool("all", false, "include retired topics")
			asJSON = fs.Bool("json", false, "print JSON")
		}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, _ []string, stdout, _ io.Writer) error {
			ts, err := db.Topics(ctx, *all)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(stdout, append([]store.Topic{}, ts...))
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLUG\tTITLE\tSTATUS\tRULE")
			for _, t := range ts {
				status := "active"
				if t.Retired() {
					status = "retired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Slug, t.Title, status, describeRule(t.Rule))
			}
			return tw.Flush()
		}},
		"add": {usage: "--slug SLUG --title TITLE [--description TEXT] [--department SLUG]... [--category C]... [--keyword K]... [--exclude W]...",
			flags: func(fs *flag.FlagSet) {
				slug = fs.String("slug", "", "the topic's `SLUG`, as in /topics/SLUG")
				title = fs.String("title", "", "the topic's `TITLE`")
				description = fs.String("description", "", "a `TEXT` shown on the topic's page")
				rf.define(fs)
			}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return usageError("unexpected argument %q", args[0])
				}
				rule := rf.rule()
				if err := checkRuleDepartments(ctx, db, rule); err != nil {
					return err
				}
				t, err := db.CreateTopic(ctx, store.Topic{Slug: *slug, Title: *title, Description: *description, Rule: rule})
				if err != nil {
					return conflict(err, "topic", *slug)
				}
				n, err := taggedCount(ctx, db, t.Slug)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "added topic %s (%s): %d releases in the archive match\n", t.Slug, t.Title, n)
				return nil
			}},
		"update": {usage: "SLUG [--title TITLE] [--description TEXT] [rule flags, which replace the whole rule]",
			flags: func(fs *flag.FlagSet) {
				title = fs.String("title", "", "the topic's new `TITLE`")
				description = fs.String("description", "", "the topic's new description `TEXT`")
				rf.define(fs)
			}, run: func(ctx context.Context, db *store.DB, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				s, err := oneArg(args, "topic slug")
				if err != nil {
					return err
				}
				t, err := db.TopicBySlug(ctx, s)
				if err != nil {
					return fmt.Errorf("no topic with slug %q", s)
				}
				if flagSet(fs, "title") {
					t.Title = *title
				}
				if flagSet(fs, "description") {
					t.Description = *description
				}
				if rf.given(fs) {
					t.Rule = rf.rule()
					if err := checkRuleDepartments(ctx, db, t.Rule); err != nil {
						return err
					}
				}
				t, err = db.UpsertTopic(ctx, t)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "updated topic %s (%s)\n", t.Slug, t.Title)
				return nil
			}},
		"preview": {usage: "[rule flags]: what the rule would have matched in the last 30 days",
			flags: func(fs *flag.FlagSet) { rf.define(fs) },
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return usageError("unexpected argument %q", args[0])
				}
				rule := rf.rule()
				if rule.Empty() {
					return usageError("give the rule with --department, --category, --keyword or --exclude")
				}
				if p := rule.Problems(); len(p) > 0 {
					return usageError("%s", strings.Join(p, "; "))
				}
				if err := checkRuleDepartments(ctx, db, rule); err != nil {
					return err
				}
				n, examples, err := db.RuleMatches(ctx, rule, db.Now().Add(-30*24*time.Hour), 10)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%d releases in the last 30 days match\n", n)
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				for _, r := range examples {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Published.Format(time.DateOnly), r.DepartmentSlug, r.Title)
				}
				return tw.Flush()
			}},
		"retire": {usage: "SLUG (also: remove; a retired topic keeps its releases and its feeds say they ended)",
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				s, err := oneArg(args, "topic slug")
				if err != nil {
					return err
				}
				if err := db.RetireTopic(ctx, s); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no topic with slug %q", s)
				} else if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "retired topic %s\n", s)
				return nil
			}},
	}
}

func taggedCount(ctx context.Context, db *store.DB, slug string) (int, error) {
	res, err := db.SearchReleases(ctx, store.SearchQuery{Topic: slug, Limit: 1})
	return res.Total, err
}

func describeRule(r store.Rule) string {
	var parts []string
	add := func(name string, items []string) {
		if len(items) > 0 {
			parts = append(parts, name+"="+strings.Join(items, "|"))
		}
	}
	add("departments", r.Departments)
	add("categories", r.Categories)
	add("keywords", r.Keywords)
	add("exclude", r.Exclude)
	return strings.Join(parts, " ")
}

// ---- subscribers ----

// subscriptionRow is one subscription in the import and export CSV:
// email,topic,department,frequency with exactly one of topic and
// department.
type subscriptionRow struct {
	Address    string
	Topic      string
	Department string
	Frequency  string
}

// subscribers is the subscribers command's view of the store: the admin
// console's abilities (web.StoreSubscribers) plus import and export rows.
type subscribers struct {
	web.StoreSubscribers
}

func newSubscribers(db *store.DB) subscribers { return subscribers{web.StoreSubscribers{DB: db}} }

// importRow stores a checked row as a confirmed subscription, reporting
// whether the subscriber is new.
func (s subscribers) importRow(ctx context.Context, row subscriptionRow) (bool, error) {
	var target store.Target
	if row.Topic != "" {
		t, err := s.DB.TopicBySlug(ctx, row.Topic)
		if err != nil {
			return false, err
		}
		target.TopicID = t.ID
	} else {
		d, err := s.DB.DepartmentBySlug(ctx, row.Department)
		if err != nil {
			return false, err
		}
		target.DepartmentID = d.ID
	}
	return s.DB.ImportSubscription(ctx, row.Address, target, row.Frequency)
}

// eachRow calls fn with every active subscription as an export row.
func (s subscribers) eachRow(ctx context.Context, fn func(subscriptionRow) error) error {
	return s.DB.EachSubscription(ctx, func(address string, sub store.Subscription) error {
		row := subscriptionRow{Address: address, Frequency: sub.Frequency}
		if sub.Kind == "topic" {
			row.Topic = sub.Slug
		} else {
			row.Department = sub.Slug
		}
		return fn(row)
	})
}

func runSubscribers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "subscribers", subscriberVerbs(isTerminal(stderr)),
		map[string]string{"remove": "erase", "list": "export"}, args, stdout, stderr, openStore)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// parseAddress returns the canonical form of an address given on the
// command line or in an import file, or a one-line message naming it and
// saying what is wrong.
func parseAddress(a string) (string, string) {
	canonical, err := address.Parse(a)
	if err != nil {
		return "", fmt.Sprintf("email address %q %s", strings.TrimSpace(a), address.Problem(err))
	}
	return canonical, ""
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("no subscriber with that address")
	}
	return err
}

func subscriberVerbs(terminal bool) map[string]adminCommand {
	var out *string
	addressArg := func(args []string) (string, error) {
		a, err := oneArg(args, "email address")
		if err != nil {
			return "", err
		}
		a, msg := parseAddress(a)
		if msg != "" {
			return "", usageError("%s", msg)
		}
		return a, nil
	}
	var email, topic, dept, freq *string
	return map[string]adminCommand{
		"add": {usage: "--email ADDRESS (--topic SLUG | --department SLUG) [--frequency immediately|daily|weekly]: a confirmed subscription, as import makes",
			flags: func(fs *flag.FlagSet) {
				email = fs.String("email", "", "the subscriber's `ADDRESS`")
				topic = fs.String("topic", "", "subscribe to the topic with this `SLUG`")
				dept = fs.String("department", "", "subscribe to the department with this `SLUG`")
				freq = fs.String("frequency", "immediately", "`HOW` often: immediately, daily or weekly")
			}, run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return usageError("unexpected argument %q", args[0])
				}
				topics, depts, err := subscribable(ctx, db)
				if err != nil {
					return err
				}
				row := subscriptionRow{Address: strings.TrimSpace(*email), Topic: *topic, Department: *dept, Frequency: *freq}
				if msg := checkRow(&row, topics, depts); msg != "" {
					return usageError("%s", msg)
				}
				created, err := newSubscribers(db).importRow(ctx, row)
				if err != nil {
					return err
				}
				if created {
					fmt.Fprintln(stdout, "added a new subscriber with one confirmed subscription")
				} else {
					fmt.Fprintln(stdout, "added the confirmed subscription to the existing subscriber")
				}
				return nil
			}},
		"lookup": {usage: "ADDRESS", run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
			a, err := addressArg(args)
			if err != nil {
				return err
			}
			info, err := newSubscribers(db).LookupSubscriber(ctx, a)
			if err != nil {
				return notFound(err)
			}
			return printJSON(stdout, info)
		}},
		"export": {usage: "[ADDRESS] [--out FILE]: with an address, everything stored about it as JSON; without, every confirmed subscription as CSV",
			flags: func(fs *flag.FlagSet) { out = fs.String("out", "", "write to `FILE` instead of standard output") },
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
				w := stdout
				if *out != "" {
					f, err := os.Create(*out)
					if err != nil {
						return err
					}
					defer f.Close()
					w = f
				}
				if len(args) > 0 {
					a, err := addressArg(args)
					if err != nil {
						return err
					}
					data, err := newSubscribers(db).ExportSubscriber(ctx, a)
					if err != nil {
						return notFound(err)
					}
					_, err = w.Write(data)
					return err
				}
				n, err := exportSubscriptions(ctx, newSubscribers(db), w, newProgress(stderr, terminal, "exporting"))
				if err != nil {
					return err
				}
				if *out != "" {
					fmt.Fprintf(stdout, "exported %d subscriptions to %s\n", n, *out)
				}
				return nil
			}},
		"import": {usage: "FILE.csv: columns email,topic,department,frequency (a header row names them)",
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
				path, err := oneArg(args, "CSV file")
				if err != nil {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				var size int64
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
				res, err := importSubscriptions(ctx, db, f, size, newProgress(stderr, terminal, "importing"), stderr)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "imported %d subscriptions (%d new subscribers); %d rows skipped\n", res.imported, res.newSubscribers, res.skipped)
				if res.skipped > 0 {
					return errFailed
				}
				return nil
			}},
		"erase": {usage: "ADDRESS (also: remove): delete the address and everything kept about it",
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				a, err := addressArg(args)
				if err != nil {
					return err
				}
				if err := newSubscribers(db).EraseSubscriber(ctx, a); err != nil {
					return notFound(err)
				}
				fmt.Fprintln(stdout, "erased the subscriber and everything stored about them")
				return nil
			}},
		"unsuppress": {usage: "ADDRESS: let Herald mail a suppressed address again",
			run: func(ctx context.Context, db *store.DB, _ *flag.FlagSet, args []string, stdout, _ io.Writer) error {
				a, err := addressArg(args)
				if err != nil {
					return err
				}
				if err := newSubscribers(db).LiftSuppression(ctx, a); err != nil {
					return notFound(err)
				}
				fmt.Fprintln(stdout, "suppression lifted")
				return nil
			}},
	}
}

var frequencies = []string{"immediately", "daily", "weekly"}

type importResult struct{ imported, newSubscribers, skipped int }

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// importSubscriptions reads the CSV and imports each row; a bad row is
// reported on errw with its line number and skipped, the rest go on.
func importSubscriptions(ctx context.Context, db *store.DB, r io.Reader, size int64, bar *progress, errw io.Writer) (importResult, error) {
	var res importResult
	cr := &countingReader{r: r}
	rd := csv.NewReader(cr)
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	header, err := rd.Read()
	if err != nil {
		return res, fmt.Errorf("reading the header row: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["email"]; !ok {
		return res, usageError("the header row must name an email column (and topic, department, frequency)")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	topics, depts, err := subscribable(ctx, db)
	if err != nil {
		return res, err
	}
	skip := func(line int, format string, args ...any) {
		res.skipped++
		bar.clear()
		fmt.Fprintf(errw, "line %d: %s\n", line, fmt.Sprintf(format, args...))
	}
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := rd.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				skip(pe.Line, "%v", pe.Err)
				continue
			}
			return res, err
		}
		row := subscriptionRow{Address: get(rec, "email"), Topic: get(rec, "topic"), Department: get(rec, "department"), Frequency: get(rec, "frequency")}
		if row.Address == "" && len(rec) == 1 {
			continue // a blank line
		}
		if msg := checkRow(&row, topics, depts); msg != "" {
			skip(line, "%s", msg)
			bar.update(cr.n, size)
			continue
		}
		created, err := newSubscribers(db).importRow(ctx, row)
		if err != nil {
			bar.clear()
			return res, fmt.Errorf("line %d: %w", line, err)
		}
		res.imported++
		if created {
			res.newSubscribers++
		}
		bar.update(cr.n, size)
	}
	bar.done(size, size)
	return res, nil
}

// subscribable returns the slugs of the active topics and the departments.
func subscribable(ctx context.Context, db *store.DB) (topics, depts map[string]bool, err error) {
	topics, depts = map[string]bool{}, map[string]bool{}
	ts, err := db.Topics(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range ts {
		topics[t.Slug] = true
	}
	ds, err := db.Departments(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range ds {
		depts[d.Slug] = true
	}
	return topics, depts, nil
}

// checkRow fills in the default frequency and the canonical address, and
// says what is wrong with a subscription row, or "".
func checkRow(row *subscriptionRow, topics, depts map[string]bool) string {
	if row.Frequency == "" {
		row.Frequency = "immediately"
	}
	a, msg := parseAddress(row.Address)
	if msg != "" {
		return msg
	}
	row.Address = a
	switch {
	case (row.Topic == "") == (row.Department == ""):
		return "give exactly one of topic and department"
	case row.Topic != "" && !topics[row.Topic]:
		return fmt.Sprintf("no active topic with slug %q", row.Topic)
	case row.Department != "" && !depts[row.Department]:
		return fmt.Sprintf("no department with slug %q", row.Department)
	case !slices.Contains(frequencies, row.Frequency):
		return fmt.Sprintf("frequency %q is not one of %s", row.Frequency, strings.Join(frequencies, ", "))
	}
	return ""
}

// exportSubscriptions writes every confirmed subscription as CSV in the
// import's format.
func exportSubscriptions(ctx context.Context, subs subscribers, w io.Writer, bar *progress) (int, error) {
	total, err := subs.DB.CountSubscriptions(ctx)
	if err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"email", "topic", "department", "frequency"}); err != nil {
		return 0, err
	}
	n := 0
	err = subs.eachRow(ctx, func(r subscriptionRow) error {
		n++
		bar.update(int64(n), int64(total))
		return cw.Write([]string{r.Address, r.Topic, r.Department, r.Frequency})
	})
	if err != nil {
		bar.clear()
		return n, err
	}
	cw.Flush()
	bar.done(int64(n), int64(max(total, n)))
	return n, cw.Error()
}

// progress draws a one-line progress bar on a terminal, at most ten times a
// second; on anything else it draws nothing.
type progress struct {
	w     io.Writer
	on    bool
	label string
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, terminal bool, label string) *progress {
	return &progress{w: w, on: terminal, label: label}
}

func (p *progress) update(done, total int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.draw(done, total)
}

func (p *progress) draw(done, total int64) {
	p.last = time.Now()
	p.drawn = true
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	fill := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%%", p.label, strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100)
}

// clear removes the bar so a message can take the line.
func (p *progress) clear() {
	if p.on && p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", len(p.label)+40))
		p.drawn = false
	}
}

func (p *progress) done(done, total int64) {
	if !p.on {
		return
	}
	p.draw(done, total)
	fmt.Fprintln(p.w)
}
