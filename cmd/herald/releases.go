package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"herald/store"
	"herald/templates/text"
)

// releaseJSON is the stable shape `herald releases --json` prints.
type releaseJSON struct {
	ID         int64    `json:"id"`
	Title      string   `json:"title"`
	Link       string   `json:"link"`
	Summary    string   `json:"summary"`
	Department string   `json:"department"`
	Topics     []string `json:"topics"`
	Categories []string `json:"categories"`
	Published  string   `json:"published"`
	Updated    string   `json:"updated"`
	Source     string   `json:"source"`
	GUID       string   `json:"guid"`
	FirstSeen  string   `json:"first_seen"`
	Edits      int      `json:"edits"`
}

func runReleases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("releases", stderr)
	dept := fs.String("department", "", "only releases of the department with this `SLUG`")
	topic := fs.String("topic", "", "only releases tagged with the topic with this `SLUG`")
	limit := fs.Int("limit", 50, "at most `N` releases")
	asJSON := fs.Bool("json", false, "print one JSON array")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *limit < 1 {
		return usageError("--limit must be at least 1")
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if *dept != "" {
		if _, err := a.db.DepartmentBySlug(ctx, *dept); err != nil {
			return fmt.Errorf("no department with slug %q", *dept)
		}
	}
	if *topic != "" {
		if _, err := a.db.TopicBySlug(ctx, *topic); err != nil {
			return fmt.Errorf("no topic with slug %q", *topic)
		}
	}
	rs, err := a.db.Releases(ctx, store.ReleaseFilter{Department: *dept, Topic: *topic, Limit: *limit, WithTopics: true})
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]releaseJSON, len(rs))
		for i, r := range rs {
			out[i] = releaseJSON{ID: r.ID, Title: r.Title, Link: r.Link, Summary: r.Summary, Department: r.DepartmentSlug,
				Topics: r.Topics, Categories: r.Categories, Published: r.Published.Format(time.RFC3339),
				Updated: r.Updated.Format(time.RFC3339), Source: r.Source, GUID: r.GUID,
				FirstSeen: r.FirstSeen.Format(time.RFC3339), Edits: r.EditCount}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPUBLISHED\tDEPARTMENT\tTITLE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.ID, r.Published.Format("2006-01-02 15:04"), r.DepartmentSlug, text.Excerpt(r.Title, 90))
	}
	return tw.Flush()
}
