package pull_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"herald/feeds/pull"
	"herald/store"
)

// The ingest golden files have their own flag so they can be refreshed
// without touching the rendered-feed goldens of this package.
var pullUpdateGolden = flag.Bool("update-pull", false, "rewrite testdata/golden from the current parser and normaliser")

func pullFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseFeedGolden parses each upstream format and compares the cleaned
// entries with testdata/golden (go test ./feeds/pull -run ParseFeedGolden -update-pull).
func TestParseFeedGolden(t *testing.T) {
	cases := []struct {
		file, contentType, format, wantFormat string
		items                                 int // items in the document
	}{
		{"atom.xml", "application/atom+xml", store.FormatAuto, store.FormatAtom, 3},
		{"rss2.xml", "application/rss+xml; charset=utf-8", store.FormatAuto, store.FormatRSS, 3},
		{"rss1.rdf", "application/rdf+xml", store.FormatAuto, store.FormatRSS, 2},
		{"jsonfeed.json", "application/feed+json", store.FormatAuto, store.FormatJSONFeed, 3},
		{"govuk-search.json", "application/json", store.FormatAuto, store.FormatGovUKSearch, 3},
		{"atom.xml", "text/xml", store.FormatAtom, store.FormatAtom, 3},
		{"jsonfeed.json", "application/json", store.FormatJSONFeed, store.FormatJSONFeed, 3},
		{"govuk-search.json", "application/json", store.FormatGovUKSearch, store.FormatGovUKSearch, 3},
		{"missing-fields.xml", "text/xml", store.FormatAuto, store.FormatRSS, 6},
		{"duplicate-ids.xml", "text/xml", store.FormatRSS, store.FormatRSS, 2},
	}
	n := pull.NewNormalizer()
	for _, tc := range cases {
		t.Run(tc.file+"/"+tc.format, func(t *testing.T) {
			feedURL := "https://feeds.example.org/" + tc.file
			if strings.HasPrefix(tc.file, "govuk") {
				// Search API links are relative to the API's site.
				feedURL = "https://www.gov.uk/api/search.json?filter_organisations=example"
			}
			pf, err := pull.ParseFeed(pullFixture(t, tc.file), tc.contentType, tc.format, feedURL)
			if err != nil {
				t.Fatal(err)
			}
			if pf.Format != tc.wantFormat {
				t.Errorf("format = %q, want %q", pf.Format, tc.wantFormat)
			}
			if len(pf.Items) != tc.items {
				t.Fatalf("%d items, want %d", len(pf.Items), tc.items)
			}
			type kept struct {
				Kept  bool
				Entry store.Entry
			}
			var got []kept
			for _, it := range pf.Items {
				e, ok := n.Normalize(it, normNow)
				got = append(got, kept{ok, e})
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", strings.ReplaceAll(tc.file, ".", "_")+".json")
			if *pullUpdateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-pull to create it)", err)
			}
			if diff := cmp.Diff(strings.TrimSpace(string(want)), string(out)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestParseFeedCharsets(t *testing.T) {
	const title = "Café du port : réouverture après travaux"
	cases := []struct {
		name, file, contentType, summary string
	}{
		{"ISO-8859-1 declared in the XML", "latin1.xml", "text/xml", "Le café rouvre ses portes à l'été."},
		{"ISO-8859-1 in the XML, header says otherwise", "latin1.xml", "application/rss+xml; charset=ISO-8859-1", "Le café rouvre ses portes à l'été."},
		{"windows-1252 named only by the header", "windows1252.xml", "text/xml; charset=windows-1252", "Le café rouvre ses portes à l’été."},
		{"UTF-16 with a byte-order mark", "utf16.xml", "text/xml", "Le café rouvre ses portes à l’été."},
		{"UTF-8 wrongly declared as ISO-8859-1", "utf8-declared-latin1.xml", "text/xml; charset=iso-8859-1", "Le café rouvre ses portes à l’été."},
	}
	n := pull.NewNormalizer()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pf, err := pull.ParseFeed(pullFixture(t, tc.file), tc.contentType, store.FormatAuto, "https://cotes.example.org/rss")
			if err != nil {
				t.Fatal(err)
			}
			if pf.Title != "Bureau des Affaires Côtières" {
				t.Errorf("feed title = %q", pf.Title)
			}
			if len(pf.Items) != 1 {
				t.Fatalf("%d items, want 1", len(pf.Items))
			}
			e, _ := n.Normalize(pf.Items[0], normNow)
			if e.Title != title || e.Summary != tc.summary {
				t.Errorf("got %q / %q, want %q / %q", e.Title, e.Summary, title, tc.summary)
			}
		})
	}
}

func TestParseFeedRefusesWhatIsNotAFeed(t *testing.T) {
	cases := []struct {
		name, body, contentType, format, wantErr string
	}{
		{"HTML error page", string(pullFixture(t, "html-error.html")), "text/html; charset=utf-8", store.FormatAuto, "not a feed: got an HTML page"},
		{"HTML without a doctype, served as XML", "\n  <html><head><title>Login</title></head><body><form></form></body></html>", "application/rss+xml", store.FormatAuto, "not a feed: got an HTML page"},
		{"HTML page for a source declared as Atom", "<!doctype html><p>Moved", "text/html", store.FormatAtom, "not a feed: got an HTML page"},
		{"empty body", " \n\t", "application/rss+xml", store.FormatAuto, "not a feed: the body is empty"},
		{"plain text", "Service temporarily unavailable", "text/plain", store.FormatAuto, "not a feed: the body is text/plain (31 bytes), neither XML nor JSON"},
		{"XML that is not a feed", `<?xml version="1.0"?><urlset><url><loc>https://x.example/</loc></url></urlset>`, "text/xml", store.FormatAuto, "the XML root element is not <feed>, <rss> or <rdf:RDF>"},
		{"JSON that is not a feed", `{"status": "ok", "data": []}`, "application/json", store.FormatAuto, "neither a JSON Feed nor a GOV.UK search response"},
		{"malformed JSON", `{"version": "https://jsonfeed.org/version/1.1", "items": [`, "application/feed+json", store.FormatAuto, "malformed JSON"},
		{"JSON Feed declared as GOV.UK search", string(pullFixture(t, "jsonfeed.json")), "application/json", store.FormatGovUKSearch, "has no results list"},
		{"XML declared as JSON Feed", string(pullFixture(t, "rss2.xml")), "text/xml", store.FormatJSONFeed, "expected a JSON Feed"},
		{"unknown format", string(pullFixture(t, "rss2.xml")), "text/xml", "csv", `unknown feed format "csv"`},
		{"malformed XML", string(pullFixture(t, "malformed.xml")), "text/xml", store.FormatAuto, "malformed RSS feed: XML syntax error"},
		{"truncated XML", string(pullFixture(t, "truncated.xml")), "text/xml", store.FormatAuto, "unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pf, err := pull.ParseFeed([]byte(tc.body), tc.contentType, tc.format, "https://feeds.example.org/x")
			if err == nil {
				t.Fatalf("parsed %d items, want error %q", len(pf.Items), tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// A pull's error is stored and shown to admins; pointed at a service that
// is not a feed, it must say what went wrong without reading the service's
// answer out.
func TestParseFeedErrorsQuoteNothingOfTheBody(t *testing.T) {
	const secret = "s3cr3t"
	bodies := []struct{ name, body, format string }{
		{"plain text", "token=" + secret, store.FormatAuto},
		{"Prometheus metrics", "# HELP " + secret + "_total Things.\n" + secret + "_total 4\n", store.FormatAuto},
		{"XML root", "<" + secret + "><a/></" + secret + ">", store.FormatAuto},
		{"XML cut short", "<rss><channel><" + secret + " x='", store.FormatAuto},
		{"JSON syntax", `{"items": [` + secret + `]}`, store.FormatAuto},
		{"JSON type", `{"version": "https://jsonfeed.org/version/1", "items": "` + secret + `"}`, store.FormatJSONFeed},
		{"GOV.UK type", `{"results": "` + secret + `"}`, store.FormatGovUKSearch},
		{"JSON declared as Atom", `{"` + secret + `": 1}`, store.FormatAtom},
		{"text declared as JSON Feed", secret, store.FormatJSONFeed},
	}
	for _, tc := range bodies {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pull.ParseFeed([]byte(tc.body), "text/plain", tc.format, "https://feeds.example.org/x")
			if err == nil {
				t.Fatal("parsed without error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
}

// TestParseFeedDoesNotExpandEntities: Go's XML decoder neither expands
// entities declared in a DTD nor resolves external ones, so hostile
// documents end as a best-effort feed whose references stay literal.
func TestParseFeedDoesNotExpandEntities(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("HERALD-XXE-CANARY-7f3a"), 0o600); err != nil {
		t.Fatal(err)
	}
	xxe := strings.ReplaceAll(string(pullFixture(t, "xxe.xml.tmpl")), "{{SECRET}}", secret)
	n := pull.NewNormalizer()
	for name, body := range map[string]string{"billion laughs": string(pullFixture(t, "billion-laughs.xml")), "XXE": xxe} {
		t.Run(name, func(t *testing.T) {
			pf, err := pull.ParseFeed([]byte(body), "text/xml", store.FormatAuto, "https://feeds.example.org/x")
			if err != nil {
				t.Fatal(err)
			}
			if len(pf.Items) != 1 {
				t.Fatalf("%d items, want 1", len(pf.Items))
			}
			e, _ := n.Normalize(pf.Items[0], normNow)
			all := e.Title + e.Summary + e.Body + pf.Title
			if strings.Contains(all, "lollol") || strings.Contains(all, "HERALD-XXE-CANARY") || len(all) > 200 {
				t.Fatalf("entity expanded: %q", all)
			}
			if !strings.Contains(e.Title, "&lol9;") && !strings.Contains(e.Title, "&xxe;") {
				t.Fatalf("title %q lost its literal entity reference", e.Title)
			}
		})
	}
}

// TestGovUKSearchLinksFollowTheAPISite: relative links resolve against the
// site serving the search API, which is www.gov.uk for GOV.UK itself.
func TestGovUKSearchLinksFollowTheAPISite(t *testing.T) {
	body := []byte(`{"results":[{"title":"Bridge reopens","link":"/government/news/bridge-reopens","public_timestamp":"2026-03-02T09:00:00Z"}]}`)
	for feedURL, want := range map[string]string{
		"https://www.gov.uk/api/search.json?filter_organisations=x": "https://www.gov.uk/government/news/bridge-reopens",
		"http://127.0.0.1:8999/api/search.json":                     "http://127.0.0.1:8999/government/news/bridge-reopens",
	} {
		pf, err := pull.ParseFeed(body, "application/json", store.FormatGovUKSearch, feedURL)
		if err != nil {
			t.Fatal(err)
		}
		if got := pf.Items[0].Link; got != want {
			t.Errorf("from %s: link = %q, want %q", feedURL, got, want)
		}
	}
}

// TestGovUKDocumentTypeLabels: GOV.UK document types become the labels
// GOV.UK shows, the form other sources give their categories in.
func TestGovUKDocumentTypeLabels(t *testing.T) {
	for docType, want := range map[string]string{
		"press_release":       "Press release",
		"news_story":          "News story",
		"speech":              "Speech",
		"foi_release":         "FOI release",
		"official_statistics": "Official statistics",
		"aaib_report":         "AAIB report",
		"Transparency":        "Transparency",
	} {
		body := `{"results": [{"title": "T", "link": "/government/news/t", "public_timestamp": "2026-02-26T15:30:00Z",
			"content_store_document_type": "` + docType + `"}]}`
		pf, err := pull.ParseFeed([]byte(body), "application/json", store.FormatGovUKSearch, "https://www.gov.uk/api/search.json")
		if err != nil {
			t.Fatal(err)
		}
		if got := pf.Items[0].Categories; len(got) != 1 || got[0] != want || pf.Items[0].DocumentType != docType {
			t.Errorf("%s: categories %q, document type %q; want [%q]", docType, got, pf.Items[0].DocumentType, want)
		}
	}
}
