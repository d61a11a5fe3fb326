package bounce

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A message arriving at a bounce address is one of: a delivery status
// notification (RFC 3464), a complaint in the Abuse Reporting Format
// (RFC 5965), an auto-reply (RFC 3834: out of office, vacation), or a
// bounce some server wrote in its own words. Only the first two are
// standard; the last is read conservatively.

// maxParts bounds the MIME parts read from one message, and maxDepth how
// deep multiparts nest, so a hostile message costs little.
const (
	maxParts = 32
	maxDepth = 4
	// maxText is how much of a part's text is looked at.
	maxText = 64 << 10
)

// errMalformed means a message could not be read as MIME.
var errMalformed = errors.New("bounce: malformed message")

// parsed is what a message says, before it is tied to an outbox message.
type parsed struct {
	// autoReply: an automatic answer, not a report.
	autoReply bool
	// notice is set for a delivery report or a complaint that says
	// nothing about a failure (delivered, relayed, not-spam...).
	notice string
	// findings are the failures and complaints it reports, one per
	// recipient.
	findings []finding
}

// finding is one recipient's failure or complaint.
type finding struct {
	kind       Kind
	recipient  string
	status     string
	diagnostic string
}

// parseMessage reads raw as an email arriving at a bounce address.
func parseMessage(raw []byte) (parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return parsed{}, errMalformed
	}
	h := textproto.MIMEHeader(msg.Header)
	mt, params, err := contentType(h)
	if err != nil {
		return parsed{}, errMalformed
	}
	if mt == "multipart/report" {
		switch strings.ToLower(params["report-type"]) {
		case "delivery-status", "global-delivery-status":
			return parseReport(msg.Body, params["boundary"], readDSN)
		case "feedback-report":
			return parseReport(msg.Body, params["boundary"], readARF)
		}
	}
	bounceLike := fromMailSystem(msg.Header) || bounceSubject.MatchString(decodeHeader(msg.Header.Get("Subject")))
	if !bounceLike {
		if isAutoReply(msg.Header) {
			return parsed{autoReply: true}, nil
		}
		return parsed{notice: "not a bounce"}, nil
	}
	text, err := bodyText(h, msg.Body, 0)
	if err != nil {
		return parsed{}, errMalformed
	}
	if f, ok := classifyText(text); ok {
		return parsed{findings: []finding{f}}, nil
	}
	return parsed{notice: "not a clear permanent failure"}, nil
}

// contentType reads a part's media type, text/plain when it has none.
func contentType(h textproto.MIMEHeader) (string, map[string]string, error) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", map[string]string{}, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, err
	}
	return strings.ToLower(mt), params, nil
}

