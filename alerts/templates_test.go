package alerts_test

import (
	"bytes"
	"errors"
	"html"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"herald/alerts"
	"herald/alerts/alertstest"
	"herald/store"
	"herald/templates"
	"herald/templates/templatestest"
)

// A broken override is refused before any email is composed, with a
// one-line problem naming the override's file and line and what is wrong.
func TestCheckTemplatesRefusesBrokenOverrides(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// want are parts of the one problem: the file is always the first.
		want []string
	}{
		{"unknown field", map[string]string{"email/confirm.txt": "{{define \"subject\"}}Confirm\n{{.Nope}}{{end}}\n{{define \"content\"}}x{{end}}"},
			[]string{"email/confirm.txt:2:", "can't evaluate field Nope", "sample confirm email"}},
		{"unknown field in a digest entry", map[string]string{"email/digest.html": templatestest.Changed(t, "email/digest.html", "{{.Title}}", "{{.Headline}}")},
			[]string{"email/digest.html:2:", "can't evaluate field Headline"}},
		{"unknown field on one branch", map[string]string{"email/welcome.txt": templatestest.Changed(t, "email/welcome.txt", "instead of {{.OldFrequencyPhrase}}", "instead of {{.OldFrequency}}")},
			[]string{"email/welcome.txt:", "can't evaluate field OldFrequency", "with a changed frequency"}},
		{"no subject", map[string]string{"email/welcome.txt": "{{define \"content\"}}Welcome{{end}}"},
			[]string{"email/welcome.txt: defines no \"subject\" block"}},
		{"does not parse", map[string]string{"email/immediate.html": "{{define \"content\"}}\n\n{{if}}{{end}}"},
			[]string{"email/immediate.html:3:", "missing value for if"}},
		{"not UTF-8", map[string]string{"email/manage.txt": "{{define \"subject\"}}Manage{{end}}\n{{define \"content\"}}Caf\xe9{{end}}"},
			[]string{"email/manage.txt:2: is not valid UTF-8"}},
		{"a message with a value it is not given", map[string]string{"messages/email.txt": "{{define \"email.unsubscribe.one\"}}\nLeave {{.Topic}}{{end}}"},
			[]string{"messages/email.txt:2:", `map has no entry for key "Topic"`, "email.unsubscribe.one"}},
		{"a message Herald never says", map[string]string{"messages/email.txt": `{{define "email.unsubscribe.onne"}}Leave{{end}}`},
			[]string{"messages/email.txt: defines \"email.unsubscribe.onne\", a message Herald never says"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := templatestest.Dir(t, tc.files)
			cfg := alerts.Config{BaseURL: subBase, TemplatesFS: templates.FS(dir)}
			err := alerts.CheckTemplates(cfg)
			if err == nil {
				t.Fatal("the broken override was accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("more than one problem, or one on several lines:\n%s", msg)
			}
			if !strings.HasPrefix(msg, dir+string(filepath.Separator)) {
				t.Errorf("the problem does not start with the override's path %s:\n%s", dir, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the problem lacks %q:\n%s", w, msg)
				}
			}
			// The service refuses to start on it the same way.
			f := newSubFixture(t, nil)
			if _, err := alerts.NewService(f.db, cfg, f.keys, nil, nil); err == nil || err.Error() != msg {
				t.Errorf("NewService: %v, want the same problem", err)
			}
		})
	}
}

// Every problem is told at once.
func TestCheckTemplatesTellsEveryProblem(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{
		"email/confirm.txt": "{{define \"subject\"}}{{.Nope}}{{end}}{{define \"content\"}}x{{end}}",
		"email/manage.html": "{{define \"content\"}}{{.Nope}}{{end}}",
		"email/welcome.txt": "{{define \"content\"}}x{{end}}",
	})
	err := alerts.CheckTemplates(alerts.Config{BaseURL: subBase, TemplatesFS: templates.FS(dir)})
	var p templates.Problems
	if !errors.As(err, &p) || len(p) != 3 {
		t.Fatalf("%v, want three problems", err)
	}
	for i, file := range []string{"email/welcome.txt", "email/confirm.txt", "email/manage.html"} {
		if !strings.Contains(err.Error(), filepath.Join(dir, file)) {
			t.Errorf("problem %d: no %s in\n%s", i, file, err)
		}
	}
}

