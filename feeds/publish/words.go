package publish

import (
	"io/fs"

	"herald/templates"
)

// CheckTemplates says every message of messages/feeds.txt, read from fsys
// (the built-in files with any overrides on top, as templates.FS gives
// them), with the values feeds give it, and returns every problem, one
// line each. check-config and the start of serve run it beside the
// pages' and emails' checks.
func CheckTemplates(fsys fs.FS) error {
	msgs, err := templates.LoadMessages(fsys)
	if err != nil {
		return err
	}
	return msgs.CheckSamples("messages/feeds.txt", wordSamples())
}

// wordSamples are the named values each feed message is said with.
func wordSamples() map[string][]any {
	const site, dept, topic = "Herald", "Department for Examples", "Flood defences"
	return map[string][]any{
		"feed.subtitle.all":        {"Site", site},
		"feed.title.department":    {"Department", dept, "Site", site},
		"feed.subtitle.department": {"Department", dept, "Site", site},
		"feed.title.topic":         {"Topic", topic, "Site", site},
		"feed.subtitle.topic":      {"Topic", topic, "Site", site},
		"feed.ended.title":         {"Topic", topic, "Site", site},
		"feed.ended.summary":       {"Topic", topic, "Date", "14 March 2025", "Site", site},
		"opml.title":               {"Site", site},
		"opml.all":                 {"Site", site},
		"opml.departments":         {"Site", site},
		"opml.topics":              {"Site", site},
	}
}
