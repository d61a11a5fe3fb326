package templates_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	texttemplate "text/template"

	"herald/templates"
	"herald/templates/templatestest"
)

func TestOriginNamesTheFileAPersonOpens(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"email/confirm.txt": "x"})
	fsys := templates.FS(dir)
	if got, want := templates.Origin(fsys, "email/confirm.txt"), filepath.Join(dir, "email", "confirm.txt"); got != want {
		t.Errorf("override: %q, want %q", got, want)
	}
	if got := templates.Origin(fsys, "email/welcome.txt"); got != "email/welcome.txt" {
		t.Errorf("built-in: %q", got)
	}
	if !templates.Overridden(fsys, "email/confirm.txt") || templates.Overridden(fsys, "email/welcome.txt") ||
		templates.Overridden(templates.Embedded(), "email/confirm.txt") {
		t.Error("Overridden is wrong")
	}
}

func TestStraysAreFilesThatReplaceNothing(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{
		"email/confirm.txt":  "x",
		"email/confirmm.txt": "x",
		"pages/hom.html":     "x",
		"messages/extra.txt": "x",
		"static/banner.png":  "x",
	})
	got, err := templates.Strays(templates.FS(dir))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "email", "confirmm.txt"), filepath.Join(dir, "messages", "extra.txt"), filepath.Join(dir, "pages", "hom.html")}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("strays %q, want %q", got, want)
	}
	if s, err := templates.Strays(templates.Embedded()); err != nil || len(s) != 0 {
		t.Errorf("built-ins alone: %v %v", s, err)
	}
}

func TestParseRefusesTextThatIsNotUTF8(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"email/manage.txt": "line one\nline two\nCaf\xe9\n"})
	_, err := templates.ParseText(texttemplate.New("x"), templates.FS(dir), "email/manage.txt")
	want := filepath.Join(dir, "email", "manage.txt") + ":3: is not valid UTF-8 text"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%v, want %s…", err, want)
	}
}

func TestParseErrorsNameTheOverride(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"email/manage.txt": "{{define \"subject\"}}\n{{.X}\n{{end}}"})
	fsys := templates.FS(dir)
	_, err := templates.ParseText(texttemplate.New("x"), fsys, "email/manage.txt")
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "email", "manage.txt")+":2:") || strings.Contains(err.Error(), "\n") {
		t.Errorf("%v", err)
	}
	tpl, err := templates.ParseText(texttemplate.New("x"), templates.FS(templatestest.Dir(t, map[string]string{"email/manage.txt": "{{define \"content\"}}x{{end}}"})), "email/manage.txt")
	if err != nil {
		t.Fatal(err)
	}
	err = templates.Require(tpl, fsys, "email/manage.txt", "content", "subject")
	if err == nil || !strings.Contains(err.Error(), `defines no "subject" block`) || strings.Contains(err.Error(), `"content" block`) {
		t.Errorf("Require: %v", err)
	}
}

func TestMessagesLayerABlockAtATime(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"messages/email.txt": `{{define "email.unsubscribe.one"}}Se désabonner de {{.Name}}{{end}}`})
	m, err := templates.LoadMessages(templates.FS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Say("email.unsubscribe.one", "Name", "Immigration"); got != "Se désabonner de Immigration" {
		t.Errorf("overridden: %q", got)
	}
	if got := m.Say("email.unsubscribe.everything"); got != "Unsubscribe from everything" {
		t.Errorf("kept: %q", got)
	}
	if got := m.Phrase("frequency.", "daily"); got != "once a day" {
		t.Errorf("Phrase: %q", got)
	}
	if got := m.Phrase("frequency.", "hourly"); got != "hourly" {
		t.Errorf("Phrase of no message: %q", got)
	}
	if got := m.Kind("topic") + "/" + m.Kind("department") + "/" + m.Kind("other"); got != "topic/department/department" {
		t.Errorf("Kind: %q", got)
	}
}

func TestMessagesRefuseBlocksHeraldNeverSays(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"messages/pages.txt": `{{define "title.hom"}}Home{{end}}`})
	_, err := templates.LoadMessages(templates.FS(dir))
	if err == nil || !strings.Contains(err.Error(), `defines "title.hom", a message Herald never says`) {
		t.Errorf("%v", err)
	}
}