// The built-in templates pass, with and without branding.
func TestCheckTemplatesBuiltIn(t *testing.T) {
	for _, b := range []templates.Brand{{}, {Name: "Ministry of Examples", LogoURL: "cid:" + templates.LogoCID, Colour: "#1d4f2a",
		Footer: "1 Example Street, London", PrivacyURL: "https://example.org/privacy", Contact: "press@example.org"}} {
		if err := alerts.CheckTemplates(alerts.Config{BaseURL: subBase, Brand: b}); err != nil {
			t.Errorf("brand %+v: %v", b, err)
		}
	}
}

// An override replaces its file; a messages override replaces the blocks
// it defines and keeps the built-in words of the others.
func TestOverridesLayerOverBuiltIns(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{
		"email/immediate.txt": templatestest.Changed(t, "email/immediate.txt", "{{define \"content\"}}{{with .Release}}",
			"{{define \"content\"}}{{with .Release}}\nNews from the Ministry:"),
		"messages/email.txt": `{{define "email.unsubscribe.one"}}Stop emails about {{.Name}}{{end}}`,
	})
	f := newSubFixture(t, func(c *alerts.Config) { c.TemplatesFS = templates.FS(dir) })
	f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	f.pull(f.src, traffickingEntry("r1", "Valmora pledges to tackle human trafficking"))
	if _, err := f.svc.ProcessPending(f.ctx); err != nil {
		t.Fatal(err)
	}
	rows := f.outbox(alertstest.Kind(store.KindImmediate))
	if len(rows) != 1 {
		t.Fatalf("%d alerts", len(rows))
	}
	m := rows[0]
	for _, want := range []string{"News from the Ministry:", "Stop emails about Human trafficking:", "Manage your subscriptions:"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, m.Text)
		}
	}
	// The HTML part is still the built-in one, with the overridden words
	// of the footer and the built-in ones of the rest.
	if !strings.Contains(m.HTML, "Stop emails about Human trafficking</a>") || !strings.Contains(m.HTML, "Read on Herald") {
		t.Errorf("HTML part:\n%s", m.HTML)
	}
}

