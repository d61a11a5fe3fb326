// Package address owns the one rule for subscriber email addresses: what
// Herald accepts from a person or a file, and the canonical form it stores,
// looks up and writes into the To: header. Every entry point (the public
// forms, the admin console and JSON API, the CLI, CSV import) and delivery
// call Parse, so they all give the same answer and one mailbox is one
// subscriber however it was spelt.
//
// The canonical form is plain ASCII: the domain is IDNA-normalised to its
// punycode form and the whole address lower-cased. Delivery therefore never
// needs SMTPUTF8, which Herald's SMTP client (go-mail) uses only when the
// relay happens to offer it and cannot require; an address that would need
// it (letters outside ASCII before the @) is refused with a message saying
// so, rather than accepted and lost later.
package address

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"herald/templates/text"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 (section 4.5.3.1): a local part of at most 64 octets
// and a path of at most 256, which leaves 254 for the address itself.
const (
	maxLocal   = 64
	maxAddress = 254
	// maxInput bounds the work done on input before it is normalised: a
	// domain in UTF-8 can be longer than its punycode form, but not by this
	// much.
	maxInput = 4 * maxAddress
	maxLabel = 63
)

// refusal says why an address was refused. Its problem reads after the
// words "email address", so each entry point can put it beside its own
// field or name (see Problem); its code names the same problem for pages
// that say it in words of their own (see Reason). It never quotes the
// address, which may reach a log.
type refusal struct {
	code    string
	problem string
	// char is the character a "…_char" refusal is about.
	char string
}

func (e *refusal) Error() string { return "email address " + e.problem }

func refuse(code, problem string) (string, error) {
	return "", &refusal{code: code, problem: problem}
}

func refuseChar(code string, c byte, problem string) (string, error) {
	return "", &refusal{code: code, problem: problem, char: string(c)}
}

// Problem returns what is wrong with an address Parse refused, worded to
// follow "email address": "must contain an @, like name@example.org". The
// console shows it as "Email address must contain an @…", the CLI as
// `email address "x" must…`.
func Problem(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.problem
	}
	return err.Error()
}

// Reason names the problem of an address Parse refused by a code, for the
// public pages, which say it in the words of their templates: "required",
// "no_at", "local_char" (with char, the character refused) and so on,
// one for each of Problem's sentences. It is "" for an error that is not
// a refusal.
func Reason(err error) (code, char string) {
	var r *refusal
	if errors.As(err, &r) {
		return r.code, r.char
	}
	return "", ""
}

// Reasons lists every code Reason returns.
func Reasons() []string {
	return []string{"required", "too_long", "not_utf8", "control", "invisible", "angle_brackets", "spaces", "no_at",
		"many_at", "no_local", "non_ascii_local", "local_char", "local_dots", "local_too_long", "no_domain", "ip_address",
		"domain_dots", "label_too_long", "single_label", "domain_char", "domain_hyphen", "bad_domain"}
}

// Parse checks an email address and returns its canonical form, or an
// error saying what is wrong with it (see Problem).
//
// It accepts a bare address (surrounding white space is trimmed) whose
// local part is an unquoted dot-atom of at most 64 ASCII characters and
// whose domain is a host name with at least one dot, in Unicode or ASCII.
// The domain is converted with the IDNA lookup profile, so "exämple.org"
// and "xn--exmple-cua.org" are the same; the local part is lower-cased
// too, which RFC 5321 leaves to the receiving system, so that
// "Ann@example.org" and "ann@example.org" are one subscriber.
//
// Single-label domains ("localhost", "intranet") are refused everywhere: a
// public alert service mails people on the internet, and such a name would
// resolve against the relay's own search path, mailing a machine's local
// users instead. Domain literals ("[192.0.2.1]") and numeric top-level
// labels are refused for the same reason.
func Parse(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return refuse("required", "is required")
	case len(s) > maxInput:
		return refuse("too_long", "must be at most 254 characters")
	case !utf8.ValidString(s):
		return refuse("not_utf8", "must be UTF-8 text")
	case text.HasControl(s):
		return refuse("control", "must not contain line breaks or control characters")
	case strings.ContainsFunc(s, isFormat):
		return refuse("invisible", "must not contain invisible formatting characters, such as a zero-width space")
	case strings.ContainsAny(s, "<>"):
		return refuse("angle_brackets", "must be the bare address, like name@example.org, without a name or angle brackets")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return refuse("spaces", "must not contain spaces")
	}
	switch strings.Count(s, "@") {
	case 0:
		return refuse("no_at", "must contain an @, like name@example.org")
	case 1:
	default:
		return refuse("many_at", "must contain only one @")
	}
	local, domain, _ := strings.Cut(s, "@")
	local, err := checkLocal(local)
	if err != nil {
		return "", err
	}
	domain, err = checkDomain(domain)
	if err != nil {
		return "", err
	}
	a := local + "@" + domain
	if len(a) > maxAddress {
		return refuse("too_long", "must be at most 254 characters")
	}
	return a, nil
}

