package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"herald/store"
	"herald/web/admin"
)

// topicLabels name a topic's fields as the command line knows them.
var topicLabels = map[string]string{
	"slug": "--slug", "title": "--title", "description": "--description", "match": "the rule (--department, --category, --keyword)",
	"match.departments": "--department", "match.categories": "--category", "match.keywords": "--keyword", "match.exclude": "--exclude",
}

func runTopics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "topics", topicVerbs(), map[string]string{"remove": "retire"}, args, stdout, stderr, openStore)
}

// ruleFlags are the flags that define a topic's rule.
type ruleFlags struct {
	departments, categories, keywords, exclude stringList
}

func defineRuleFlags(fs *flag.FlagSet) *ruleFlags {
	r := &ruleFlags{}
	fs.Var(&r.departments, "department", "match releases of the department with this `SLUG` (repeatable)")
	fs.Var(&r.categories, "category", "match releases with this upstream `CATEGORY` (repeatable)")
	fs.Var(&r.keywords, "keyword", "match releases whose title or summary has this `WORD` or phrase (repeatable)")
	fs.Var(&r.exclude, "exclude", "never match releases with this `WORD` or phrase (repeatable)")
	return r
}

func (r *ruleFlags) rule() store.Rule {
	return store.Rule{Departments: r.departments, Categories: r.categories, Keywords: r.keywords, Exclude: r.exclude}
}

// given reports whether any rule flag was given, for update.
func (r *ruleFlags) given(fs *flag.FlagSet) bool {
	return flagSet(fs, "department") || flagSet(fs, "category") || flagSet(fs, "keyword") || flagSet(fs, "exclude")
}

func topicVerbs() map[string]adminCommand {
	return map[string]adminCommand{
		"list": {usage: "[--all] [--json]", flags: func(fs *flag.FlagSet) adminRun {
			all := fs.Bool("all", false, "include retired topics")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, c adminEnv, _ []string) error {
				ts, err := c.db.Topics(ctx, *all)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.stdout, append([]store.Topic{}, ts...))
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SLUG\tTITLE\tSTATUS\tRULE")
				for _, t := range ts {
					status := "active"
					if t.Retired() {
						status = "retired"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Slug, t.Title, status, describeRule(t.Rule))
				}
				return tw.Flush()
			}
		}},
		"add": {usage: "--slug SLUG --title TITLE [--description TEXT] [--department SLUG]... [--category C]... [--keyword K]... [--exclude W]...",
			flags: func(fs *flag.FlagSet) adminRun {
				var in admin.TopicInput
				fs.StringVar(&in.Slug, "slug", "", "the topic's `SLUG`, as in /topics/SLUG")
				fs.StringVar(&in.Title, "title", "", "the topic's `TITLE`")
				fs.StringVar(&in.Description, "description", "", "a `TEXT` shown on the topic's page")
				rf := defineRuleFlags(fs)
				return func(ctx context.Context, c adminEnv, args []string) error {
					if err := noArgs(args); err != nil {
						return err
					}
					in.Match = rf.rule()
					t, err := c.ops.CreateTopic(ctx, in)
					if err != nil {
						return inputError(err, in, topicLabels)
					}
					n, err := taggedCount(ctx, c.db, t.Slug)
					if err != nil {
						return err
					}
					fmt.Fprintf(c.stdout, "added topic %s (%s): %d releases in the archive match\n", t.Slug, t.Title, n)
					return nil
				}
			}},
		"update": {usage: "SLUG [--title TITLE] [--description TEXT] [rule flags, which replace the whole rule]",
			flags: func(fs *flag.FlagSet) adminRun {
				title := fs.String("title", "", "the topic's new `TITLE`")
				description := fs.String("description", "", "the topic's new description `TEXT`")
				rf := defineRuleFlags(fs)
				return func(ctx context.Context, c adminEnv, args []string) error {
					slug, err := oneArg(args, "topic slug")
					if err != nil {
						return err
					}
					t, err := c.db.TopicBySlug(ctx, slug)
					if err != nil {
						return notFound(err, "no topic with slug %q", slug)
					}
					in := admin.TopicInputOf(t)
					if flagSet(fs, "title") {
						in.Title = *title
					}
					if flagSet(fs, "description") {
						in.Description = *description
					}
					if rf.given(fs) {
						in.Match = rf.rule()
					}
					t, err = c.ops.UpdateTopic(ctx, slug, in)
					if err != nil {
						return inputError(err, in, topicLabels)
					}
					fmt.Fprintf(c.stdout, "updated topic %s (%s)\n", t.Slug, t.Title)
					return nil
				}
			}},
		"preview": {usage: "[rule flags]: what the rule would have matched in the last 30 days",
			flags: func(fs *flag.FlagSet) adminRun {
				rf := defineRuleFlags(fs)
				return func(ctx context.Context, c adminEnv, args []string) error {
					if err := noArgs(args); err != nil {
						return err
					}
					in := admin.PreviewInput{Match: rf.rule()}
					p, err := c.ops.PreviewTopic(ctx, in)
					if err != nil {
						return inputError(err, in, topicLabels)
					}
					fmt.Fprintf(c.stdout, "%d releases in the last 30 days match\n", p.Matched)
					tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
					for _, r := range p.Examples {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Published.Format(time.DateOnly), r.DepartmentSlug, r.Title)
					}
					return tw.Flush()
				}
			}},
		"retire": {usage: "SLUG (also: remove; a retired topic keeps its releases and its feeds say they ended)",
			flags: noFlags(func(ctx context.Context, c adminEnv, args []string) error {
				slug, err := oneArg(args, "topic slug")
				if err != nil {
					return err
				}
				if _, err := c.ops.RetireTopic(ctx, slug); err != nil {
					return notFound(err, "no topic with slug %q", slug)
				}
				fmt.Fprintf(c.stdout, "retired topic %s\n", slug)
				return nil
			})},
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
