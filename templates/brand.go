package templates

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"math"
	"os"
	"strconv"
	"strings"
)

// Brand is how an organisation's pages and emails look and sign off, as
// the templates see it ({{.Brand.Name}}). Every field has a default but
// the footer, privacy and contact ones, which are shown only when set.
type Brand struct {
	// Name is the organisation's name, shown in the header of pages and
	// emails. Default: the site's name.
	Name string
	// LogoURL is the logo's address where the template is shown: a
	// page's path or URL, "cid:..." in an email that carries it, or ""
	// for none (the name stands alone).
	LogoURL string
	// Colour is the header's background and the accent, "#rrggbb", with
	// white text on it. Default DefaultColour.
	Colour string
	// Footer is a line under every page and email, such as the postal
	// address bulk senders are expected to show.
	Footer string
	// PrivacyURL links the privacy policy.
	PrivacyURL string
	// Contact is how to reach the organisation: an address or a URL;
	// ContactURL is the link for it (mailto: for an address).
	Contact    string
	ContactURL string
}

// LogoSrc is LogoURL for an img's src in an HTML template: the address
// comes from the config (checked there) or from Herald itself, so a
// "cid:" address, which html/template would not let through, is kept.
func (b Brand) LogoSrc() htmltemplate.URL { return htmltemplate.URL(b.LogoURL) }

// DefaultColour is Herald's own header colour.
const DefaultColour = "#0b3d91"

// WithDefaults fills what is unset: Name with site, Colour with
// DefaultColour, ContactURL from Contact.
func (b Brand) WithDefaults(site string) Brand {
	if b.Name == "" {
		b.Name = site
	}
	if b.Colour == "" {
		b.Colour = DefaultColour
	}
	b.Colour = strings.ToLower(b.Colour)
	if b.Contact != "" && b.ContactURL == "" {
		b.ContactURL = b.Contact
		if !strings.Contains(b.Contact, "://") {
			b.ContactURL = "mailto:" + b.Contact
		}
	}
	return b
}

// Custom reports whether the colour differs from Herald's own, so pages
// need the brand's style sheet.
func (b Brand) Custom() bool { return b.Colour != "" && !strings.EqualFold(b.Colour, DefaultColour) }

// MinContrast is the contrast the brand colour needs with the white text
// on it (WCAG 2 AA for normal text); links in that colour on white get
// the same.
const MinContrast = 4.5

// CheckColour checks a brand colour: "#rrggbb" (or "#rgb") dark enough
// for white text on it. The problem is worded to follow the key's name.
func CheckColour(c string) error {
	r, g, b, ok := parseHex(c)
	if !ok {
		return fmt.Errorf("%q must be a hex colour like #0b3d91", c)
	}
	if ratio := contrast(r, g, b); ratio < MinContrast {
		return fmt.Errorf("%q has a contrast of %.2f:1 with the white text on it; it needs at least %.1f:1, so choose a darker colour", c, ratio, MinContrast)
	}
	return nil
}

// Contrast returns the WCAG contrast ratio of two "#rrggbb" colours, or 0
// when either is not one.
func Contrast(a, b string) float64 {
	r1, g1, b1, ok1 := parseHex(a)
	r2, g2, b2, ok2 := parseHex(b)
	if !ok1 || !ok2 {
		return 0
	}
	l1, l2 := luminance(r1, g1, b1), luminance(r2, g2, b2)
	return (max(l1, l2) + 0.05) / (min(l1, l2) + 0.05)
}

func contrast(r, g, b uint8) float64 { return (1 + 0.05) / (luminance(r, g, b) + 0.05) }

func parseHex(c string) (r, g, b uint8, ok bool) {
	h, found := strings.CutPrefix(c, "#")
	if !found {
		return 0, 0, 0, false
	}
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 {
		return 0, 0, 0, false
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	return uint8(v >> 16), uint8(v >> 8), uint8(v), true
}

// luminance is WCAG 2's relative luminance of an sRGB colour.
func luminance(r, g, b uint8) float64 {
	lin := func(c uint8) float64 {
		s := float64(c) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// Logo is a logo file, embedded in emails as an inline image and served
// to pages.
type Logo struct {
	Data []byte
	// Type is its media type: image/png, image/jpeg or image/gif.
	Type string
}

// MaxLogo is the largest logo file accepted: it travels in every email.
const MaxLogo = 100 << 10

// LogoCID is the Content-ID a logo file travels under in emails, which
// their HTML names as "cid:" + LogoCID.
const LogoCID = "logo@herald"

// LoadLogo reads a logo file, refusing one that is missing, larger than
// MaxLogo or not a PNG, JPEG or GIF image (mail clients show no others
// inline). The problem is worded to follow the key's name.
func LoadLogo(path string) (*Logo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: no such file", path)
	}
	if st.Size() > MaxLogo {
		return nil, fmt.Errorf("%s is %d KB; a logo travels in every email, so it must be at most %d KB", path, (st.Size()+1023)>>10, MaxLogo>>10)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if t := imageType(b); t != "" {
		return &Logo{Data: b, Type: t}, nil
	}
	return nil, fmt.Errorf("%s must be a PNG, JPEG or GIF image (emails show no other kind inline)", path)
}

// imageType recognises PNG, JPEG and GIF by their first bytes.
func imageType(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "image/gif"
	}
	return ""
}

// Ext is the file extension of the logo's type, with its dot.
func (l *Logo) Ext() string {
	switch l.Type {
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	}
	return ".png"
}
