package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"

	"herald/alerts/address"
	"herald/store"
)

// maxMessageBytes is the largest message Herald sends. The digest composer
// keeps well below it; a message over it is a bug to surface, not to send.
const maxMessageBytes = 1 << 20

// mimeBuilder renders outbox rows as multipart/alternative messages with
// the headers bulk mail needs to be accepted and handled well.
type mimeBuilder struct {
	from    *mail.Address
	replyTo *mail.Address
	// listID is the List-Id header's value, ready to write.
	listID string
	// idDomain is the right-hand side of Message-IDs: From's domain.
	idDomain string
	// returnPath gives a message's envelope sender (Config.ReturnPath).
	returnPath func(id int64) string
	// inline are the images messages may carry (Config.Inline).
	inline []InlineImage
}

func newMIMEBuilder(cfg Config) (*mimeBuilder, error) {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("delivery: mail from %q: %w", cfg.From, err)
	}
	b := &mimeBuilder{from: from, returnPath: cfg.ReturnPath, inline: cfg.Inline}
	b.idDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if !mimeDotAtom(b.idDomain) {
		return nil, fmt.Errorf("delivery: mail from %q: domain %q cannot name Message-IDs", cfg.From, b.idDomain)
	}
	if cfg.ReplyTo != "" {
		if b.replyTo, err = mail.ParseAddress(cfg.ReplyTo); err != nil {
			return nil, fmt.Errorf("delivery: mail reply_to %q: %w", cfg.ReplyTo, err)
		}
	}
	listID := cfg.ListID
	if listID == "" {
		listID = "alerts." + b.idDomain
	}
	if b.listID, err = mimeListID(listID); err != nil {
		return nil, fmt.Errorf("delivery: mail list_id %q: %w", cfg.ListID, err)
	}
	return b, nil
}

// mimeListID formats a List-Id (RFC 2919) from "Name <label.domain>" or a
// bare "label.domain".
func mimeListID(s string) (string, error) {
	s = strings.TrimSpace(s)
	phrase, label := "", s
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if !strings.HasSuffix(s, ">") {
			return "", errors.New("must end with '>' after '<'")
		}
		phrase, label = strings.TrimSpace(s[:i]), s[i+1:len(s)-1]
	}
	if !mimeDotAtom(label) || !strings.Contains(label, ".") {
		return "", fmt.Errorf("%q is not a list label like alerts.example.org", label)
	}
	if phrase == "" {
		return "<" + label + ">", nil
	}
	if strings.ContainsFunc(phrase, unicode.IsControl) {
		return "", errors.New("the name has control characters")
	}
	return mimePhrase(phrase) + " <" + label + ">", nil
}

// mimePhrase writes a display name: bare when it is plain words, quoted
// when it has specials, an encoded word when it is not ASCII.
func mimePhrase(s string) string {
	plain, ascii := true, true
	for _, r := range s {
		switch {
		case r >= utf8.RuneSelf:
			ascii, plain = false, false
		case r == ' ' || mimeAtext(r):
		default:
			plain = false
		}
	}
	switch {
	case plain:
		return s
	case ascii:
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	default:
		return mime.QEncoding.Encode("utf-8", s)
	}
}

func mimeAtext(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// mimeDotAtom reports whether s is atoms joined by single dots, the form
// Message-IDs and list labels take.
func mimeDotAtom(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" || strings.ContainsFunc(atom, func(r rune) bool { return !mimeAtext(r) }) {
			return false
		}
	}
	return true
}

