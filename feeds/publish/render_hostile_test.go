package publish_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"herald/feeds/publish"
	"herald/feeds/rules"
	"herald/store"
)

// renderHostile stores releases written to break feeds: control
// characters and invalid UTF-8, CDATA terminators, script, event handlers
// and javascript: links, right-to-left text and bidi overrides, emoji, a
// 5,000-character title, empty summaries, and the same in names of
// departments, topics and categories.
func renderHostile(t testing.TB) *renderEnv {
	e := newRenderEnv(t, publish.Config{})
	ctx := e.ctx
	if _, err := e.db.UpsertDepartment(ctx, store.Department{Slug: "trade", Name: "Trade & <Industry> \u202eevil\u202c \x07"}); err != nil {
		t.Fatal(err)
	}
	src, err := e.db.UpsertSource(ctx, store.Source{Name: "trade", URL: "https://news.example.org/trade.atom", DepartmentSlug: "trade", Format: "auto", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	e.sources["trade"] = src
	if _, err := e.db.UpsertTopic(ctx, store.Topic{Slug: "scripts", Title: "<script>alert('topic')</script> & more",
		Description: "Bell \x07 and ]]> in a description", Rule: store.Rule{Departments: []string{"trade"}}}, &rules.Topics{}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("Tariff schedule amended ", 250)[:5000]
	e.now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e.pull("trade",
		store.Entry{GUID: "ctl", Link: "https://news.example.org/trade/ctl",
			Title:     "Controls\x00\x01\x02\x0b\x0c\x1b[31m red\x7f \u0085next \ufffe\uffff \xff\xfe bad bytes \ufffd\ufdd0 end",
			Summary:   "<p>NUL\x00 BEL\x07 ESC\x1b C1\u0080\u009f and \xc3\x28 invalid</p>",
			Body:      "<p>Form feed\x0c and vertical tab\x0b in the body.</p>",
			Published: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "cdata", Link: "https://news.example.org/trade/cdata",
			Title:     "CDATA ]]> end <![CDATA[ start",
			Summary:   "<p>Summary with ]]> and <![CDATA[ inside</p>",
			Body:      "<p>Body ]]><script>alert('out of cdata')</script> &lt;/content:encoded&gt; ]]&gt; text</p><![CDATA[ raw ]]>",
			Published: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "script", Link: "javascript:alert('link')",
			Title:      "<script>alert('title')</script> <b>bold</b> & <i>co</i>",
			Summary:    `<script>alert(1)</script><p onclick="alert(2)" style="background:url(javascript:alert(3))">Click <a href="javascript:alert(4)">here</a> or <a href="/relative/page">there</a></p><img src=x onerror=alert(5)><iframe src="https://evil.example.org/"></iframe>`,
			Body:       `<style>body{display:none}</style><form action="/steal"><input name=q><button>Go</button></form><object data="x.swf"></object><svg onload="alert(6)"><circle r="1"/></svg><math><mi>x</mi></math><p>Text <unknown-tag>kept</unknown-tag> <font color=red>font</font></p><table><tr><td colspan=2>cell</td>stray</tr></table><p>unclosed <b>bold <i>both</p> after`,
			Categories: []string{"<b>bold</b>", "a & b", "", "  ", "bell\x07"},
			Published:  time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "rtl", Link: "https://news.example.org/trade/عربي?q=<x>&y=\"z\"",
			Title:      "إعلان الميزانية — הודעה חדשה \u202eRTL override\u202c \u2067isolate\u2069",
			Summary:    `<p dir="rtl" lang="ar">نص عربي مع <a href="https://news.example.org/ar">رابط</a></p><p dir="sideways">bad dir</p>`,
			Published:  time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
			Categories: []string{"عربي"}},
		store.Entry{GUID: "emoji", Link: "https://news.example.org/trade/emoji",
			Title:     "Ferry 🚢 flags 🇬🇧🇫🇷 family 👨‍👩‍👧 math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
			Summary:   "<p>🎉 Emoji in 𝓼𝓾𝓶𝓶𝓪𝓻𝔂</p>",
			Published: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "long", Link: "https://news.example.org/trade/long",
			Title: long, Published: time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "empty", Link: "", Title: "   ", Summary: "", Body: "",
			Published: time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)},
		store.Entry{GUID: "whitespace", Link: "https://news.example.org/trade/ws", Title: "Only whitespace summary",
			Summary: "<p>  </p>\n\t", Body: "<div><br></div>", Published: time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)},
	)
	if _, err := e.pub.RenderAll(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

var renderHostilePaths = []string{
	"/feeds/all.atom", "/feeds/all.rss", "/feeds/all.json",
	"/feeds/departments/trade.atom", "/feeds/departments/trade.rss", "/feeds/departments/trade.json",
	"/feeds/topics/scripts.atom", "/feeds/topics/scripts.rss", "/feeds/topics/scripts.json",
	"/feeds.opml",
}

// TestRenderHostileGolden keeps the hostile documents as golden files too,
// so they can be fed to the W3C validator offline.
func TestRenderHostileGolden(t *testing.T) {
	e := renderHostile(t)
	for _, path := range renderHostilePaths {
		t.Run(path, func(t *testing.T) {
			renderGolden(t, "hostile_"+renderGoldenName(path), e.body(path))
		})
	}
}

// renderXMLChar reports whether r may appear in an XML 1.0 document (and
// is not one of the discouraged characters the renderer drops).
func renderXMLChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffd, r == 0xfffe, r == 0xffff:
		return false
	}
	return r <= 0x10ffff
}

func TestRenderHostile(t *testing.T) {
	e := renderHostile(t)
	docs := map[string][]byte{}
	for _, path := range renderHostilePaths {
		docs[path] = e.body(path)
	}
	for path, b := range docs {
		if !utf8.Valid(b) {
			t.Errorf("%s: not valid UTF-8", path)
		}
		for i, r := range string(b) {
			if !renderXMLChar(r) {
				t.Errorf("%s: character %U at byte %d", path, r, i)
				break
			}
		}
		if strings.HasSuffix(path, ".json") {
			if !json.Valid(b) {
				t.Errorf("%s: not valid JSON", path)
			}
			continue
		}
		// Well-formed XML, all the way through.
		dec := xml.NewDecoder(bytes.NewReader(b))
		for {
			_, err := dec.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: not well-formed: %v", path, err)
				}
				break
			}
		}
	}

	// What readers see once the XML is decoded: no script, no event
	// handler, no javascript: URL, no relative link; the text survives.
	var rss struct {
		Items []struct {
			Title       string `xml:"title"`
			Description string `xml:"description"`
			Content     string `xml:"http://purl.org/rss/1.0/modules/content/ encoded"`
			Link        string `xml:"link"`
		} `xml:"channel>item"`
	}
	if err := xml.Unmarshal(docs["/feeds/all.rss"], &rss); err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 8 {
		t.Fatalf("all.rss has %d items, want 8", len(rss.Items))
	}
	var html strings.Builder
	for _, it := range rss.Items {
		html.WriteString(it.Description + "\n" + it.Content + "\n")
	}
	decoded := html.String()
	for _, bad := range []string{"<script", "onclick", "onerror", "onload", "javascript:", "<iframe", "<style", "<form",
		"<input", "<object", "<svg", "<math", `href="/`, "style="} {
		if strings.Contains(strings.ToLower(decoded), bad) {
			t.Errorf("rendered HTML still contains %q", bad)
		}
	}
	// A relative link whose release has no usable original article cannot
	// be resolved: its text stays, the link goes.
	if strings.Contains(decoded, "/relative/page") || !strings.Contains(decoded, "there") {
		t.Error("relative link without a base: want its text kept and its href dropped")
	}
	for _, want := range []string{"Body ]]&gt;", "cell", "kept", "نص عربي", `href="https://news.example.org/ar"`} {
		if !strings.Contains(decoded, want) {
			t.Errorf("rendered HTML lost %q", want)
		}
	}
	byTitle := map[string]bool{}
	for _, it := range rss.Items {
		byTitle[it.Title] = true
	}
	for _, want := range []string{
		"CDATA ]]&gt; end &lt;![CDATA[ start",
		"&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt; &lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;co&lt;/i&gt;",
		"Controls[31m red next   bad bytes  end",
		"Untitled release",
	} {
		if !byTitle[want] {
			t.Errorf("no RSS item titled %q", want)
		}
	}

	var jf struct {
		Items []struct {
			Title       string  `json:"title"`
			Summary     string  `json:"summary"`
			ContentHTML *string `json:"content_html"`
			ExternalURL string  `json:"external_url"`
		} `json:"items"`
	}
	if err := json.Unmarshal(docs["/feeds/all.json"], &jf); err != nil {
		t.Fatal(err)
	}
	titles := map[string]bool{}
	for _, it := range jf.Items {
		titles[it.Title] = true
		if it.ContentHTML == nil || it.Summary == "" {
			t.Errorf("item %q: content_html %v, summary %q", it.Title, it.ContentHTML, it.Summary)
		}
		if strings.HasPrefix(it.ExternalURL, "javascript") {
			t.Errorf("item %q links %q", it.Title, it.ExternalURL)
		}
	}
	long := strings.Repeat("Tariff schedule amended ", 250)[:5000]
	for _, want := range []string{"<script>alert('title')</script> <b>bold</b> & <i>co</i>", long,
		"Ferry 🚢 flags 🇬🇧🇫🇷 family 👨‍👩‍👧 math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"} {
		if !titles[want] {
			t.Errorf("JSON lost the title %.60q", want)
		}
	}
	for path, body := range docs {
		if strings.HasSuffix(path, ".json") {
			t.Run(path, func(t *testing.T) { renderCheckJSONFeed(t, body) })
		}
	}
	feedparserDocs := map[string][]byte{}
	for path, body := range docs {
		if strings.HasSuffix(path, ".atom") || strings.HasSuffix(path, ".rss") {
			feedparserDocs[path] = body
		}
	}
	renderFeedparser(t, feedparserDocs)
}
