package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"herald/store"
	"herald/web/admin"
)

// sourceLabels name a source's fields as the command line knows them.
var sourceLabels = map[string]string{"name": "--name", "url": "--url", "department": "--department", "format": "--format"}

func runSources(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "sources", sourceVerbs(), map[string]string{"remove": "disable"}, args, stdout, stderr, openStore)
}

func sourceVerbs() map[string]adminCommand {
	return map[string]adminCommand{
		"list": {usage: "[--json]", flags: func(fs *flag.FlagSet) adminRun {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, c adminEnv, _ []string) error {
				srcs, err := c.db.Sources(ctx)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.stdout, append([]store.Source{}, srcs...))
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDEPARTMENT\tFORMAT\tENABLED\tLAST SUCCESS\tFAILURES\tURL")
				for _, s := range srcs {
					last := "never"
					if !s.LastSuccessAt.IsZero() {
						last = s.LastSuccessAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%d\t%s\n", s.Name, s.DepartmentSlug, s.Format, s.Enabled, last, s.FailureCount, s.URL)
				}
				return tw.Flush()
			}
		}},
		"add": {usage: "--name NAME --url URL --department SLUG [--format auto|atom|rss|jsonfeed|govuk-search] [--disabled]", flags: func(fs *flag.FlagSet) adminRun {
			var in admin.SourceInput
			fs.StringVar(&in.Name, "name", "", "the source's `NAME`")
			fs.StringVar(&in.URL, "url", "", "the publisher's feed `URL`")
			fs.StringVar(&in.Department, "department", "", "the `SLUG` of the department its releases belong to")
			fs.StringVar(&in.Format, "format", store.FormatAuto, "the feed's `FORMAT`")
			disabled := fs.Bool("disabled", false, "add it without pulling it on schedule")
			return func(ctx context.Context, c adminEnv, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				enabled := !*disabled
				in.Enabled = &enabled
				s, err := c.ops.CreateSource(ctx, in)
				if err != nil {
					return inputError(err, in, sourceLabels)
				}
				fmt.Fprintf(c.stdout, "added source %s (%s)\n", s.Name, s.URL)
				return nil
			}
		}},
		"update": {usage: "NAME [--url URL] [--department SLUG] [--format FORMAT]", flags: func(fs *flag.FlagSet) adminRun {
			url := fs.String("url", "", "the publisher's new feed `URL`")
			dept := fs.String("department", "", "the `SLUG` of the department its releases belong to")
			format := fs.String("format", "", "the feed's `FORMAT`")
			return func(ctx context.Context, c adminEnv, args []string) error {
				name, err := oneArg(args, "source name")
				if err != nil {
					return err
				}
				s, err := c.db.SourceByName(ctx, name)
				if err != nil {
					return notFound(err, "no source named %q", name)
				}
				in := admin.SourceInputOf(s)
				if flagSet(fs, "url") {
					in.URL = *url
				}
				if flagSet(fs, "department") {
					in.Department = *dept
				}
				if flagSet(fs, "format") {
					in.Format = *format
				}
				s, err = c.ops.UpdateSource(ctx, name, in)
				if err != nil {
					return inputError(err, in, sourceLabels)
				}
				fmt.Fprintf(c.stdout, "updated source %s\n", s.Name)
				return nil
			}
		}},
		"enable":  {usage: "NAME", flags: noFlags(enableSource(true))},
		"disable": {usage: "NAME (also: remove; sources are disabled, never deleted, so their releases stay)", flags: noFlags(enableSource(false))},
	}
}

func enableSource(on bool) adminRun {
	return func(ctx context.Context, c adminEnv, args []string) error {
		name, err := oneArg(args, "source name")
		if err != nil {
			return err
		}
		if _, err := c.ops.SetSourceEnabled(ctx, name, on); err != nil {
			return notFound(err, "no source named %q", name)
		}
		if on {
			fmt.Fprintf(c.stdout, "enabled source %s\n", name)
		} else {
			fmt.Fprintf(c.stdout, "disabled source %s (its releases are kept)\n", name)
		}
		return nil
	}
}
