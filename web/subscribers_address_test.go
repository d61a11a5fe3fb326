package web_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"herald/alerts/address/addresstest"
)

// addressSite is a site whose subscribers are the canonical forms of the
// shared address table, so a lookup by any accepted spelling finds one.
func addressSite(t *testing.T) *site {
	s := newSite(t)
	for _, a := range addresstest.Canonical() {
		s.subscribe(a, "topic", "human-trafficking", "daily")
	}
	return s
}

// TestConsoleAddresses looks the shared address table up in the console:
// each address is refused with the rule's words beside the field, or
// found under its canonical form. The public form, the API, the CLI and
// CSV import run the same table.
func TestConsoleAddresses(t *testing.T) {
	s := addressSite(t)
	s.login()
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			r := s.get("/admin/subscribers?address=" + url.QueryEscape(tc.Input))
			want, code := `<h2 id="subscriber-heading">`+tc.Want+"</h2>", http.StatusOK
			if !tc.Accepted() {
				want, code = "Email address "+tc.Problem+".", http.StatusBadRequest
			}
			if r.StatusCode != code || !strings.Contains(html.UnescapeString(r.body), want) {
				t.Errorf("status %d (want %d), body lacks %q:\n%s", r.StatusCode, code, want, excerptBody(r.body))
			}
		})
	}
}

// TestAPIAddresses sends the shared address table to the JSON API, in a
// query string and in a body.
func TestAPIAddresses(t *testing.T) {
	s := addressSite(t)
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			r := s.api("GET", "/api/v1/subscribers?address="+url.QueryEscape(tc.Input), nil)
			lift := s.api("POST", "/api/v1/subscribers/lift-suppression", map[string]any{"address": tc.Input})
			if !tc.Accepted() {
				for _, r := range []response{r, lift} {
					if got := r.fieldErrors(t)["address"]; r.StatusCode != http.StatusBadRequest || got != tc.Problem {
						t.Errorf("%s: status %d, address %q; want 400, %q", r.Request.URL.Path, r.StatusCode, got, tc.Problem)
					}
				}
				return
			}
			wantStatus(t, r, http.StatusOK)
			var info struct{ Address string }
			if r.json(t, &info); info.Address != tc.Want {
				t.Errorf("lookup found %q, want %q", info.Address, tc.Want)
			}
			// Not suppressed, so not found: the address itself was taken.
			wantStatus(t, lift, http.StatusNotFound)
		})
	}
}