// An override that fails on values its check did not have is said in the
// built-in words, and reported once.
func TestMessagesFallBackToBuiltInWords(t *testing.T) {
	dir := templatestest.Dir(t, map[string]string{"messages/email.txt": `{{define "email.preheader.digest"}}{{index .Counts 3}} new{{end}}`})
	m, err := templates.LoadMessages(templates.FS(dir))
	if err != nil {
		t.Fatal(err)
	}
	var reported []string
	m.OnError(func(name string, err error) { reported = append(reported, name) })
	for range 3 {
		if got := m.Say("email.preheader.digest", "Count", 2); got != "2 new releases" {
			t.Errorf("got %q, want the built-in words", got)
		}
	}
	if len(reported) != 1 || reported[0] != "email.preheader.digest" {
		t.Errorf("reported %v, want the message once", reported)
	}
	if _, err := m.Check("email.preheader.digest", "Count", 2); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "messages", "email.txt")+":1:") {
		t.Errorf("Check: %v", err)
	}
}

func TestProblemsTellEach(t *testing.T) {
	var p templates.Problems
	p.Add(nil)
	p.Add(errors.New("template: a.txt:1: x"))
	p.Add(templates.Problems{"b", "c"})
	if len(p) != 3 || p[0] != "a.txt:1: x" {
		t.Fatalf("%q", p)
	}
	if got := p.Error(); got != "3 template problems:\n  a.txt:1: x\n  b\n  c" {
		t.Errorf("%q", got)
	}
	if (templates.Problems{}).Err() != nil {
		t.Error("no problems is not nil")
	}
}

func TestBrandColourNeedsContrastWithWhite(t *testing.T) {
	if c := templates.Contrast("#ffffff", "#000000"); math.Abs(c-21) > 0.01 {
		t.Errorf("white on black: %v", c)
	}
	for _, ok := range []string{"#0b3d91", "#000", "#1D4F2A", templates.DefaultColour} {
		if err := templates.CheckColour(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for c, want := range map[string]string{
		"#ffcc00": "has a contrast of 1.51:1 with the white text on it; it needs at least 4.5:1",
		"#777777": "has a contrast of 4.48:1",
		"blue":    "must be a hex colour like #0b3d91",
		"#12345":  "must be a hex colour",
		"#gg0000": "must be a hex colour",
	} {
		if err := templates.CheckColour(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", c, err, want)
		}
	}
	b := templates.Brand{Contact: "press@example.org"}.WithDefaults("Herald")
	if b.Name != "Herald" || b.Colour != templates.DefaultColour || b.ContactURL != "mailto:press@example.org" || b.Custom() {
		t.Errorf("defaults: %+v", b)
	}
	if b := (templates.Brand{Colour: "#1D4F2A", Contact: "https://example.org/contact"}).WithDefaults("Herald"); !b.Custom() || b.ContactURL != b.Contact || b.Colour != "#1d4f2a" {
		t.Errorf("%+v", b)
	}
}

func TestLoadLogo(t *testing.T) {
	dir := t.TempDir()
	var small bytes.Buffer
	if err := png.Encode(&small, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	l, err := templates.LoadLogo(write("logo.png", small.Bytes()))
	if err != nil || l.Type != "image/png" || l.Ext() != ".png" || !bytes.Equal(l.Data, small.Bytes()) {
		t.Fatalf("%+v %v", l, err)
	}
	big := append(bytes.Clone(small.Bytes()), make([]byte, templates.MaxLogo)...)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.png"):           "missing.png: no such file",
		write("big.png", big):                       "is 101 KB; a logo travels in every email, so it must be at most 100 KB",
		write("logo.svg", []byte("<svg></svg>")):    "must be a PNG, JPEG or GIF image",
		write("logo.gif", []byte("GIF89a\x01\x00")): "",
	} {
		_, err := templates.LoadLogo(path)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

func TestFuncs(t *testing.T) {
	var b strings.Builder
	tpl := texttemplate.Must(texttemplate.New("x").Funcs(templates.Funcs()).Parse(
		`{{plural 1 "release" "releases"}} {{plural 2 "release" "releases"}}|{{list .A "and"}}|{{list .B "and"}}|{{list .C "or"}}|{{join .C ", "}}`))
	if err := tpl.Execute(&b, map[string][]string{"A": {"a"}, "B": {"a", "b"}, "C": {"a", "b", "c"}}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "release releases|a|a and b|a, b or c|a, b, c" {
		t.Errorf("%q", got)
	}
}