// A template that fails only on some release's data (the samples pass it)
// leaves that release pending, lets the others go, and is told once
// however many runs meet it.
func TestTemplateFailureAtSendTimeIsToldOnce(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{
		"email/immediate.txt": templatestest.Changed(t, "email/immediate.txt", "{{define \"content\"}}{{with .Release}}",
			"{{define \"content\"}}{{with .Release}}{{if eq .Title \"Trafficking breaks the template\"}}{{index .Paragraphs 9}}{{end}}"),
	})
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	f := newSubFixture(t, nil)
	svc, err := alerts.NewService(f.db, alerts.Config{BaseURL: subBase, Location: subLondon, TemplatesFS: templates.FS(dir)}, f.keys,
		slog.New(slog.NewTextHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	f.subscribe("ben@example.org", store.Target{TopicID: f.traffick.ID}, "immediately")
	bad := f.pull(f.src, traffickingEntry("bad", "Trafficking breaks the template")).NewIDs[0]
	f.pull(f.src, traffickingEntry("good", "Valmora pledges to tackle human trafficking"))
	for run := range 3 {
		n, err := svc.ProcessPending(f.ctx)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if want := map[int]int{0: 2}[run]; n != want {
			t.Errorf("run %d queued %d, want %d", run, n, want)
		}
	}
	rows := f.outbox(alertstest.Kind(store.KindImmediate))
	if len(rows) != 2 || strings.Contains(rows[0].Subject, "breaks") || strings.Contains(rows[1].Subject, "breaks") {
		t.Fatalf("outbox: %+v", rows)
	}
	pending, err := f.db.PendingAlerts(f.ctx, 0, 10)
	if err != nil || len(pending) != 1 || pending[0].ID != bad {
		t.Fatalf("pending alerts %+v (%v), want the release the template failed on; logs:\n%s", pending, err, logs.String())
	}
	if n := strings.Count(logs.String(), "email template failing"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "error calling index") || strings.Contains(logs.String(), "ana@example.org") {
		t.Errorf("log line:\n%s", logs.String())
	}
	if failing := gaugeOf(t, reg, "herald_email_template_failing", "immediate"); failing != 1 {
		t.Errorf("herald_email_template_failing{template=immediate} = %v, want 1", failing)
	}
}

// gaugeOf reads the gauge name{template=template} of reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, template string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	isTemplate := func(m *dto.Metric) bool {
		return slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "template" && l.GetValue() == template })
	}
	if i := slices.IndexFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == name }); i >= 0 {
		if j := slices.IndexFunc(mfs[i].GetMetric(), isTemplate); j >= 0 {
			return mfs[i].GetMetric()[j].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{template=%q}", name, template)
	return 0
}

var (
	htmlTag    = regexp.MustCompile(`<[a-zA-Z/!][^>]*>`)
	htmlEntity = regexp.MustCompile(`&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);`)
	hrefs      = regexp.MustCompile(`href="(https?://[^"]+)"`)
)

// The text part of every kind of email reads on its own: no HTML tags or
// entities left over, every link of the HTML part there too, and lines a
// mail client need not wrap (but for a long link, which stays whole).
func TestTextPartsReadOnTheirOwn(t *testing.T) {
	f := newSubFixture(t, func(c *alerts.Config) {
		c.Brand = templates.Brand{Name: "Ministry of Examples & Co", Footer: "Ministry of Examples & Co, 1 Example Street, London SW1A 1AA",
			PrivacyURL: "https://ministry.example.org/privacy?a=1&b=2", Contact: "press@ministry.example.org"}
	})
	e := traffickingEntry("r1", "Valmora & Estland pledge joint patrols against human trafficking in a title long enough to need wrapping in a subject line")
	id := f.pull(f.src, e).NewIDs[0]
	for _, kind := range alerts.EmailKinds() {
		for _, req := range []alerts.PreviewRequest{{Kind: kind}, {Kind: kind, Release: id, Topic: "human-trafficking"}} {
			m, err := f.svc.PreviewEmail(f.ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if tag := htmlTag.FindString(m.Text); tag != "" {
				t.Errorf("%s: the text part has the tag %s:\n%s", kind, tag, m.Text)
			}
			if ent := htmlEntity.FindString(m.Text); ent != "" {
				t.Errorf("%s: the text part has the entity %s:\n%s", kind, ent, m.Text)
			}
			for _, h := range hrefs.FindAllStringSubmatch(m.HTML, -1) {
				link := html.UnescapeString(h[1])
				if !strings.Contains(m.Text, link) {
					t.Errorf("%s: the text part lacks the link %s", kind, link)
				}
			}
			if !strings.Contains(m.Text, "https://ministry.example.org/privacy?a=1&b=2") || !strings.Contains(m.Text, "Ministry of Examples & Co, 1 Example") {
				t.Errorf("%s: branding in the text part:\n%s", kind, m.Text)
			}
			for i, line := range strings.Split(m.Text, "\n") {
				if utf8.RuneCountInString(line) > 76 && strings.Contains(line, " ") {
					t.Errorf("%s: line %d has %d characters:\n%s", kind, i+1, utf8.RuneCountInString(line), line)
				}
			}
			if strings.Count(m.Text, "http") == 0 {
				t.Errorf("%s: no link in the text part", kind)
			}
		}
	}
}

// The worked example of docs/templates.md does what it says: the digest
// opens with the organisation's words and ends with its line and address.
func TestTemplatesDocWorkedExample(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{
		"messages/email.txt": `{{define "email.why.digest"}}You get this digest because you asked {{.Site}} for news {{.FrequencyPhrase}}. Reply to this email to reach the press office.{{end}}`,
		"email/digest.txt": templatestest.Changed(t, "email/digest.txt", "Your {{.Frequency}} digest for {{.Period}}",
			`Good morning. Here is what {{.Brand.Name}} published {{if eq .Frequency "weekly"}}in {{else}}on {{end}}{{.Period}}.`),
	})
	f := newSubFixture(t, func(c *alerts.Config) {
		c.TemplatesFS = templates.FS(dir)
		c.Brand = templates.Brand{Name: "Department for Examples", Footer: "Department for Examples, 1 Example Street, London SW1A 1AA",
			PrivacyURL: "https://www.example.gov/privacy"}
	})
	f.subscribe("ana@example.org", store.Target{TopicID: f.traffick.ID}, "daily")
	f.runDue("daily", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) // the first run only sets the periods going
	f.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	f.pull(f.src, traffickingEntry("r1", "Joint patrols against trafficking"))
	f.runDue("daily", time.Date(2026, 3, 3, 8, 30, 0, 0, time.UTC))
	rows := f.outbox(alertstest.Kind(store.KindDigest))
	if len(rows) != 1 {
		t.Fatalf("%d digests", len(rows))
	}
	for _, want := range []string{
		"Good morning. Here is what Department for Examples published on 3 March 2026.\n\n1 new release.",
		"You get this digest because you asked Herald for news once a day. Reply to this email to reach the press office.",
		"Department for Examples, 1 Example Street, London SW1A 1AA\n\nPrivacy policy:\nhttps://www.example.gov/privacy\n",
	} {
		// The text part wraps long lines: compare the words.
		if !strings.Contains(strings.Join(strings.Fields(rows[0].Text), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("the digest lacks %q:\n%s", want, rows[0].Text)
		}
	}
}