// checkLocal returns the local part lower-cased, or why it is refused.
func checkLocal(local string) (string, error) {
	switch {
	case local == "":
		return refuse("no_local", "must have a name before the @, like name@example.org")
	case strings.ContainsFunc(local, func(r rune) bool { return r >= utf8.RuneSelf }):
		return refuse("non_ascii_local", "must have only ASCII letters, digits and punctuation before the @: Herald cannot deliver to accented or non-Latin letters there")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return refuseChar("local_char", c, "must not contain "+quoteByte(c)+" before the @")
		}
	}
	switch {
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return refuse("local_dots", "must not start or end with a dot, or have two dots in a row, before the @")
	case len(local) > maxLocal:
		return refuse("local_too_long", "must have at most 64 characters before the @")
	}
	return strings.ToLower(local), nil
}

// checkDomain returns the domain's canonical ASCII form, or why it is
// refused.
func checkDomain(domain string) (string, error) {
	if domain == "" {
		return refuse("no_domain", "must have a domain after the @, like name@example.org")
	}
	if strings.HasPrefix(domain, "[") {
		return refuse("ip_address", "must have a domain name after the @, not an IP address")
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", domainProblem(domain)
	}
	ascii = strings.ToLower(ascii)
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return refuse("domain_dots", "must not have a dot at the start or end of the domain, or two dots in a row")
		case len(l) > maxLabel:
			return refuse("label_too_long", "must not have a part of the domain longer than 63 characters")
		}
	}
	switch {
	case len(labels) < 2:
		return refuse("single_label", "must have a full domain with a dot after the @, like name@example.org")
	case strings.Trim(labels[len(labels)-1], "0123456789") == "":
		return refuse("ip_address", "must have a domain name after the @, not an IP address")
	}
	return ascii, nil
}

// domainProblem names what the IDNA lookup profile refused, as well as it
// can be said in a line: its own errors quote the label and use codes.
func domainProblem(domain string) error {
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if c < utf8.RuneSelf && c != '.' && c != '-' && !isLetterDigit(c) {
			_, err := refuseChar("domain_char", c, "must not contain "+quoteByte(c)+" after the @")
			return err
		}
	}
	for _, l := range strings.Split(domain, ".") {
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			_, err := refuse("domain_hyphen", "must not have a hyphen at the start or end of a part of the domain")
			return err
		}
	}
	_, err := refuse("bad_domain", "must have a valid domain name after the @, like example.org")
	return err
}

// isFormat reports invisible format characters (zero-width space and
// joiners, bidirectional overrides, soft hyphen, byte-order mark): IDNA
// would silently drop some of them, so two addresses that look the same
// could differ, or one that looks like another could be something else.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

func isLetterDigit(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isAtext reports the characters RFC 5322 allows in an unquoted local part
// besides the dot.
func isAtext(c byte) bool {
	return isLetterDigit(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// quoteByte shows a refused ASCII character in a message.
func quoteByte(c byte) string {
	if c == '"' {
		return "quotes"
	}
	return `"` + string(c) + `"`
}
