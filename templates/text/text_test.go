package text_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"herald/templates/text"
)

// stringCase is one input of a string function and what it must return.
type stringCase struct{ name, in, want string }

func checkStrings(t *testing.T, fname string, f func(string) string, cases []stringCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := f(tc.in); got != tc.want {
				t.Errorf("%s(%q) = %q, want %q", fname, tc.in, got, tc.want)
			}
		})
	}
}

func TestPlain(t *testing.T) {
	checkStrings(t, "Plain", text.Plain, []stringCase{
		{"empty", "", ""},
		{"plain text is folded", " Border  checks\n\tat ports ", "Border checks at ports"},
		{"entities", "Fish &amp; chips &lt;b&gt; &#8217;&#x2019; a&nbsp;b &notin;", "Fish & chips <b> ’’ a b ∉"},
		{"unterminated entity", "AT&T &amp", "AT&T &"},
		{"inline elements join", "<p>Joint action on <strong>modern slavery</strong>.</p>", "Joint action on modern slavery."},
		{"inline inside a word", "fo<b>o</b>bar", "foobar"},
		{"paragraphs separate", "<p>one</p><p>two</p>", "one two"},
		{"end of a block separates", "<p>one</p>two", "one two"},
		{"line break", "one<br>two<br/>three", "one two three"},
		{"list items", "<ul><li>schools</li><li>fuel</li></ul>", "schools fuel"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr></table>", "a b"},
		{"image between words", "before<img src=x.png>after", "before after"},
		{"upper-case tags", "<P>one</P><BR>two", "one two"},
		{"script and style", "<p>a</p><script>alert('<p>x</p>')</script><style>p{color:red}</style>b", "a b"},
		{"unclosed script hides the rest", "before<script>alert(1)", "before"},
		{"self-closing script", "<script/>after", "after"},
		{"noscript, iframe, object", "<noscript><b>n</b></noscript><iframe>i</iframe><object>o</object>kept", "kept"},
		{"head and title", "<head><title>Doc</title></head><p>body</p>", "body"},
		{"template", "<template><p>inert</p></template>shown", "shown"},
		{"unclosed tags keep text", "<p>unclosed <b>bold <i>both", "unclosed bold both"},
		{"unclosed tag at the end", "text<a href='x'", "text"},
		{"stray brackets", "a < b and c > d", "a < b and c > d"},
		{"bracket at the end", "text<", "text<"},
		{"comment", "a<!-- hidden -->b", "ab"},
		{"cdata is a comment in html", "<![CDATA[x]]>y", "y"},
		{"attributes are not text", `<a href="https://example.org/guidance" title="t">lorries</a>`, "lorries"},
		{"unknown elements", "<p>Text <unknown-tag>kept</unknown-tag> <font color=red>font</font></p>", "Text kept font"},
		{"control characters", "<p>NUL\x00 BEL\x07 ESC\x1b C1\u0080\u009f&#x1F;</p>", "NUL BEL ESC C1"},
		{"bidi overrides", "<p>\u202eevil\u202c \u2067iso\u2069</p>", "evil iso"},
		{"right-to-left text", `<p dir="rtl">نص عربي مع <a href="/ar">رابط</a></p>`, "نص عربي مع رابط"},
		{"invalid utf-8", "<p>bad \xff byte</p>", "bad \ufffd byte"},
		{"null reference", "<p>&#0;x</p>", "\ufffdx"},
	})
}

func TestParagraphs(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"only markup", "<p> </p><div><br></div>", nil},
		{"plain text", "one paragraph", []string{"one paragraph"}},
		{"paragraphs", "<p>One.</p><p>Two <b>bold</b>.</p>", []string{"One.", "Two bold."}},
		{"heading and list", "<h2>Key points</h2><ul><li>Schools</li><li>Fuel <em>duty</em></li></ul>after",
			[]string{"Key points", "- Schools", "- Fuel duty", "after"}},
		{"unclosed list items", "<ol><li>a<li>b</ol>", []string{"- a", "- b"}},
		{"table rows", "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>", []string{"a b", "c"}},
		{"line breaks", "line<br>break", []string{"line", "break"}},
		{"hidden content", "<p>a</p><script>x()</script><style>p{}</style><p>b</p>", []string{"a", "b"}},
		{"control characters", "<p>a\x00b</p><p>\x07</p>", []string{"ab"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := text.Paragraphs(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("Paragraphs(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short", "Border checks", 20, "Border checks"},
		{"exactly max", "Border checks", 13, "Border checks"},
		{"no limit", "Border checks", 0, "Border checks"},
		{"at a word", "The quick brown fox jumps", 12, "The quick…"},
		{"ellipsis counts", "abcdef", 5, "abcd…"},
		{"one character", "abcdef", 1, "…"},
		{"dangling punctuation", "Hello, world and more", 8, "Hello…"},
		{"full stop before the cut", "Ends here. Then more words", 12, "Ends here…"},
		{"long word", strings.Repeat("x", 50), 10, "xxxxxxxxx…"},
		{"early space is not used", "see https://example.org/very/long/path", 20, "see https://example…"},
		{"multi-byte", "ééééé ééééé", 8, "ééééé…"},
		{"multi-byte at the cut", "日本語のテキストです", 5, "日本語の…"},
		{"combining mark at the cut", "cafe\u0301 au lait", 5, "caf…"},
		{"combining mark before the cut", "cafe\u0301 au lait", 6, "cafe\u0301…"},
		{"zero-width joiner", "ab 👨\u200d👩\u200d👧 family", 6, "ab…"},
		{"flag pair kept whole", "x🇬🇧🇫🇷 flags", 4, "x🇬🇧…"},
		{"flag pair not split", "x🇬🇧🇫🇷 flags", 3, "x…"},
		{"skin tone", "ab👍🏽cd", 4, "ab…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := text.Excerpt(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Excerpt(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if tc.max > 0 && utf8.RuneCountInString(got) > tc.max {
				t.Errorf("Excerpt(%q, %d) has %d characters", tc.in, tc.max, utf8.RuneCountInString(got))
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"ab cd", 0, "ab cd"},
		{"ab cd", 5, "ab cd"},
		{"ab cd", 2, "ab…"},
		// The cut would end on a space: the next character stays.
		{"ab cd", 3, "ab c…"},
		{"ab cd", 4, "ab c…"},
		{"ab c", 3, "ab c"},
		{"éééé", 2, "éé…"},
		{strings.Repeat("Tariff schedule amended ", 5)[:100], 10, "Tariff sch…"},
	}
	for _, tc := range tests {
		if got := text.Truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestLine(t *testing.T) {
	checkStrings(t, "Line", text.Line, []stringCase{
		{"clean", "Border checks", "Border checks"},
		{"white space folded and trimmed", "  a \t b\r\n c  ", "a b c"},
		{"unicode spaces", "a\u00a0b\u2028c\u0085d\u3000e", "a b c d e"},
		{"controls dropped", "a\x00b\x07c\x1b[31m\x7fd\u0080\u009fe", "abc[31mde"},
		{"bidi controls", "\u202eRTL override\u202c \u2067isolate\u2069", "RTL override isolate"},
		{"marks kept", "a\u200fb\u200e", "a\u200fb\u200e"},
		{"byte-order mark", "\ufeffTitle", "Title"},
		{"noncharacters", "a\ufdd0\ufffe\uffff\U0001fffe\U0010ffffb", "ab"},
		{"replacement kept", "a\ufffdb", "a\ufffdb"},
		{"invalid utf-8", "a\xffb", "a\ufffdb"},
		{"emoji", "Ferry 🚢 flags 🇬🇧", "Ferry 🚢 flags 🇬🇧"},
		{"only space", " \n\t ", ""},
	})
}

func TestClean(t *testing.T) {
	checkStrings(t, "Clean", text.Clean, []stringCase{
		{"clean", "plain text", "plain text"},
		{"line structure kept", "a\tb\nc\r\nd\u2028e", "a\tb\nc\r\nd\u2028e"},
		{"controls dropped", "a\x00\x07b\x0b\x0c\x1b\x7fc\u0080\u0085\u009fd", "abcd"},
		{"noncharacters dropped", "a\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffffb", "ab"},
		{"invalid bytes dropped", "bad \xff\xfe bytes \xc3\x28", "bad  bytes ("},
		{"replacement kept", "a\ufffdb", "a\ufffdb"},
		{"html kept", "<p dir=\"rtl\">نص</p>", "<p dir=\"rtl\">نص</p>"},
		{"bidi kept", "\u202eabc", "\u202eabc"},
		{"astral", "𝔘𝔫𝔦 👨\u200d👩\u200d👧", "𝔘𝔫𝔦 👨\u200d👩\u200d👧"},
	})
}

func TestHasControl(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"ana@example.org", false},
		{"Café 🚢 نص", false},
		{"a\u200fb", false},
		{"a\nb", true},
		{"a\r\nb", true},
		{"tab\there", true},
		{"nul\x00", true},
		{"del\x7f", true},
		{"nel\u0085", true},
		{"c1\u009b", true},
		{"line\u2028sep", true},
		{"para\u2029sep", true},
	}
	for _, tc := range tests {
		if got := text.HasControl(tc.in); got != tc.want {
			t.Errorf("HasControl(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	s := text.NewSanitizer()
	base, _ := url.Parse("https://news.example.org/ho/ferry-checks")
	tests := []struct {
		name, in string
		base     *url.URL
		want     string
	}{
		{"plain text untouched", "Fish and chips", base, "Fish and chips"},
		{"entities kept", "Fish &amp; chips", base, "Fish &amp; chips"},
		{"script removed with its content", "<p>Hi</p><script>alert(1)</script>", base, "<p>Hi</p>"},
		{"style removed with its content", "<style>body{display:none}</style><p>Hi</p>", base, "<p>Hi</p>"},
		{"event handlers and styles", `<p onclick="alert(2)" style="color:red">Hi</p>`, base, "<p>Hi</p>"},
		{"javascript link", `<a href="javascript:alert(4)">here</a>`, base, "here"},
		{"frames, objects and forms", `<iframe src="https://evil.example.org/"></iframe><object data="x.swf"></object><form><input name=q></form>ok`, base, "ok"},
		{"relative link resolved", `<a href="/ho/guidance">guidance</a>`, base,
			`<a href="https://news.example.org/ho/guidance" rel="nofollow">guidance</a>`},
		{"relative image resolved", `<img src="../img/port.jpg" alt="A port">`, base,
			`<img src="https://news.example.org/img/port.jpg" alt="A port">`},
		{"relative link without a base dropped", `<a href="/relative/page">there</a>`, nil, `<a rel="nofollow">there</a>`},
		{"absolute link kept", `<a href="https://example.org/a?b=1&amp;c=2">x</a>`, nil,
			`<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow">x</a>`},
		{"mailto kept", `<a href="mailto:press@example.org">press</a>`, base, `<a href="mailto:press@example.org" rel="nofollow">press</a>`},
		{"other schemes dropped", `<a href="ftp://example.org/f">f</a>`, base, "f"},
		{"unclosed markup", "<p>unclosed <b>bold", base, "<p>unclosed <b>bold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Sanitize(tc.in, tc.base)
			if got != tc.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
			// The feeds sanitise stored HTML again, which must not change
			// it. (A link whose URL was dropped loses its tag then, as
			// bluemonday drops a link without one.)
			if again := s.Sanitize(got, tc.base); again != got && tc.base != nil {
				t.Errorf("Sanitize is not stable: %q, then %q", got, again)
			}
		})
	}
}

func FuzzPlain(f *testing.F) {
	for _, s := range []string{"<p>a</p>", "<script>x", "a<b", "&amp", "<li>x<li>y", "\x00\u202e", "<noscript><p>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := text.Plain(in)
		if !utf8.ValidString(p) || text.HasControl(p) || text.Line(p) != p {
			t.Fatalf("Plain(%q) = %q: not one clean line", in, p)
		}
		for _, para := range text.Paragraphs(in) {
			if para == "" || text.Line(para) != para {
				t.Fatalf("Paragraphs(%q) has %q", in, para)
			}
		}
	})
}

// FuzzPlainOfSanitized checks that the plain text SanitizeWithPlain reads
// from the sanitised HTML is what Plain reads in it, for any input.
func FuzzPlainOfSanitized(f *testing.F) {
	for _, s := range []string{
		"<p>a &amp; b</p>", "<ul><li>x<ol><li>y</ol></ul>", "<table><tr><td>a<td>b</table>", "x<img src=a.png>y",
		"a<br/>b", "<unknown>u</unknown><script>s</script>", "<p>unclosed <b>", "&lt;b&gt;", `<a title="x>y" href='/p'>l</a>`,
		"<pre> a\n b</pre>", "<![CDATA[c]]>", "a<!--c-->b", "<textarea><p>t</textarea><title>t</title>", "bad \xff",
		"</p a=\">\">x", "a\r\nb&#13;",
	} {
		f.Add(s)
	}
	s := text.NewSanitizer()
	base, _ := url.Parse("https://news.example.org/ho/ferry-checks")
	f.Fuzz(func(t *testing.T, in string) {
		out, p := s.SanitizeWithPlain(in, base)
		if want := s.Sanitize(in, base); out != want {
			t.Fatalf("SanitizeWithPlain(%q) HTML = %q, Sanitize = %q", in, out, want)
		}
		if want := text.Plain(out); p != want {
			t.Fatalf("SanitizeWithPlain(%q) = %q, %q; Plain of that HTML = %q", in, out, p, want)
		}
	})
}

func FuzzExcerpt(f *testing.F) {
	f.Add("The quick brown fox", 10)
	f.Add("日本語のテキスト", 3)
	f.Add("cafe\u0301", 4)
	f.Fuzz(func(t *testing.T, in string, max int) {
		in = text.Line(in)
		max %= 300
		got := text.Excerpt(in, max)
		if !utf8.ValidString(got) {
			t.Fatalf("Excerpt(%q, %d) = %q: not UTF-8", in, max, got)
		}
		if max > 0 && utf8.RuneCountInString(got) > max {
			t.Fatalf("Excerpt(%q, %d) = %q: too long", in, max, got)
		}
		if got != in && !strings.HasPrefix(in, strings.TrimSuffix(got, "…")) {
			t.Fatalf("Excerpt(%q, %d) = %q: not a start of the text", in, max, got)
		}
	})
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"a\tb\nc", "\x00\x7f\u0085", "\ufffe\U0010ffff", "bad \xff", "é\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c := text.Clean(in)
		if !utf8.ValidString(c) || text.Clean(c) != c ||
			strings.ContainsFunc(c, func(r rune) bool { return r != '\t' && r != '\n' && r != '\r' && unicode.IsControl(r) }) {
			t.Fatalf("Clean(%q) = %q", in, c)
		}
		l := text.Line(in)
		if !utf8.ValidString(l) || text.Line(l) != l || text.HasControl(l) || strings.Contains(l, "  ") || strings.TrimSpace(l) != l {
			t.Fatalf("Line(%q) = %q", in, l)
		}
	})
}
