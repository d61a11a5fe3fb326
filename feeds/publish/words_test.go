package publish_test

import (
	"strings"
	"testing"

	"herald/feeds/publish"
	"herald/templates"
	"herald/templates/templatestest"
)

// TestFeedWordsComeFromMessages: an override of messages/feeds.txt
// changes those words in every feed and in the OPML list; the blocks it
// leaves out keep their built-in words.
func TestFeedWordsComeFromMessages(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"messages/feeds.txt": `
{{define "feed.subtitle.department"}}Communiqués : {{.Department}}{{end}}
{{define "feed.title.topic"}}{{.Topic}} | {{.Site}}{{end}}
{{define "feed.ended.title"}}Ce flux est terminé{{end}}
{{define "feed.ended.summary"}}« {{.Topic}} » s’est arrêté le {{.Date}} & c’est tout.{{end}}
{{define "opml.title"}}Les flux de {{.Site}}{{end}}`})
	e := newRenderEnv(t, publish.Config{TemplatesFS: templates.FS(dir)})
	e.load("demo.json")
	if _, err := e.pub.RenderAll(e.ctx); err != nil {
		t.Fatal(err)
	}
	for path, wants := range map[string][]string{
		"/feeds/departments/home-office.atom": {"<subtitle>Communiqués : Home Office</subtitle>", "<title>Home Office – Herald</title>"},
		"/feeds/topics/budget.rss":            {"<title>Budget &#x26; spending | Herald</title>"},
		"/feeds/topics/harbours.atom": {"<title>Harbours | Herald</title>", "<title>Ce flux est terminé</title>",
			"« Harbours » s’est arrêté le 4 March 2026 &amp;amp; c’est tout."},
		"/feeds/all.atom": {"<subtitle>Every release published on Herald</subtitle>"},
		"/feeds.opml":     {"<title>Les flux de Herald</title>", `text="Everything on Herald"`},
	} {
		body := string(e.body(path))
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
}

// TestCheckFeedTemplates: a feed message that asks for a value feeds do
// not give is a problem naming the file, line and value; so is a block
// Herald never says. The built-in words pass.
func TestCheckFeedTemplates(t *testing.T) {
	if err := publish.CheckTemplates(templates.Embedded()); err != nil {
		t.Fatalf("built-in feed words: %v", err)
	}
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"unknown value", "{{define \"feed.subtitle.all\"}}\nNews from {{.Organisation}}{{end}}",
			[]string{"messages/feeds.txt:2:", `"Organisation"`, "feed.subtitle.all"}},
		{"unknown block", `{{define "feed.subtitel.all"}}News{{end}}`,
			[]string{"messages/feeds.txt", `"feed.subtitel.all"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := templatestest.Dir(t, map[string]string{"messages/feeds.txt": tc.file})
			err := publish.CheckTemplates(templates.FS(dir))
			if err == nil {
				t.Fatal("no problem")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problem %q lacks %q", err, w)
				}
			}
		})
	}
}