// decodedBody undoes a part's transfer encoding. The multipart reader
// undoes quoted-printable itself and drops the header; a top-level body
// still has it.
func decodedBody(h textproto.MIMEHeader, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &lineJoiner{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// lineJoiner drops line breaks and spaces, which base64 bodies are broken
// into and encoding/base64 does not skip all of.
type lineJoiner struct{ r io.Reader }

func (l *lineJoiner) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// reportReader reads the machine-readable part of a report into p,
// reporting whether the part was the one it reads.
type reportReader func(mediaType string, body io.Reader, p *parsed) (bool, error)

// parseReport walks a multipart/report for the part read knows.
func parseReport(body io.Reader, boundary string, read reportReader) (parsed, error) {
	if boundary == "" {
		return parsed{}, errMalformed
	}
	mr := multipart.NewReader(body, boundary)
	var p parsed
	for range maxParts {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return parsed{}, errMalformed
		}
		mt, _, err := contentType(part.Header)
		if err != nil {
			continue
		}
		done, err := read(mt, decodedBody(part.Header, io.LimitReader(part, maxText)), &p)
		if err != nil {
			return parsed{}, err
		}
		if done {
			return p, nil
		}
	}
	return parsed{}, errMalformed
}

// readDSN reads a message/delivery-status part (RFC 3464 section 2): a
// block of per-message fields, then a block per recipient.
func readDSN(mt string, body io.Reader, p *parsed) (bool, error) {
	if mt != "message/delivery-status" && mt != "message/global-delivery-status" {
		return false, nil
	}
	blocks, err := fieldBlocks(body)
	if err != nil || len(blocks) < 2 {
		return false, errMalformed
	}
	for _, b := range blocks[1:] {
		action := strings.ToLower(strings.TrimSpace(b.Get("Action")))
		status := statusCode.FindString(b.Get("Status"))
		if action != "failed" && action != "delayed" {
			continue
		}
		if status == "" {
			continue
		}
		rcpt := typedAddress(b.Get("Final-Recipient"))
		if orig := typedAddress(b.Get("Original-Recipient")); orig != "" {
			rcpt = orig
		}
		p.findings = append(p.findings, finding{
			kind: statusKind(status), recipient: rcpt, status: status,
			diagnostic: typedValue(b.Get("Diagnostic-Code")),
		})
	}
	if len(p.findings) == 0 {
		p.notice = "not a failure"
	}
	return true, nil
}

// readARF reads a message/feedback-report part (RFC 5965 section 3.5).
func readARF(mt string, body io.Reader, p *parsed) (bool, error) {
	if mt != "message/feedback-report" {
		return false, nil
	}
	blocks, err := fieldBlocks(body)
	if err != nil || len(blocks) == 0 {
		return false, errMalformed
	}
	b := blocks[0]
	ft := strings.ToLower(strings.TrimSpace(b.Get("Feedback-Type")))
	if ft != "abuse" {
		p.notice = "not a complaint"
		return true, nil
	}
	p.findings = append(p.findings, finding{kind: Complaint, recipient: typedAddress(b.Get("Original-Rcpt-To")),
		diagnostic: "feedback-type " + ft})
	return true, nil
}

// fieldBlocks reads header-like blocks separated by blank lines.
func fieldBlocks(r io.Reader) ([]textproto.MIMEHeader, error) {
	tr := textproto.NewReader(bufio.NewReader(r))
	var out []textproto.MIMEHeader
	for range maxParts {
		// Blank lines between blocks (and before the first) read as
		// empty blocks.
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			out = append(out, h)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// statusCode finds an enhanced status code (RFC 3463).
var statusCode = regexp.MustCompile(`\b[245]\.[0-9]{1,3}\.[0-9]{1,3}\b`)

// statusKind says what a failure's status means for the address: a 4.x.x
// is temporary; a 5.x.x is permanent when it is about the mailbox
// (BlamesAddress), and counts like a temporary one otherwise, since a
// refusal of the message's content or of the sender says nothing certain
// about the address.
func statusKind(status string) Kind {
	if strings.HasPrefix(status, "5.") && BlamesAddress(status) {
		return Permanent
	}
	return Transient
}

// BlamesAddress reports whether an enhanced status code (RFC 3463) is
// about the recipient's mailbox (unknown user, mailbox disabled or full)
// rather than the message or the sender: every addressing status but the
// sender's (x.1.7, x.1.8) and the mailbox statuses x.2.0 to x.2.2 (x.2.3
// is "message too big"). It is the one rule both delivery and bounce
// processing go by.
func BlamesAddress(status string) bool {
	parts := strings.Split(status, ".")
	if len(parts) != 3 {
		return false
	}
	detail, err := strconv.Atoi(parts[2])
	if err != nil {
		return false
	}
	switch parts[1] {
	case "1":
		return detail != 7 && detail != 8
	case "2":
		return detail <= 2
	}
	return false
}

// typedAddress reads "rfc822; user@example.org" as the address.
func typedAddress(v string) string {
	v = typedValue(v)
	return strings.Trim(v, "<> ")
}

// typedValue drops the "type;" in front of a DSN field's value.
func typedValue(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	return strings.Join(strings.Fields(v), " ")
}

// fromMailSystem reports whether the message comes from a mail system
// rather than a person: the null return path or a mailer-daemon.
func fromMailSystem(h mail.Header) bool {
	if strings.TrimSpace(h.Get("Return-Path")) == "<>" {
		return true
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil {
		return false
	}
	local, _, _ := strings.Cut(strings.ToLower(from.Address), "@")
	return local == "mailer-daemon" || local == "postmaster"
}

// bounceSubject matches the subjects common mail servers give the
// bounces they write without a delivery-status part.
var bounceSubject = regexp.MustCompile(`(?i)^\s*(undeliverable|undelivered mail returned to sender|delivery status notification \(failure\)|mail delivery failed|failure notice|returned mail|delivery failure|mail delivery failure|undeliverable mail|delivery has failed)`)

// isAutoReply recognises automatic answers (RFC 3834 and the headers
// common vacation responders set).
func isAutoReply(h mail.Header) bool {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		return true
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Response"} {
		if h.Get(k) != "" {
			return true
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "auto_reply", "auto-reply":
		return true
	}
	return autoReplySubject.MatchString(decodeHeader(h.Get("Subject")))
}

var autoReplySubject = regexp.MustCompile(`(?i)^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|auto:|autoreply|vacation|away from)`)

// decodeHeader decodes RFC 2047 encoded words, keeping the text as it is
// when they are broken.
func decodeHeader(v string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// bodyText returns the plain text of a message or part: the text/plain
// parts of a multipart, at most maxText bytes in all.
func bodyText(h textproto.MIMEHeader, body io.Reader, depth int) (string, error) {
	mt, params, err := contentType(h)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth || params["boundary"] == "" {
			return "", errMalformed
		}
		mr := multipart.NewReader(body, params["boundary"])
		var sb strings.Builder
		for range maxParts {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", errMalformed
			}
			t, err := bodyText(part.Header, part, depth+1)
			if err != nil {
				return "", err
			}
			sb.WriteString(t)
			if sb.Len() >= maxText {
				break
			}
		}
		return sb.String(), nil
	}
	if mt != "text/plain" {
		return "", nil
	}
	b, err := io.ReadAll(io.LimitReader(decodedBody(h, body), maxText))
	if err != nil {
		return "", errMalformed
	}
	return string(b), nil
}

// permanentPhrases are what servers write for a mailbox that does not
// exist or is closed, in bounces without a status part. Phrases that
// could mean a passing trouble ("mailbox unavailable", "quota") are not
// here: such a bounce is left alone.
var permanentPhrases = []string{
	"user unknown", "unknown user", "no such user", "no such recipient", "unknown recipient",
	"recipient not found", "mailbox not found", "no mailbox here", "address not found",
	"does not exist", "account has been disabled", "account is disabled", "invalid recipient",
}

// temporaryPhrases mark a warning about a delay, which no text bounce is
// counted for.
var temporaryPhrases = []string{"will retry", "will continue to try", "still trying", "delayed", "this is a warning", "temporar"}

// classifyText reads a bounce without a status part: a permanent failure
// only when the text says so plainly (an address status 5.1.x or 5.2.x,
// or a phrase for an unknown mailbox) and says nothing of retrying.
func classifyText(text string) (finding, bool) {
	lower := strings.ToLower(text)
	for _, p := range temporaryPhrases {
		if strings.Contains(lower, p) {
			return finding{}, false
		}
	}
	for _, code := range statusCode.FindAllString(text, 8) {
		if strings.HasPrefix(code, "5.") && BlamesAddress(code) {
			return finding{kind: Permanent, status: code, diagnostic: lineWith(text, code)}, true
		}
	}
	for _, p := range permanentPhrases {
		if i := strings.Index(lower, p); i >= 0 {
			return finding{kind: Permanent, status: "5.0.0", diagnostic: lineWith(text, text[i:i+len(p)])}, true
		}
	}
	return finding{}, false
}

// lineWith returns the line of text that holds s, trimmed and bounded.
func lineWith(text, s string) string {
	i := strings.Index(text, s)
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := len(text)
	if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
		end = i + j
	}
	line := strings.TrimSpace(text[start:end])
	if len(line) > 300 {
		cut := 300
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut]
	}
	return line
}
