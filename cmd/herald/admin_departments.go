package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"herald/store"
	"herald/web/admin"
)

// departmentLabels name a department's fields as the command line knows
// them.
var departmentLabels = map[string]string{"slug": "--slug", "name": "--name", "url": "--url"}

func runDepartments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "departments", departmentVerbs(), nil, args, stdout, stderr, openStore)
}

func departmentVerbs() map[string]adminCommand {
	return map[string]adminCommand{
		"list": {usage: "[--json]", flags: func(fs *flag.FlagSet) adminRun {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, c adminEnv, _ []string) error {
				ds, err := c.db.Departments(ctx)
				if err != nil {
					return err
				}
				if *asJSON {
					return printJSON(c.stdout, append([]store.Department{}, ds...))
				}
				tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SLUG\tNAME\tWEBSITE")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Slug, d.Name, d.URL)
				}
				return tw.Flush()
			}
		}},
		"add": {usage: "--slug SLUG --name NAME [--url URL]", flags: func(fs *flag.FlagSet) adminRun {
			var in admin.DepartmentInput
			fs.StringVar(&in.Slug, "slug", "", "the department's `SLUG`, as in /departments/SLUG")
			fs.StringVar(&in.Name, "name", "", "the department's `NAME`")
			fs.StringVar(&in.URL, "url", "", "the department's website `URL`")
			return func(ctx context.Context, c adminEnv, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				d, err := c.ops.CreateDepartment(ctx, in)
				if err != nil {
					return inputError(err, in, departmentLabels)
				}
				fmt.Fprintf(c.stdout, "added department %s (%s)\n", d.Slug, d.Name)
				return nil
			}
		}},
		"update": {usage: "SLUG [--name NAME] [--url URL]", flags: func(fs *flag.FlagSet) adminRun {
			name := fs.String("name", "", "the department's new `NAME`")
			url := fs.String("url", "", "the department's new website `URL` (\"\" to remove it)")
			return func(ctx context.Context, c adminEnv, args []string) error {
				slug, err := oneArg(args, "department slug")
				if err != nil {
					return err
				}
				d, err := c.db.DepartmentBySlug(ctx, slug)
				if err != nil {
					return notFound(err, "no department with slug %q", slug)
				}
				in := admin.DepartmentInputOf(d)
				if flagSet(fs, "name") {
					in.Name = *name
				}
				if flagSet(fs, "url") {
					in.URL = *url
				}
				d, err = c.ops.UpdateDepartment(ctx, slug, in)
				if err != nil {
					return inputError(err, in, departmentLabels)
				}
				fmt.Fprintf(c.stdout, "updated department %s (%s)\n", d.Slug, d.Name)
				return nil
			}
		}},
	}
}
