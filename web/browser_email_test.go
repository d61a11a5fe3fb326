package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"herald/alerts"
	"herald/store/storetest"
)

// accessibilityJS checks what the pages and the emails promise: a
// language, one h1 and headings in order, links and images named, and
// text with a contrast of 4.5:1 (3:1 when large) on what is behind it.
// It returns the problems found.
const accessibilityJS = `(() => {
  const problems = [];
  const shown = el => {
    for (let e = el; e; e = e.parentElement) {
      const st = getComputedStyle(e);
      if (st.display === 'none' || st.visibility === 'hidden') return false;
    }
    return el.getClientRects().length > 0;
  };
  if (!document.documentElement.getAttribute('lang')) problems.push('the page has no lang');
  const hs = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].filter(shown);
  const h1s = hs.filter(h => h.tagName === 'H1').length;
  if (h1s !== 1) problems.push(h1s + ' h1 headings, want one');
  if (hs.length && hs[0].tagName !== 'H1') problems.push('the first heading is ' + hs[0].tagName);
  let prev = 0;
  for (const h of hs) {
    const level = +h.tagName[1];
    if (prev && level > prev + 1) problems.push('headings skip from h' + prev + ' to ' + h.tagName + ': ' + h.textContent.trim());
    prev = level;
  }
  const vague = /^(click here|here|more|read more|link|this)$/i;
  for (const a of document.querySelectorAll('a[href]')) {
    if (!shown(a)) continue;
    const name = (a.getAttribute('aria-label') || (a.textContent + [...a.querySelectorAll('img')].map(i => i.alt).join(' '))).trim();
    if (!name) problems.push('a link without text: ' + a.getAttribute('href'));
    else if (vague.test(name)) problems.push('a link that says only "' + name + '"');
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push('an image without alt: ' + img.getAttribute('src').slice(0, 60));
  }
  const rgb = s => { const m = s.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?/); return m ? [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]] : null; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) return c;
      const bg = e.getAttribute && e.getAttribute('bgcolor');
      if (bg) { const x = parseInt(bg.slice(1), 16); return [x >> 16, (x >> 8) & 255, x & 255, 1]; }
    }
    return [255, 255, 255, 1];
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || seen.has(el) || !shown(el)) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    const fg = rgb(st.color), bg = behind(el);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) problems.push('contrast ' + ratio.toFixed(2) + ':1 (want ' + need + ') for "' + n.textContent.trim().slice(0, 40) + '"');
  }
  return problems;
})()`

// checkAccessible fails the test with every problem accessibilityJS finds
// on the page now in the browser.
func checkAccessible(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](accessibilityJS))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}

// showHTML puts html in the browser's page as its document, outside any
// site: an email as a mail client would show it.
func showHTML(html string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return err
		}
		_, err = chromedp.Call(ctx, page.SetDocumentContent, page.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: html})
		return err
	})
}

// The HTML of every kind of email, branded, at a phone's width and a
// desktop's: readable without sideways scrolling, and passing the rules
// the pages pass. Screenshots are kept as artifacts.
func TestBrowserEmails(t *testing.T) {
	ctx := browser(t)
	brand, logo := ministry(t)
	s := newSite(t, withBrand(brand, logo))
	s.login()
	dir := artifacts(t)
	for _, kind := range alerts.EmailKinds() {
		// The frame's HTML, with the logo inline as the console shows it.
		r := s.get("/admin/emails/" + kind + "/html?target=topic:human-trafficking")
		wantStatus(t, r, 200)
		for _, size := range []struct {
			name          string
			width, height int64
		}{{"phone", 375, 812}, {"desktop", 1280, 900}} {
			do(t, ctx, chromedp.EmulateViewport(size.width, size.height), chromedp.Navigate("about:blank"), showHTML(r.body))
			what := kind + " email at " + size.name + " width"
			checkAccessible(t, ctx, what)
			overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
			if err != nil || overflow {
				t.Errorf("%s scrolls sideways (%v)", what, err)
			}
			logoShown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector('img[alt="Ministry of Examples"]'); return !!i && i.complete && i.naturalWidth > 0; })()`))
			if err != nil || !logoShown {
				t.Errorf("%s: the logo is not shown (%v)", what, err)
			}
			saveScreenshot(t, ctx, dir, "email-"+kind+"-"+size.name+".png")
		}
	}
}

// The pages pass the same rules, branded and not, and the console shows
// an email's HTML in a sandboxed frame.
func TestBrowserPagesAreAccessible(t *testing.T) {
	ctx := browser(t)
	brand, logo := ministry(t)
	for _, s := range []*site{newSite(t), newSite(t, withBrand(brand, logo))} {
		id := s.releaseID("UK and Romania pledge to tackle human trafficking")
		for _, path := range []string{"/", "/topics/human-trafficking", "/departments/home-office", "/releases/" + strconv.FormatInt(id, 10),
			"/search?q=passports", "/subscribe", "/subscribe?topic=human-trafficking", "/manage", "/nowhere", "/admin/login"} {
			do(t, ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.url(path)), chromedp.WaitVisible(chromedp.CSS("main h1")))
			checkAccessible(t, ctx, path)
		}
	}

	s := newSite(t, withBrand(brand, logo))
	do(t, ctx, chromedp.Navigate(s.url("/admin/login")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".cards")),
		chromedp.Navigate(s.url("/admin/emails/daily-digest")),
		chromedp.WaitVisible(chromedp.ID("email-html")),
	)
	checkAccessible(t, ctx, "the console's email preview")
	frame, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const f = document.getElementById('email-html');
		return {sandbox: f.getAttribute('sandbox'), src: f.getAttribute('src'), height: f.getBoundingClientRect().height};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if frame["sandbox"] != "" || !strings.HasPrefix(frame["src"].(string), "/admin/emails/daily-digest/html") || frame["height"].(float64) < 300 {
		t.Errorf("preview frame %v", frame)
	}
	// The frame is its own document (a page of another, opaque origin):
	// the server answered it, and a screenshot of the window shows it
	// (a full-page one leaves such frames out).
	storetest.Eventually(t, 5*time.Second, "the preview frame to load", func() bool {
		return strings.Contains(s.logs.String(), `"route":"GET /admin/emails/{kind}/html","status":200`)
	})
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('email-html').scrollIntoView()`))
	time.Sleep(300 * time.Millisecond)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts(t), "console-email-preview.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The accessibility check finds what it looks for, so that its passing
// above means something.
func TestBrowserAccessibilityCheckFindsProblems(t *testing.T) {
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate("about:blank"), showHTML(`<html><body><h2>Late heading</h2><h4>Skipped</h4>
<a href="/x">click here</a><a href="/y"></a><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p style="color:#bbbbbb">Pale text</p><div style="display:none"><p style="color:#fff">hidden</p></div></body></html>`))
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](accessibilityJS))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{"the page has no lang", "0 h1 headings", "the first heading is H2", "headings skip from h2 to H4",
		`a link that says only "click here"`, "a link without text: /y", "an image without alt", `for "Pale text"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the check misses %q; it found:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("the check looked at hidden text:\n%s", got)
	}
}
