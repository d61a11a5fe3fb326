package text_test

import (
	"net/url"
	"testing"

	"herald/templates/text"
)

func TestForFeed(t *testing.T) {
	s := text.NewSanitizer()
	base, _ := url.Parse("https://news.example.org/ho/ferry-checks")
	tests := []struct {
		name, in    string
		base        *url.URL
		frag, plain string
	}{
		{"plain text escaped", "Fish & chips", base, "Fish &amp; chips", "Fish & chips"},
		{"markup balanced", "<p>unclosed <b>bold", base, "<p>unclosed <b>bold</b></p>", "unclosed bold"},
		{"elements readers do not show unwrapped", "<p>a <big>b</big> <center>c</center></p>", base, "<p>a b c</p>", "a b c"},
		{"foreign content dropped", "<svg><title>x</title></svg>y", base, "y", "y"},
		{"only lang, dir, title and the element's own attributes",
			`<p class="x" id="y" lang="cy" title="t">a</p><abbr title="T">b</abbr>`, base,
			`<p lang="cy" title="t">a</p><abbr title="T">b</abbr>`, "a b"},
		{"dir checked and lower-cased", `<p dir="sideways">a</p><p dir="RTL">b</p>`, base, `<p>a</p><p dir="rtl">b</p>`, "a b"},
		{"numeric attributes checked", `<table><tr><td colspan="abc" rowspan="2">x</td></tr></table>`, base,
			`<table><tbody><tr><td rowspan="2">x</td></tr></tbody></table>`, "x"},
		{"list attributes", `<ol start="3" reversed type="a"><li value="x">i</li></ol>`, base, `<ol type="a"><li>i</li></ol>`, "i"},
		{"image made absolute, bad width dropped", `<img src="/x.png" width="100px" height="20">`, base,
			`<img src="https://news.example.org/x.png" height="20">`, ""},
		{"image without a usable source dropped", `<img src="/x.png">`, nil, "", ""},
		{"image without a source dropped", "<img alt=x>", base, "", ""},
		{"link made absolute", `<a href="/rel">x</a>`, base, `<a href="https://news.example.org/rel">x</a>`, "x"},
		{"relative link without a base loses its URL", `<a href="/rel">x</a>`, nil, "<a>x</a>", "x"},
		{"cite made absolute", `<q cite="/source">q</q>`, base, `<q cite="https://news.example.org/source">q</q>`, "q"},
		{"mailto for links only", `<a href="mailto:press@example.org">p</a><img src="mailto:x@example.org">`, base,
			`<a href="mailto:press@example.org">p</a>`, "p"},
		{"query escaped as RFC 3986 asks", `<a href="https://example.org/a?q=&lt;b&gt;é">x</a>`, base,
			`<a href="https://example.org/a?q=%3Cb%3E%C3%A9">x</a>`, "x"},
		{"characters XML forbids dropped", "a\x01b\uFFFDc <b>d</b>", base, "abc <b>d</b>", "abc d"},
		{"markup around nothing is nothing", "<p> </p><div><br></div>", base, "", ""},
		{"blank", "   ", base, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frag, plain := s.ForFeed(tc.in, tc.base)
			if frag != tc.frag || plain != tc.plain {
				t.Errorf("ForFeed(%q) = %q, %q; want %q, %q", tc.in, frag, plain, tc.frag, tc.plain)
			}
			// What a feed carries passes through again unchanged. (Without a
			// base a link whose URL was dropped loses its tag then, as the
			// policy drops a link without one.)
			if again, _ := s.ForFeed(frag, tc.base); again != frag && tc.base != nil {
				t.Errorf("ForFeed is not stable: %q, then %q", frag, again)
			}
		})
	}
}

func TestFeedURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{`https://example.org/a?q=a b&r=é"<>`, "https://example.org/a?q=a%20b&r=%C3%A9%22%3C%3E"},
		{"https://example.org/a?q=%20ok", "https://example.org/a?q=%20ok"},
		{" http://example.org/x\x01 ", "http://example.org/x"},
		{"ftp://example.org/", ""},
		{"https:///nohost", ""},
		{"/relative", ""},
	}
	for _, tc := range tests {
		got := ""
		if u := text.FeedURL(tc.in); u != nil {
			got = u.String()
		}
		if got != tc.want {
			t.Errorf("FeedURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestForXML(t *testing.T) {
	checkStrings(t, "ForXML", text.ForXML, []stringCase{
		{"clean text unchanged", "Fish\tand\nchips", "Fish\tand\nchips"},
		{"controls dropped", "a\x00b\x1fc\u0085d", "abcd"},
		{"replacement character dropped", "caf\uFFFD", "caf"},
		{"noncharacter dropped", "a\uFFFEb", "ab"},
	})
}
