// Package addresstest holds the table of addresses that every entry point
// taking one (the public form, the admin console, the JSON API, the CLI
// and CSV import) is tested with, so that each gives the answer
// address.Parse gives: the same canonical form, or the same refusal.
package addresstest

import (
	"slices"
	"strings"
)

// Case is one address as someone might type it, and the rule's answer.
type Case struct {
	Name  string
	Input string
	// Want is the canonical form, or "" when the address is refused.
	Want string
	// Problem is address.Problem of the refusal, or "" when accepted.
	Problem string
}

// Accepted reports whether the rule accepts the case's input.
func (c Case) Accepted() bool { return c.Want != "" }

// Cases returns the table, a new copy each call. Two accepted cases share
// a canonical form on purpose ("user@exämple.org" and its punycode): an
// entry point that stores subscribers must make them one subscriber.
func Cases() []Case {
	a := func(n int) string { return strings.Repeat("a", n) }
	// domain(57) has 189 octets: with "@" and a 64-octet local part, 254.
	domain := func(n int) string {
		return strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", n) + ".org"
	}
	return []Case{
		{Name: "plain", Input: "ann@example.org", Want: "ann@example.org"},
		{Name: "trailing spaces", Input: "  ann@example.org   ", Want: "ann@example.org"},
		{Name: "upper case", Input: "Ann.Lee@EXAMPLE.ORG", Want: "ann.lee@example.org"},
		{Name: "unicode domain", Input: "user@exämple.org", Want: "user@xn--exmple-cua.org"},
		{Name: "punycode domain", Input: "user@xn--exmple-cua.org", Want: "user@xn--exmple-cua.org"},
		{Name: "unicode domain in upper case", Input: "USER@EXÄMPLE.ORG", Want: "user@xn--exmple-cua.org"},
		{Name: "plus and hyphen", Input: "ann+alerts@mail-1.example.org", Want: "ann+alerts@mail-1.example.org"},
		{Name: "64-octet local part", Input: a(64) + "@example.org", Want: a(64) + "@example.org"},
		{Name: "254-octet address", Input: a(64) + "@" + domain(57), Want: a(64) + "@" + domain(57)},

		{Name: "empty", Input: "", Problem: "is required"},
		{Name: "only spaces", Input: "   ", Problem: "is required"},
		{Name: "single-label domain", Input: "ops@localhost",
			Problem: "must have a full domain with a dot after the @, like name@example.org"},
		{Name: "display name", Input: "Ann <ann@example.org>",
			Problem: "must be the bare address, like name@example.org, without a name or angle brackets"},
		{Name: "65-octet local part", Input: a(65) + "@example.org", Problem: "must have at most 64 characters before the @"},
		{Name: "255-octet address", Input: a(64) + "@" + domain(58), Problem: "must be at most 254 characters"},
		{Name: "zero-width space in the domain", Input: "ann@exa\u200bmple.org",
			Problem: "must not contain invisible formatting characters, such as a zero-width space"},
		{Name: "control character", Input: "ann\x07@example.org", Problem: "must not contain line breaks or control characters"},
		{Name: "header injection", Input: "ann@example.org\r\nBcc: eve@example.org",
			Problem: "must not contain line breaks or control characters"},
		{Name: "two @", Input: "a@b@c.org", Problem: "must contain only one @"},
		{Name: "no @", Input: "ann.example.org", Problem: "must contain an @, like name@example.org"},
		{Name: "nothing before the @", Input: "@example.org", Problem: "must have a name before the @, like name@example.org"},
		{Name: "non-ASCII local part", Input: "jörg@example.org",
			Problem: "must have only ASCII letters, digits and punctuation before the @: Herald cannot deliver to accented or non-Latin letters there"},
		{Name: "quoted local part", Input: `"ann"@example.org`, Problem: "must not contain quotes before the @"},
		{Name: "space inside", Input: "ann lee@example.org", Problem: "must not contain spaces"},
		{Name: "two dots in a row", Input: "ann..lee@example.org",
			Problem: "must not start or end with a dot, or have two dots in a row, before the @"},
		{Name: "trailing dot in the domain", Input: "ann@example.org.",
			Problem: "must not have a dot at the start or end of the domain, or two dots in a row"},
		{Name: "underscore in the domain", Input: "ann@ex_ample.org", Problem: `must not contain "_" after the @`},
		{Name: "domain literal", Input: "ann@[192.0.2.1]", Problem: "must have a domain name after the @, not an IP address"},
		{Name: "IP address as domain", Input: "ann@192.0.2.1", Problem: "must have a domain name after the @, not an IP address"},
	}
}

// Canonical returns the distinct canonical forms of the accepted cases,
// sorted: the subscribers an entry point that stores every case must end
// up with.
func Canonical() []string {
	var out []string
	for _, c := range Cases() {
		if c.Accepted() {
			out = append(out, c.Want)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
