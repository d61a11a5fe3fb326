package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"herald/store"
	"herald/templates/text"
)

// The checks every input goes through. Each records at most one problem
// per field and returns the value cleaned (trimmed, line breaks made \n),
// which is what gets stored.

const slugHelp = "must be 1 to 100 lower-case letters, digits and single hyphens, like home-office"

// maxListItems bounds a rule list, so a rule stays cheap to match.
const maxListItems = 500

func checkSlug(fe FieldErrors, field, v string) {
	switch {
	case v == "":
		fe.Add(field, "is required")
	case text.HasControl(v):
		fe.Add(field, "must not contain line breaks or control characters")
	case !store.ValidSlug(v):
		fe.Add(field, slugHelp)
	}
}

// checkLine checks a one-line text field and returns it trimmed.
func checkLine(fe FieldErrors, field, v string, required bool, max int) string {
	v = strings.TrimSpace(v)
	switch {
	case text.HasControl(v):
		fe.Add(field, "must not contain line breaks or control characters")
	case required && v == "":
		fe.Add(field, "is required")
	case utf8.RuneCountInString(v) > max:
		fe.Add(field, "must be at most %d characters", max)
	case !utf8.ValidString(v):
		fe.Add(field, "must be UTF-8 text")
	}
	return v
}

// checkText checks a multi-line text field: line breaks are kept (as \n),
// other control characters are refused.
func checkText(fe FieldErrors, field, v string, max int) string {
	v = strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
	switch {
	case strings.ContainsFunc(v, func(r rune) bool { return r != '\n' && r != '\t' && text.IsControl(r) }):
		fe.Add(field, "must not contain control characters")
	case utf8.RuneCountInString(v) > max:
		fe.Add(field, "must be at most %d characters", max)
	case !utf8.ValidString(v):
		fe.Add(field, "must be UTF-8 text")
	}
	return v
}

// checkHTTPURL checks an absolute http(s) URL, optional unless required.
func checkHTTPURL(fe FieldErrors, field, v string, required bool) string {
	v = strings.TrimSpace(v)
	if v == "" {
		if required {
			fe.Add(field, "is required")
		}
		return v
	}
	if text.HasControl(v) || strings.ContainsAny(v, " <>\"") {
		fe.Add(field, "must be a URL without spaces, quotes or line breaks")
		return v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fe.Add(field, "must be an absolute http:// or https:// URL")
	} else if len(v) > 2000 {
		fe.Add(field, "must be at most 2000 characters")
	}
	return v
}

// cleanList trims the items of a rule list, drops empty and repeated ones,
// and checks the rest, each with check as well when it is not nil (it
// returns a problem or ""). A problem is keyed by the item's place in
// items as given ("match.keywords[2]"): the line the console points at.
func cleanList(fe FieldErrors, field string, items []string, max int, check func(string) string) []string {
	out := []string{}
	if len(items) > maxListItems {
		fe.Add(field, "must have at most %d items", maxListItems)
		return out
	}
	for i, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if text.HasControl(it) {
			fe.Add(f, "must not contain line breaks or control characters")
			continue
		}
		if utf8.RuneCountInString(it) > max {
			fe.Add(f, "must be at most %d characters", max)
			continue
		}
		// An item check refuses sits in the list all the same: the list is
		// not empty, it has a bad item.
		if check != nil {
			if p := check(it); p != "" {
				fe.Add(f, "%s", p)
			}
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

// wordProblem refuses a keyword that no text could contain as a word.
func wordProblem(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		return ""
	}
	return "must contain a letter or a digit"
}

// departmentSet is the set of department slugs a source or a rule may name.
type departmentSet map[string]bool

func (d departmentSet) problem(slug string) string {
	if d[slug] {
		return ""
	}
	return fmt.Sprintf("names no department: %q", slug)
}
