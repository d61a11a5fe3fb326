package main

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"herald/alerts"
	"herald/alerts/address"
	"herald/alerts/delivery"
	"herald/feeds/publish"
	"herald/templates"
	"herald/templates/text"
	"herald/web"
)

// problems lists what is wrong with the branding keys, each starting with
// the key's name.
func (b BrandingConfig) problems() []string {
	var p []string
	line := func(key, v string, max int) {
		switch {
		case text.HasControl(v):
			p = append(p, key+": must be one line without control characters")
		case utf8.RuneCountInString(v) > max:
			p = append(p, fmt.Sprintf("%s: must be at most %d characters", key, max))
		}
	}
	line("name", b.Name, 100)
	line("footer", b.Footer, 300)
	if b.Colour != "" {
		if err := templates.CheckColour(b.Colour); err != nil {
			p = append(p, "colour: "+err.Error())
		}
	}
	if b.Logo != "" {
		if isURL(b.Logo) {
			if !httpURL(b.Logo) {
				p = append(p, fmt.Sprintf("logo: %q must be an absolute http(s) URL or a file", b.Logo))
			}
		} else if _, err := templates.LoadLogo(b.Logo); err != nil {
			p = append(p, "logo: "+err.Error())
		}
	}
	if b.PrivacyURL != "" && !httpURL(b.PrivacyURL) {
		p = append(p, fmt.Sprintf("privacy_url: %q must be an absolute http(s) URL", b.PrivacyURL))
	}
	if c := b.Contact; c != "" {
		if isURL(c) {
			if !httpURL(c) {
				p = append(p, fmt.Sprintf("contact: %q must be an email address or an absolute http(s) URL", c))
			}
		} else if _, err := address.Parse(c); err != nil {
			p = append(p, fmt.Sprintf("contact: %q is not an email address or an http(s) URL: the %v", c, err))
		}
	}
	return p
}

func isURL(s string) bool { return strings.Contains(s, "://") }

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !text.HasControl(s) &&
		!strings.ContainsAny(s, " <>\"")
}

// branding is the brand as pages and emails show it, and the logo file
// when the logo is one (read again here: Validate has checked it).
func (c *Config) branding() (templates.Brand, *templates.Logo, error) {
	b := c.Branding
	brand := templates.Brand{Name: b.Name, Colour: b.Colour, Footer: b.Footer, PrivacyURL: b.PrivacyURL, Contact: b.Contact}
	if b.Logo == "" {
		return brand, nil, nil
	}
	if isURL(b.Logo) {
		brand.LogoURL = b.Logo
		return brand, nil, nil
	}
	logo, err := templates.LoadLogo(b.Logo)
	if err != nil {
		return brand, nil, fmt.Errorf("branding.logo: %w", err)
	}
	return brand, logo, nil
}

// mailBrand is the brand as emails show it: a logo file travels inside
// each, named by its Content-ID.
func mailBrand(brand templates.Brand, logo *templates.Logo) templates.Brand {
	if logo != nil {
		brand.LogoURL = "cid:" + templates.LogoCID
	}
	return brand
}

// inlineLogo is the logo file as delivery embeds it.
func inlineLogo(logo *templates.Logo) []delivery.InlineImage {
	if logo == nil {
		return nil
	}
	return []delivery.InlineImage{{ContentID: templates.LogoCID, Name: "logo" + logo.Ext(), Type: logo.Type, Data: logo.Data}}
}

// checkTemplates parses every page and email template and message (the
// built-in ones with templates_dir's on top) and renders each page and
// each kind of email with sample data, returning every problem at once;
// files in templates_dir that replace nothing are problems too.
func (c *Config) checkTemplates() error {
	brand, logo, err := c.branding()
	if err != nil {
		return err
	}
	fsys := templates.FS(c.TemplatesDir)
	var p templates.Problems
	strays, err := templates.Strays(fsys)
	p.Add(err)
	for _, s := range strays {
		p = append(p, s+": replaces no built-in file, so Herald never reads it (see docs/templates.md for the names)")
	}
	p.Add(alerts.CheckTemplates(c.alertsConfig(mailBrand(brand, logo))))
	p.Add(web.CheckTemplates(c.webConfig(brand, logo)))
	p.Add(publish.CheckTemplates(fsys))
	return p.Err()
}
