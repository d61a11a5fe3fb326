package web_test

import (
	"bytes"
	"encoding/base64"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"herald/alerts"
	"herald/templates"
	"herald/web"
)

// ministry is the brand of the tests: every key set.
func ministry(t *testing.T) (templates.Brand, *templates.Logo) {
	t.Helper()
	// A white mark with a gold bar, to be seen on the brand colour in
	// the screenshots.
	img := image.NewRGBA(image.Rect(0, 0, 120, 48))
	for y := range 48 {
		for x := range 120 {
			c := color.RGBA{0xff, 0xff, 0xff, 0xff}
			if y > 36 {
				c = color.RGBA{0xf2, 0xb7, 0x05, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return templates.Brand{Name: "Ministry of Examples", Colour: "#1d4f2a", Footer: "Ministry of Examples, 1 Example Street, London SW1A 1AA",
		PrivacyURL: "https://ministry.example.org/privacy", Contact: "press@ministry.example.org"}, &templates.Logo{Data: b.Bytes(), Type: "image/png"}
}

func withBrand(b templates.Brand, l *templates.Logo) siteOption {
	return func(c *siteConfig) { c.cfg.Brand, c.cfg.Logo = b, l }
}

// The branding keys reach every public page: the logo in the header, the
// colour through /brand.css, the footer lines.
func TestBrandingOnPages(t *testing.T) {
	brand, logo := ministry(t)
	s := newSite(t, withBrand(brand, logo))
	for _, path := range []string{"/", "/topics/human-trafficking", "/subscribe", "/manage", "/search?q=passports", "/nowhere"} {
		r := s.get(path)
		for _, want := range []string{
			`<a class="brand" href="/"><img class="logo" src="/brand/logo.png" alt="Ministry of Examples"></a>`,
			`<link rel="stylesheet" href="/brand.css">`,
			`<p>Ministry of Examples, 1 Example Street, London SW1A 1AA</p>`,
			`<a href="https://ministry.example.org/privacy">Privacy policy</a> · Contact us: <a href="mailto:press@ministry.example.org">press@ministry.example.org</a>`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
	}
	css := s.get("/brand.css")
	wantStatus(t, css, http.StatusOK)
	if !strings.Contains(css.body, "--accent:#1d4f2a") || css.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("brand.css: %q %q", css.Header.Get("Content-Type"), css.body)
	}
	img := s.get("/brand/logo.png")
	wantStatus(t, img, http.StatusOK)
	if img.body != string(logo.Data) || img.Header.Get("Content-Type") != "image/png" {
		t.Errorf("logo: %q, %d bytes", img.Header.Get("Content-Type"), len(img.body))
	}
	wantStatus(t, s.get("/brand/logo.gif"), http.StatusNotFound)

	// A linked logo is linked; the name stands alone without one.
	brand.LogoURL = "https://ministry.example.org/logo.png"
	linked := newSite(t, withBrand(brand, nil))
	if r := linked.get("/"); !strings.Contains(r.body, `<img class="logo" src="https://ministry.example.org/logo.png" alt="Ministry of Examples">`) {
		t.Errorf("linked logo:\n%s", excerptBody(r.body))
	}
	wantStatus(t, linked.get("/brand/logo.png"), http.StatusNotFound)
}

// Without branding, pages are as they always were.
func TestNoBrandingLeavesPagesAsTheyWere(t *testing.T) {
	s := newSite(t)
	r := s.get("/")
	if !strings.Contains(r.body, `<a class="brand" href="/">Herald</a>`) || strings.Contains(r.body, "brand.css") ||
		strings.Contains(r.body, "Privacy policy") || strings.Contains(r.body, "Contact us") {
		t.Errorf("home page:\n%s", excerptBody(r.body))
	}
}

// The branding keys reach every kind of email, in both parts; a logo file
// travels in the email and is shown in the console's preview from the
// page itself.
func TestBrandingInEveryEmail(t *testing.T) {
	brand, logo := ministry(t)
	s := newSite(t, withBrand(brand, logo))
	for _, kind := range alerts.EmailKinds() {
		var p struct{ Text, HTML string }
		r := s.api(http.MethodGet, "/api/v1/emails/"+kind+"/preview", nil)
		wantStatus(t, r, http.StatusOK)
		r.json(t, &p)
		for _, want := range []string{
			`<img src="cid:logo@herald" alt="Ministry of Examples"`,
			"background-color:#1d4f2a",
			"Ministry of Examples, 1 Example Street, London SW1A 1AA",
			`<a href="https://ministry.example.org/privacy" style="color:#1d4ed8;">Privacy policy</a>`,
			`<a href="mailto:press@ministry.example.org" style="color:#1d4ed8;">press@ministry.example.org</a>`,
		} {
			if !strings.Contains(p.HTML, want) {
				t.Errorf("%s: HTML lacks %s", kind, want)
			}
		}
		for _, want := range []string{"Ministry of Examples, 1 Example Street, London SW1A 1AA",
			"Privacy policy:\nhttps://ministry.example.org/privacy", "Contact us: press@ministry.example.org"} {
			if !strings.Contains(p.Text, want) {
				t.Errorf("%s: text lacks %q:\n%s", kind, want, p.Text)
			}
		}
	}
	s.login()
	frame := s.get("/admin/emails/welcome/html")
	if !strings.Contains(frame.body, `src="data:image/png;base64,`+base64.StdEncoding.EncodeToString(logo.Data)+`"`) {
		t.Errorf("the preview frame does not show the logo:\n%s", excerptBody(frame.body))
	}
}

// A broken page override stops the server before it serves anything,
// with a problem naming the file, the line and the field.
func TestBrokenPageOverrideIsRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pages/home.html", "{{define \"main\"}}\n<h1>{{.Data.Headline}}</h1>{{end}}")
	write("pages/manage.html", "{{define \"main\"}}{{with .Data}}{{range .Rows}}{{if .Retired}}{{.Ended}}{{end}}{{end}}{{end}}{{end}}")
	write("messages/pages.txt", `{{define "title.home"}}Latest from {{.Organisation}}{{end}}`)
	cfg := web.Config{BaseURL: "https://news.example.org", TemplatesFS: templates.FS(dir)}
	err := web.CheckTemplates(cfg)
	if err == nil {
		t.Fatal("the broken overrides were accepted")
	}
	msg := html.UnescapeString(err.Error())
	for _, want := range []string{
		filepath.Join(dir, "pages", "home.html") + ":2:",
		"can't evaluate field Headline",
		filepath.Join(dir, "pages", "manage.html") + ":1:",
		"can't evaluate field Ended",
		filepath.Join(dir, "messages", "pages.txt") + ":1:",
		`map has no entry for key "Organisation"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the problems lack %q:\n%s", want, msg)
		}
	}
	if strings.Count(msg, "\n") != 3 {
		t.Errorf("want three problems, one a line:\n%s", msg)
	}
}