// build composes one outbox row and returns it with its envelope: sender
// and recipient as SMTP wants them. Errors are about the row itself and
// mean it can never be sent; they do not quote the recipient's address,
// which ends up in logs.
func (b *mimeBuilder) build(m store.OutboxMessage) (msg *gomail.Msg, from, rcpt string, err error) {
	if m.Text == "" && m.HTML == "" {
		return nil, "", "", errors.New("message has no body")
	}
	// The canonical form is ASCII (the domain in punycode), so the To:
	// header and RCPT TO never need SMTPUTF8, which go-mail cannot insist
	// on.
	to, err := address.Parse(m.To)
	if err != nil {
		return nil, "", "", fmt.Errorf("recipient address is not valid (%w)", err)
	}
	subject, err := mimeHeaderText(m.Subject)
	if err != nil {
		return nil, "", "", fmt.Errorf("subject %w", err)
	}
	msgID, err := b.messageID(m.MessageID)
	if err != nil {
		return nil, "", "", err
	}
	var unsubscribe string
	if m.UnsubscribeURL != "" {
		if unsubscribe, err = mimeUnsubscribeURL(m.UnsubscribeURL); err != nil {
			return nil, "", "", err
		}
	}

	// The boundary comes from the Message-ID, so a message sent again
	// after a crash is the same bytes; it only has to be absent from the
	// parts, which quoted-printable encoding all but guarantees.
	boundary := "herald-" + strings.NewReplacer("@", "-", ".", "-").Replace(msgID)
	if len(boundary) > 70 || strings.Contains(m.Text, boundary) || strings.Contains(m.HTML, boundary) {
		boundary = ""
	}
	inline := b.inlineFor(m.HTML)
	if len(inline) > 0 {
		// The HTML and its images make a multipart/related around the
		// alternatives, and go-mail gives every level the one boundary
		// it is told: such a message takes go-mail's own boundaries, and
		// a copy sent again after a crash differs in them alone (its
		// Message-ID and Date are the same).
		boundary = ""
	}
	msg = gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithBoundary(boundary))
	msg.FromMailAddress(b.from)
	msg.ToMailAddress(&mail.Address{Address: to})
	if b.replyTo != nil {
		msg.ReplyToMailAddress(b.replyTo)
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(msgID)
	// Date is when the message was composed, not when this attempt is
	// made: retries carry the same Date, as the same message should.
	date := m.CreatedAt
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	// These go in as generic headers, which go-mail writes in sorted
	// order; its "preformatted" ones come out of a map in random order,
	// and a message sent again must be the same bytes. The values are
	// plain ASCII (checked above), so go-mail leaves them as they are.
	// go-mail's SetListUnsubscribeOneClick insists on https, which a demo
	// on http://127.0.0.1 does not have; the headers are the same.
	msg.SetGenHeader("List-Id", b.listID)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	if unsubscribe != "" {
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, "<"+unsubscribe+">")
		msg.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	}
	for _, img := range inline {
		if err := msg.EmbedReader(img.Name, bytes.NewReader(img.Data), gomail.WithFileContentID("<"+img.ContentID+">"),
			gomail.WithFileContentType(gomail.ContentType(img.Type))); err != nil {
			return nil, "", "", fmt.Errorf("embedding %s: %w", img.Name, err)
		}
	}
	envFrom := &mail.Address{Address: b.from.Address}
	if b.returnPath != nil {
		rp, err := mail.ParseAddress(b.returnPath(m.ID))
		if err != nil {
			return nil, "", "", fmt.Errorf("return path is not an address (%w)", err)
		}
		envFrom.Address = rp.Address
	}
	envTo := &mail.Address{Address: to}
	return msg, envFrom.String(), envTo.String(), nil
}

// inlineFor returns the inline images an HTML body shows.
func (b *mimeBuilder) inlineFor(html string) []InlineImage {
	var out []InlineImage
	for _, img := range b.inline {
		if html != "" && strings.Contains(html, "cid:"+img.ContentID) {
			out = append(out, img)
		}
	}
	return out
}

// messageID completes a row's Message-ID: a bare local part gets From's
// domain; a full one is kept if well formed.
func (b *mimeBuilder) messageID(id string) (string, error) {
	left, right, full := strings.Cut(id, "@")
	if !full {
		right = b.idDomain
	}
	if !mimeDotAtom(left) || !mimeDotAtom(right) {
		return "", errors.New("message id is not well formed")
	}
	return left + "@" + right, nil
}

// mimeHeaderText refuses line breaks (a header injection, or a composer
// bug) and drops other control characters; go-mail then encodes what is
// not ASCII.
func mimeHeaderText(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("contains a line break")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r), r == utf8.RuneError:
			return -1
		}
		return r
	}, s), nil
}

// mimeUnsubscribeURL checks an unsubscribe link before it is written into
// a header verbatim: absolute http(s), nothing that could end the angle
// brackets or the line.
func mimeUnsubscribeURL(s string) (string, error) {
	bad := errors.New("unsubscribe link is not an absolute http(s) URL fit for a header")
	if len(s) > 900 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == ',' }) {
		return "", bad
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", bad
	}
	return s, nil
}

// mimeRender writes msg into buf (reset first).
func mimeRender(msg *gomail.Msg, buf *bytes.Buffer) error {
	buf.Reset()
	if _, err := msg.WriteTo(buf); err != nil {
		return fmt.Errorf("rendering message: %w", err)
	}
	return nil
}

// mimeCheckSize refuses a message over the size limit.
func mimeCheckSize(raw []byte) error {
	if len(raw) > maxMessageBytes {
		return fmt.Errorf("message is %d bytes, over the limit of %d", len(raw), maxMessageBytes)
	}
	return nil
}

// Header is one header field of a message, its value decoded for people.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Headers returns the header fields message m would be sent with, in
// order, as Send would write them (the DKIM signature, added last, aside):
// for previews. m needs no id; one of 0 stands for a row not yet stored.
func (d *Deliverer) Headers(m store.OutboxMessage) ([]Header, error) {
	if m.MessageID == "" {
		m.MessageID = store.MessageIDFor(m.Key)
	}
	msg, _, _, err := d.mime.build(m)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	var buf bytes.Buffer
	if err := mimeRender(msg, &buf); err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	head, _, _ := bytes.Cut(buf.Bytes(), []byte("\r\n\r\n"))
	var out []Header
	dec := new(mime.WordDecoder)
	for line := range strings.SplitSeq(string(head), "\r\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(out) > 0 {
			last := &out[len(out)-1]
			last.Value = strings.TrimSpace(last.Value + " " + strings.TrimSpace(line))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, Header{Name: name, Value: strings.TrimSpace(value)})
	}
	for i, h := range out {
		if v, err := dec.DecodeHeader(h.Value); err == nil {
			out[i].Value = v
		}
	}
	return out, nil
}
