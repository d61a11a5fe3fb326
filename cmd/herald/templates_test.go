package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
	"herald/store/storetest"
	"herald/templates/templatestest"
)

// A broken override is caught by check-config, every problem at once,
// each naming the file and the line; and serve refuses to start on it.
func TestBrokenOverridesAreCaughtBeforeStart(t *testing.T) {
	dir := t.TempDir()
	overrides := filepath.Join(dir, "templates")
	templatestest.Write(t, overrides, map[string]string{
		"email/immediate.txt": templatestest.Changed(t, "email/immediate.txt", "{{.Department}} · {{.Date}}", "{{.Department}} · {{.Published}}"),
		"email/welcome.txt":   "{{define \"content\"}}Welcome{{end}}",
		"pages/release.html":  "{{define \"main\"}}\n{{.Data.Release.Headline}}{{end}}",
		"email/digset.txt":    "misspelt",
		"messages/feeds.txt":  "{{define \"feed.subtitle.department\"}}\nNews from {{.Dept}}{{end}}",
	})
	path := filepath.Join(dir, "herald.yaml")
	cfg := fmt.Sprintf("database: %q\nlisten: %q\ntemplates_dir: %q\n", storetest.Database(t), harness.FreeAddr(t), overrides)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCommand("check-config", "--offline", path)
	wantLines := []string{
		"herald check-config: 5 template problems:",
		"  " + filepath.Join(overrides, "email", "digset.txt") + ": replaces no built-in file, so Herald never reads it",
		"  " + filepath.Join(overrides, "email", "welcome.txt") + `: defines no "subject" block`,
		"  " + filepath.Join(overrides, "email", "immediate.txt") + ":5:",
		"  " + filepath.Join(overrides, "pages", "release.html") + ":2:",
		"  " + filepath.Join(overrides, "messages", "feeds.txt") + ":2:",
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != 1 || stdout != "" || len(lines) != len(wantLines) {
		t.Fatalf("check-config: exit %d, %q\n%s", code, stdout, stderr)
	}
	for i, want := range wantLines {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: %q, want %q…", i, lines[i], want)
		}
	}
	for _, want := range []string{"can't evaluate field Published", "can't evaluate field Headline", `map has no entry for key "Dept"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check-config does not say %q:\n%s", want, stderr)
		}
	}

	// serve stops at the same problems before it listens.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"serve", "--config", path}, &out, &errb); code != 1 || ctx.Err() != nil ||
		!strings.HasPrefix(errb.String(), "herald serve: 5 template problems:") {
		t.Fatalf("serve: exit %d (%v)\n%s", code, ctx.Err(), errb.String())
	}

	// Fixed, both pass.
	for _, f := range []string{"email/immediate.txt", "email/welcome.txt", "pages/release.html", "email/digset.txt", "messages/feeds.txt"} {
		if err := os.Remove(filepath.Join(overrides, filepath.FromSlash(f))); err != nil {
			t.Fatal(err)
		}
	}
	if code, stdout, stderr := runCommand("check-config", "--offline", path); code != 0 || stdout != path+": ok\n" {
		t.Errorf("fixed: exit %d, %q %q", code, stdout, stderr)
	}
}

// The branding keys are checked with the rest of the config: a logo that
// is missing or too big, a colour white text cannot be read on.
func TestBrandingConfigErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	if err := os.WriteFile(big, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 200<<10)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"missing logo":        {"branding: {logo: " + filepath.Join(dir, "none.png") + "}\n", "branding.logo: " + filepath.Join(dir, "none.png") + ": no such file"},
		"big logo":            {"branding: {logo: " + big + "}\n", "branding.logo: " + big + " is 201 KB; a logo travels in every email, so it must be at most 100 KB"},
		"light colour":        {"branding: {colour: \"#ffdd00\"}\n", `branding.colour: "#ffdd00" has a contrast of 1.`},
		"not a colour":        {"branding: {colour: green}\n", `branding.colour: "green" must be a hex colour like #0b3d91`},
		"privacy not a link":  {"branding: {privacy_url: /privacy}\n", "branding.privacy_url: \"/privacy\" must be an absolute http(s) URL"},
		"contact":             {"branding: {contact: press}\n", `branding.contact: "press" is not an email address or an http(s) URL`},
		"footer on two lines": {"branding: {footer: \"1 Example Street\\nLondon\"}\n", "branding.footer: must be one line"},
		"no templates":        {"templates_dir: " + filepath.Join(dir, "nowhere") + "\n", "templates_dir: \"" + filepath.Join(dir, "nowhere") + "\" is not a directory"},
		"misspelt key":        {"branding: {color: \"#0b3d91\"}\n", `line 1: unknown key "color"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tc.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
}

// End to end: a site's templates_dir and branding reach the email a
// visitor's request sends through serve, the outbox and a real relay.
func TestOverrideReachesTheSentEmail(t *testing.T) {
	relay := smtptest.Start(t, smtptest.Options{})
	dir := t.TempDir()
	overrides := filepath.Join(dir, "templates")
	templatestest.Write(t, overrides, map[string]string{
		"email/confirm.txt": templatestest.Changed(t, "email/confirm.txt", "{{define \"content\"}}",
			"{{define \"content\"}}\nA message from {{.Brand.Name}}."),
		"messages/email.txt": `{{define "email.unsubscribe.cancel"}}Not you? Cancel this request{{end}}`,
	})
	var logo bytes.Buffer
	if err := png.Encode(&logo, image.NewRGBA(image.Rect(0, 0, 60, 20))); err != nil {
		t.Fatal(err)
	}
	logoPath := filepath.Join(dir, "logo.png")
	if err := os.WriteFile(logoPath, logo.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := harness.FreeAddr(t)
	never := "0 0 1 1 *"
	cfg := fmt.Sprintf(`database: %q
base_url: http://%s
listen: %q
templates_dir: %q
log: {format: json, level: warn}
schedule: {pull: %q, daily_digest: %q, weekly_digest: %q}
secrets: {token_keys: ["end-to-end-token-key-0123456789"]}
branding: {name: Ministry of Examples, logo: %q, colour: "#1d4f2a", footer: "1 Example Street, London SW1A 1AA"}
mail: {from: "Ministry <alerts@ministry.example.org>", transport: smtp, smtp: {host: %q, port: %d, tls: none}}
departments: [{slug: home-office, name: Home Office}]
topics: [{slug: passports, title: Passports, match: {keywords: [passport]}}]
`, storetest.Database(t), addr, addr, overrides, never, never, never, logoPath, relay.Host(), relay.Port())
	path := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", path}, io.Discard, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	storetest.Eventually(t, 20*time.Second, "serve to answer", func() bool {
		res, err := client.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == http.StatusOK
	})
	res, err := client.Get(base + "/subscribe?topic=passports")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form:\n%s", page)
	}
	res, err = client.PostForm(base+"/subscribe", url.Values{"csrf_token": {string(m[1])}, "topic": {"passports"},
		"email": {"reader@example.org"}, "frequency": {"daily"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %d\n%s", res.StatusCode, stderr.String())
	}
	storetest.Eventually(t, 20*time.Second, "the confirmation to reach the relay", func() bool { return relay.Count() == 1 })
	msg := relay.Messages()[0]
	text, _, err := msg.Part("text/plain")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"A message from Ministry of Examples.", "Confirm your subscription", "Not you? Cancel this request:",
		"1 Example Street, London SW1A 1AA"} {
		if !strings.Contains(string(text.Body), want) {
			t.Errorf("the text part lacks %q:\n%s", want, text.Body)
		}
	}
	htmlPart, _, _ := msg.Part("text/html")
	for _, want := range []string{`<img src="cid:logo@herald" alt="Ministry of Examples"`, "background-color:#1d4f2a", "Not you? Cancel this request</a>"} {
		if !strings.Contains(string(htmlPart.Body), want) {
			t.Errorf("the HTML part lacks %q", want)
		}
	}
	img, ok, _ := msg.Part("image/png")
	if !ok || !bytes.Equal(img.Body, logo.Bytes()) || img.Header.Get("Content-Id") != "<logo@herald>" {
		t.Errorf("the logo does not travel with the email: %v %+v", ok, img.Header)
	}
	// The pages carry the brand too.
	res, err = client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(home, []byte(`<img class="logo" src="/brand/logo.png" alt="Ministry of Examples">`)) ||
		!bytes.Contains(home, []byte("1 Example Street, London SW1A 1AA")) {
		t.Errorf("home page:\n%s", home)
	}
}
