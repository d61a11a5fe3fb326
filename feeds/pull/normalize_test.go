package pull_test

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"herald/feeds/pull"
	"herald/store"
)

var normNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	n := pull.NewNormalizer()
	london := time.FixedZone("BST", 3600)
	cases := []struct {
		name string
		in   pull.RawItem
		want store.Entry
		drop bool
	}{
		{
			name: "title is plain text, folded, without controls or bidi overrides",
			in: pull.RawItem{ID: "a", Title: "  <b>Fish</b> &amp;\tchips\x00\x07 \u0085 on\u202e the\n\n<i>pier</i>\u00a0 ",
				Link: "https://coastal.example.org/a"},
			want: store.Entry{GUID: "a", Title: "Fish & chips on the pier", Link: "https://coastal.example.org/a"},
		},
		{
			name: "title keeps text that only looks like markup when escaped",
			in:   pull.RawItem{ID: "b", Title: "Rates &lt;b&gt; and 3 < 4", Link: "https://coastal.example.org/b"},
			want: store.Entry{GUID: "b", Title: "Rates <b> and 3 < 4", Link: "https://coastal.example.org/b"},
		},
		{
			name: "script and style contents never reach a title",
			in:   pull.RawItem{ID: "c", Title: "Notice<script>alert(1)</script><style>b{}</style> issued", Link: "https://coastal.example.org/c"},
			want: store.Entry{GUID: "c", Title: "Notice issued", Link: "https://coastal.example.org/c"},
		},
		{
			name: "summary and body sanitised, relative URLs made absolute against the entry link",
			in: pull.RawItem{ID: "d", Title: "T", Link: "https://coastal.example.org/news/item",
				Summary: `<p onclick="x()" style="color:red">Read <a href="../maps/m1">the map</a></p><script>bad()</script><iframe src="https://x.example"></iframe>`,
				Content: `<form action="/f"><input name="q"></form><table><tr><td><img src="img/a.png" alt="A"></td></tr></table><a href="javascript:alert(1)">x</a><ul><li><a href="#s">s</a></li></ul>`},
			want: store.Entry{GUID: "d", Title: "T", Link: "https://coastal.example.org/news/item",
				Summary:      `<p>Read <a href="https://coastal.example.org/maps/m1" rel="nofollow">the map</a></p>`,
				Body:         `<table><tr><td><img src="https://coastal.example.org/news/img/a.png" alt="A"></td></tr></table>x<ul><li><a href="https://coastal.example.org/news/item#s" rel="nofollow">s</a></li></ul>`,
				PlainSummary: "Read the map", PlainBody: "x s"},
		},
		{
			name: "without an entry link, URLs resolve against the feed",
			in:   pull.RawItem{ID: "e", Title: "T", BaseURL: "https://broadband.example.org/news/", Summary: `<a href="x.html">x</a>`},
			want: store.Entry{GUID: "e", Title: "T", Summary: `<a href="https://broadband.example.org/news/x.html" rel="nofollow">x</a>`, PlainSummary: "x"},
		},
		{
			name: "relative entry link resolved; non-http links refused in favour of an alternate",
			in: pull.RawItem{ID: "f", Title: "T", Link: "javascript:alert(1)", Links: []string{"ftp://files.example.org/x", "/news/f"},
				BaseURL: "https://broadband.example.org/"},
			want: store.Entry{GUID: "f", Title: "T", Link: "https://broadband.example.org/news/f"},
		},
		{
			name: "plain-text summary escaped, paragraphs kept",
			in:   pull.RawItem{ID: "g", Title: "T", Summary: "Fees <rise> & fall.\n\nSecond paragraph.", SummaryText: true},
			want: store.Entry{GUID: "g", Title: "T", Summary: "<p>Fees &lt;rise&gt; &amp; fall.</p><p>Second paragraph.</p>",
				PlainSummary: "Fees <rise> & fall. Second paragraph."},
		},
		{
			name: "dates in UTC; a date over a day ahead is treated as missing",
			in: pull.RawItem{ID: "h", Title: "T", Published: time.Date(2026, 2, 27, 10, 0, 0, 0, london),
				Updated: normNow.Add(25 * time.Hour)},
			want: store.Entry{GUID: "h", Title: "T", Published: time.Date(2026, 2, 27, 9, 0, 0, 0, time.UTC)},
		},
		{
			name: "a date less than a day ahead is kept",
			in:   pull.RawItem{ID: "i", Title: "T", Published: normNow.Add(23 * time.Hour)},
			want: store.Entry{GUID: "i", Title: "T", Published: normNow.Add(23 * time.Hour)},
		},
		{
			name: "categories trimmed, cleaned and de-duplicated ignoring case",
			in:   pull.RawItem{ID: "j", Title: "T", Categories: []string{" Harbours ", "harbours", "", "Flood\x01 defence", "Fish &amp; chips"}},
			want: store.Entry{GUID: "j", Title: "T", Categories: []string{"Harbours", "Flood defence", "Fish & chips"}},
		},
		{
			name: "no id: the link keys the release",
			in:   pull.RawItem{Title: "T", Link: "https://coastal.example.org/k"},
			want: store.Entry{GUID: "https://coastal.example.org/k", Title: "T", Link: "https://coastal.example.org/k"},
		},
		{
			name: "invalid UTF-8 repaired everywhere",
			in:   pull.RawItem{ID: "l\xff", Title: "Caf\xe9 opens", Summary: "<p>bad \xfe\xff bytes</p>", Categories: []string{"a\xc3"}},
			want: store.Entry{GUID: "l\uFFFD", Title: "Caf\uFFFD opens", Summary: "<p>bad \uFFFD bytes</p>", PlainSummary: "bad \uFFFD bytes",
				Categories: []string{"a\uFFFD"}},
		},
		{
			name: "untitled item takes the start of its text as title",
			in:   pull.RawItem{ID: "m", Summary: "<p>Tide tables for <b>March</b> are out.</p>"},
			want: store.Entry{GUID: "m", Title: "Tide tables for March are out.", Summary: "<p>Tide tables for <b>March</b> are out.</p>",
				PlainSummary: "Tide tables for March are out."},
		},
		{
			name: "item with no title, link or content is dropped",
			in:   pull.RawItem{ID: "n", Title: " \x01 ", Summary: "<script>x()</script>", Link: "mailto:press@example.org"},
			drop: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := n.Normalize(tc.in, normNow)
			if ok == tc.drop {
				t.Fatalf("kept = %v, want %v (entry %+v)", ok, !tc.drop, got)
			}
			if tc.drop {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeLongTitleIsCut(t *testing.T) {
	n := pull.NewNormalizer()
	e, ok := n.Normalize(pull.RawItem{ID: "x", Title: strings.Repeat("é", 5000)}, normNow)
	if !ok {
		t.Fatal("dropped")
	}
	if got := utf8.RuneCountInString(e.Title); got != 1001 || !strings.HasSuffix(e.Title, "…") {
		t.Fatalf("title has %d runes (suffix %q), want 1000 and an ellipsis", got, e.Title[len(e.Title)-3:])
	}
}

func TestNormalizeFallbackGUIDIsStable(t *testing.T) {
	n := pull.NewNormalizer()
	pub := time.Date(2026, 2, 20, 9, 0, 0, 0, time.UTC)
	a, _ := n.Normalize(pull.RawItem{Title: "Tide tables", Published: pub, Summary: "v1"}, normNow)
	b, _ := n.Normalize(pull.RawItem{Title: "Tide tables", Published: pub, Summary: "v2, edited"}, normNow.Add(time.Hour))
	c, _ := n.Normalize(pull.RawItem{Title: "Tide tables", Published: pub.Add(24 * time.Hour)}, normNow)
	if a.GUID == "" || a.GUID != b.GUID {
		t.Fatalf("an edit changed the fallback id: %q then %q", a.GUID, b.GUID)
	}
	if a.GUID == c.GUID {
		t.Fatalf("two items with different dates share the id %q", a.GUID)
	}
	// A future date is clamped for storage but must not change the key
	// once it stops being in the future.
	future := normNow.Add(48 * time.Hour)
	d, _ := n.Normalize(pull.RawItem{Title: "Embargoed", Published: future}, normNow)
	e, _ := n.Normalize(pull.RawItem{Title: "Embargoed", Published: future}, future)
	if d.GUID != e.GUID {
		t.Fatalf("fallback id moved as a future date came due: %q then %q", d.GUID, e.GUID)
	}
	if !d.Published.IsZero() || !e.Published.Equal(future) {
		t.Fatalf("published = %v then %v, want zero then %v", d.Published, e.Published, future)
	}
}

// FuzzNormalize checks the normaliser's promises on arbitrary input.
func FuzzNormalize(f *testing.F) {
	f.Add("id-1", "<b>Title</b> &amp; more", "<p onclick=x()>Hi <script>alert(1)</script><a href=/x>x</a></p>", "<img src=a.png>", "https://example.org/a", "Cat", false)
	f.Add("", "\x00\x1f\u202e\u0085", "<scr<script>ipt>alert(1)</script>", "<SCRIPT SRC=//x></SCRIPT>", "javascript:alert(1)", "", true)
	f.Add("\xff", "Caf\xe9", "<p>\xfe</p>", "<svg><script>x</script></svg>", "/relative", "a\x00b", false)
	f.Add("x", "<<script>script>", "<a href=\"&#x6a;avascript:alert(1)\">x</a>", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "//host/x", "", false)
	n := pull.NewNormalizer()
	f.Fuzz(func(t *testing.T, id, title, summary, body, link, category string, plain bool) {
		e, ok := n.Normalize(pull.RawItem{
			ID: id, Title: title, Summary: summary, Content: body, Link: link, SummaryText: plain,
			Categories: []string{category}, BaseURL: "https://feeds.example.org/news/",
		}, normNow)
		if !ok {
			return
		}
		for field, s := range map[string]string{"guid": e.GUID, "title": e.Title, "summary": e.Summary, "body": e.Body, "link": e.Link} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s is not valid UTF-8: %q", field, s)
			}
		}
		if e.GUID == "" {
			t.Fatal("kept an entry without an id")
		}
		for _, s := range append([]string{e.Title}, e.Categories...) {
			if strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Fatalf("control character in %q", s)
			}
		}
		for _, s := range []string{e.Summary, e.Body} {
			l := strings.ToLower(s)
			if strings.Contains(l, "<script") || strings.Contains(l, "<iframe") || strings.Contains(l, "<style") || strings.Contains(l, " onerror=") {
				t.Fatalf("unsafe markup survived: %q", s)
			}
			for _, attr := range []string{` href="`, ` src="`, ` cite="`} {
				for rest := s; ; {
					i := strings.Index(rest, attr)
					if i < 0 {
						break
					}
					rest = rest[i+len(attr):]
					if !strings.HasPrefix(rest, "http://") && !strings.HasPrefix(rest, "https://") && !strings.HasPrefix(rest, "mailto:") {
						t.Fatalf("URL left relative or unsafe in %q", s)
					}
				}
			}
		}
		if e.Link != "" && !strings.HasPrefix(e.Link, "http://") && !strings.HasPrefix(e.Link, "https://") {
			t.Fatalf("link %q is not http(s)", e.Link)
		}
		if !e.Published.IsZero() && e.Published.Location() != time.UTC {
			t.Fatalf("published %v not in UTC", e.Published)
		}
	})
}
