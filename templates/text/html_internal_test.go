package text

import (
	"net/url"
	"strings"
	"testing"
)

// sanitizedPlainCases are fragments whose sanitised HTML the scan in
// readSanitized must read as the tokenizer reads it: references, lists,
// tables, images, line breaks, hidden and unknown elements, malformed
// markup, escaped tags, attributes holding brackets and quotes, raw-text
// elements, comments, CDATA, and bytes that are not UTF-8.
var sanitizedPlainCases = []string{
	"",
	"Fish and chips",
	" Border  checks\r\n\tat ports ",
	"a > b",
	"Fish &amp; chips &lt;b&gt; &#8217;&#x2019; a&nbsp;b &notin; AT&T &amp &#0; &#13;x",
	"&lt;b&gt;not bold&lt;/b&gt; &lt;!-- not a comment --&gt;",
	"<ul><li>one<ol><li>a</li><li>b</li></ol></li><li>two</li></ul><li>stray</li>",
	"<table><caption>Cap</caption><thead><tr><th>h1</th><th>h2</th></tr></thead><tbody><tr><td>a</td><td>b<br>c</td></tr></tbody></table>",
	`before<img src="/x.png" alt="a > b">after<img src=x.png/>end<IMG SRC="y.png"/>`,
	"one<br>two<br/>three</br>four<BR>five",
	"<p>Text <unknown-tag>kept</unknown-tag> <font color=red>font</font> <custom/>x</p>",
	"<script>alert('<p>x</p>')</script><style>p{color:red}</style><template><p>inert</p></template>shown",
	"<head><title>Doc &amp; co</title></head><noscript><b>n</b></noscript><iframe>i</iframe><object>o</object>kept",
	"<p>unclosed <b>bold <i>both",
	"a < b and c > d", "text<", "text<a href='x'", "<<p>>", "</>x</ p>y", "<p/>x<li/>y<li>z",
	`<a href="/a>b" title='say "hi" > there'>link</a> <p title="x>y" class='a"b'>t</p> <abbr title="it's">x</abbr>`,
	`<a href="relative/page?a=1&b=2">rel</a> <a href="javascript:alert(1)">js</a> <a href="mailto:x@example.org">m</a>`,
	`<blockquote cite="../quote">q</blockquote><q cite="/q">inline</q>`,
	`</p onclick="x>y">text</p a<b "c>d <p =x>e`,
	"<pre>  line one\n  line two</pre>after",
	"<![CDATA[x<p>y]]>z",
	"a<!-- <p>hidden</p> -->b<!-->c<!--->d<!---->e<!--unclosed",
	"<!DOCTYPE html><?xml version='1.0'?>x",
	"<textarea><p>raw</p>&amp;</textarea>x<title>&lt;t</title>y<xmp><b>x</b></xmp>z",
	"<plaintext><p>x</p>",
	"<details><summary>S</summary>body</details><dl><dt>t</dt><dd>d</dd></dl>",
	"<p>bad \xff byte</p>\xc3 <p \xff=1>x</p>",
	"<p>a\x00b</p>\x00<\x00p>",
	"<p>NUL\x00 BEL\x07 ESC\x1b C1\u0080\u009f&#x1F;</p><p>\u202eevil\u202c</p>",
	`<p dir="rtl">نص عربي مع <a href="/ar">رابط</a></p>`,
	"<svg><title>t</title><text>s</text></svg><math><mi>x</mi></math>",
	"<div><p>one</div>two</p><h1>three</h1><hr>four",
}

// TestPlainOfSanitized checks that the scan reads every sanitised case
// (it does not fall back to the tokenizer) and reads it as Plain does.
func TestPlainOfSanitized(t *testing.T) {
	s := NewSanitizer()
	base, _ := url.Parse("https://news.example.org/ho/ferry-checks")
	for _, in := range sanitizedPlainCases {
		for _, b := range []*url.URL{base, nil} {
			out := s.Sanitize(in, b)
			var scanned strings.Builder
			if !readSanitized(out, func(t string) { scanned.WriteString(t) }, func(breakKind) { scanned.WriteByte(' ') }) {
				t.Errorf("readSanitized(%q) (sanitised from %q) found it out of form", out, in)
			}
			if got, want := Line(scanned.String()), Plain(out); got != want {
				t.Errorf("scan of %q = %q, Plain = %q (sanitised from %q)", out, got, want, in)
			}
			if gotOut, got := s.SanitizeWithPlain(in, b); gotOut != out || got != Plain(out) {
				t.Errorf("SanitizeWithPlain(%q) = %q, %q; want %q, %q", in, gotOut, got, out, Plain(out))
			}
		}
	}
}

// TestPlainOutOfForm checks that HTML Sanitize would not write is found
// out of form and read by the tokenizer.
func TestPlainOutOfForm(t *testing.T) {
	for _, in := range []string{
		"a < b", "text<", "<>", "</>", "</ p>", "<!-- c -->", "<!DOCTYPE html>", "<?xml?>",
		"<script>a</script>", "<style>p</style>", "<title>t</title>", "<textarea>x</textarea>",
		"<xmp>x</xmp>", "<plaintext>x", "<iframe>x</iframe>", "<noscript>x</noscript>", "<noembed>x</noembed>",
		"<noframes>x</noframes>",
	} {
		html := "<p>before</p>" + in + "after"
		if readSanitized(html, func(string) {}, func(breakKind) {}) {
			t.Errorf("readSanitized(%q) did not find it out of form", html)
		}
		if got, want := plain(html, true), Plain(html); got != want {
			t.Errorf("plain(%q, true) = %q, want %q", html, got, want)
		}
	}
}
