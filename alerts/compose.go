package alerts

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"herald/store"
	"herald/templates"
	"herald/templates/text"
)

// mailNames are the message templates in email/: NAME.txt defines
// "subject" and "content" (plain text), NAME.html defines "content"; both
// are wrapped by layout.txt / layout.html, which hold the footer.
var mailNames = []string{"confirm", "welcome", "manage", "address_change", "immediate", "digest"}

// subMailer renders messages from the email templates.
type subMailer struct {
	html map[string]*htmltemplate.Template
	text map[string]*texttemplate.Template
	// msgs are the words Go code puts together (footer links, preview
	// text); brand is what every message shows of the organisation.
	msgs  *templates.Messages
	brand templates.Brand
	bufs  sync.Pool
}

// parseMail parses every email template of fsys and the messages. It
// returns every problem found, each naming its file, with a mailer that
// holds the templates that parsed (ok[name]) and, unless they failed, the
// messages.
func parseMail(fsys fs.FS, brand templates.Brand) (m *subMailer, ok map[string]bool, p templates.Problems) {
	m = &subMailer{html: map[string]*htmltemplate.Template{}, text: map[string]*texttemplate.Template{}, brand: brand,
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	ok = map[string]bool{}
	msgs, err := templates.LoadMessages(fsys)
	p.Add(err)
	m.msgs = msgs
	funcs := templates.Funcs()
	for _, name := range mailNames {
		txt, html := "email/"+name+".txt", "email/"+name+".html"
		before := len(p)
		h, err := templates.ParseHTML(htmltemplate.New(name).Funcs(funcs), fsys, "email/layout.html", html)
		if err != nil {
			p.Add(err)
		} else {
			p.Add(templates.Require(h, fsys, "email/layout.html", "layout"))
			p.Add(templates.Require(h, fsys, html, mailBlocks(name, false)...))
		}
		t, err := templates.ParseText(texttemplate.New(name).Funcs(funcs), fsys, "email/layout.txt", txt)
		if err != nil {
			p.Add(err)
		} else {
			p.Add(templates.Require(t, fsys, "email/layout.txt", "layout"))
			p.Add(templates.Require(t, fsys, txt, mailBlocks(name, true)...))
		}
		m.html[name], m.text[name] = h, t
		ok[name] = len(p) == before
	}
	return m, ok, p
}

// mailBlocks are the blocks message template name must define.
func mailBlocks(name string, text bool) []string {
	blocks := []string{"content"}
	if text {
		blocks = append(blocks, "subject")
	}
	if name == "digest" {
		blocks = append(blocks, "entry")
	}
	return blocks
}

// say returns one of the messages' words.
func (m *subMailer) say(name string, kv ...any) string { return m.msgs.Say(name, kv...) }

// searchName is the name a search is stored with (message "search.name"):
// one clean line.
func (m *subMailer) searchName(d searchName) string {
	return text.Excerpt(text.Line(m.say("search.name", "Query", d.Query, "Department", d.Department,
		"Topic", d.Topic, "Type", d.Type)), 300)
}

// mailLink is a labelled link in a message.
type mailLink struct {
	Label string
	URL   string
}

// mailRelease is a release as messages show it, already cleaned.
type mailRelease struct {
	Title      string
	Department string
	Date       string
	// Paragraphs is the summary as plain-text paragraphs; Text is the same
	// wrapped for the text part.
	Paragraphs []string
	Text       string
	URL        string // the original article, when it is http(s)
	PageURL    string // the release's page on Herald
	Updated    bool
	// HTML and TextEntry are the release as a digest entry, rendered once
	// per period from the "entry" templates of digest.html and digest.txt
	// and shared by every subscriber's digest.
	HTML      htmltemplate.HTML
	TextEntry string
}

// mailGroup is one subscription's share of a digest.
type mailGroup struct {
	Name    string
	Kind    string
	URL     string // the topic or department page, where the rest are
	Entries []*mailRelease
	More    int
}

// mailData is what every message template sees; each uses its part.
type mailData struct {
	Site string
	// Brand is the organisation's name, logo, colour and footer.
	Brand     templates.Brand
	BaseURL   string
	Subject   string
	Preheader string
	Address   string

	// ActionURL is the link the message is about (confirm, manage,
	// confirm the new address), valid until ActionExpires.
	ActionURL     string
	ActionExpires string

	// The subscription a confirmation or welcome is about.
	Name               string
	Kind               string
	Frequency          string
	FrequencyPhrase    string
	OldFrequencyPhrase string

	Release *mailRelease

	// Digests.
	Period string
	Count  int
	Listed int
	Groups []mailGroup

	// Footer.
	Why            []string
	Unsubscribes   []mailLink
	UnsubscribeURL string
	ManageURL      string
}

// render executes one message into its subject and two bodies.
func (m *subMailer) render(name string, d *mailData) (subject, text, htmlBody string, err error) {
	buf := m.bufs.Get().(*bytes.Buffer)
	defer m.bufs.Put(buf)
	buf.Reset()
	d.Brand = m.brand
	if err := m.text[name].ExecuteTemplate(buf, "subject", d); err != nil {
		return "", "", "", &TemplateError{Template: name, Err: err}
	}
	subject = subSubject(buf.String())
	d.Subject = subject
	buf.Reset()
	if err := m.text[name].ExecuteTemplate(buf, "layout", d); err != nil {
		return "", "", "", &TemplateError{Template: name, Err: err}
	}
	text = subTidyText(buf.Bytes())
	buf.Reset()
	if err := m.html[name].ExecuteTemplate(buf, "layout", d); err != nil {
		return "", "", "", &TemplateError{Template: name, Err: err}
	}
	return subject, text, buf.String(), nil
}

// renderEntry renders a message template's "entry" part for r, in both
// forms. The HTML comes out of html/template, escaped, so it can be
// placed in a message as is.
func (m *subMailer) renderEntry(name string, r *mailRelease) error {
	buf := m.bufs.Get().(*bytes.Buffer)
	defer m.bufs.Put(buf)
	buf.Reset()
	if err := m.html[name].ExecuteTemplate(buf, "entry", r); err != nil {
		return &TemplateError{Template: name, Err: err}
	}
	r.HTML = htmltemplate.HTML(buf.String())
	buf.Reset()
	if err := m.text[name].ExecuteTemplate(buf, "entry", r); err != nil {
		return &TemplateError{Template: name, Err: err}
	}
	r.TextEntry = buf.String()
	return nil
}

// subTidyText trims trailing spaces and leading blank lines, keeps at
// most one blank line in a row and wraps long lines, so text templates can
// be laid out readably.
func subTidyText(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	blank := 0
	started := false
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var line []byte
		if i < 0 {
			line, b = b, nil
		} else {
			line, b = b[:i], b[i+1:]
		}
		if string(line) != "-- " { // the signature separator keeps its space
			line = bytes.TrimRight(line, " \t\r")
		}
		if len(line) == 0 {
			blank++
			continue
		}
		if started && blank > 0 {
			out.WriteByte('\n')
		}
		started = true
		blank = 0
		if utf8.RuneCount(line) > 76 {
			// Long prose lines are wrapped; a long URL stays whole.
			line = []byte(subWrap([]string{string(line)}, 72))
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.String()
}

// subSubjectMax keeps subjects readable; longer titles are cut at a word.
const subSubjectMax = 200

// subSubject is a subject line: one clean line, cut to subSubjectMax
// characters. No CR or LF can reach the header.
func subSubject(s string) string {
	return text.Excerpt(text.Line(s), subSubjectMax)
}

// subBound keeps paragraphs up to limit characters, cutting the last.
func subBound(paras []string, limit int) []string {
	n := 0
	for i, p := range paras {
		c := utf8.RuneCountInString(p)
		if n+c > limit {
			rest := limit - n
			if rest < 20 {
				if i == 0 {
					return []string{text.Excerpt(p, limit)}
				}
				paras = paras[:i]
				paras[i-1] = strings.TrimRight(paras[i-1], "…") + " …"
				return paras
			}
			paras[i] = text.Excerpt(p, rest)
			return paras[:i+1]
		}
		n += c
	}
	return paras
}

// subWrap wraps paragraphs at width columns for the text part, with a
// blank line between paragraphs. Words longer than width (URLs) stand on
// their own line.
func subWrap(paras []string, width int) string {
	var b strings.Builder
	for i, p := range paras {
		if i > 0 {
			b.WriteString("\n\n")
		}
		col := 0
		for _, w := range strings.Fields(p) {
			n := utf8.RuneCountInString(w)
			if col > 0 && col+1+n > width {
				b.WriteByte('\n')
				col = 0
			} else if col > 0 {
				b.WriteByte(' ')
				col++
			}
			b.WriteString(w)
			col += n
		}
	}
	return b.String()
}

// subHTTPURL returns u if it is an absolute http(s) URL without control
// characters, else "".
func subHTTPURL(u string) string {
	if text.Line(u) != u || strings.ContainsAny(u, " <>\"") {
		return ""
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return u
	}
	return ""
}

// frequencyPhrase says how often a frequency sends mail, in the words of
// the emails (messages "frequency.*").
func (m *subMailer) frequencyPhrase(f string) string { return m.msgs.Phrase("frequency.", f) }

// kindLabel names a subscription target kind ("topic", "department" or
// "search") for people (messages "kind.*").
func (m *subMailer) kindLabel(k string) string { return m.msgs.Kind(k) }

func (s *Service) link(path string) string { return s.cfg.BaseURL + path }

func (s *Service) unsubscribeURL(t Token) string { return s.link("/unsubscribe/" + s.keys.Sign(t)) }

func (s *Service) manageURL(subscriberID int64, now time.Time) string {
	return s.link("/manage/" + s.keys.Sign(Token{Purpose: PurposeManage, Subject: subscriberID, Expires: now.Add(ManageTTL)}))
}

func (s *Service) targetURL(sub store.Subscription) string {
	switch sub.Kind {
	case "topic":
		return s.link("/topics/" + sub.Slug)
	case "search":
		return s.link("/search?" + sub.Slug)
	}
	return s.link("/departments/" + sub.Slug)
}

// subDate formats a moment for messages in the configured zone, with the
// layout of the message "format.datetime".
func (s *Service) subDate(t time.Time) string {
	return t.In(s.cfg.Location).Format(s.mail.say("format.datetime"))
}

func (s *Service) baseData() mailData {
	return mailData{Site: s.cfg.SiteName, BaseURL: s.cfg.BaseURL, Brand: s.mail.brand}
}

// subNonce makes outbox keys of messages a person may ask for again (a
// second confirmation email is a new message, not a repeat of the first).
func subNonce() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("alerts: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func (s *Service) message(kind, key string, subscriberID int64, to, name string, d *mailData) (store.OutboxMessage, error) {
	subject, text, htmlBody, err := s.mail.render(name, d)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	if s.health != nil && name != "immediate" && name != "digest" {
		// Alerts and digests count as working once a whole run has.
		s.health.worked(name)
	}
	return store.OutboxMessage{Key: key, Kind: kind, SubscriberID: subscriberID, To: to, Subject: subject,
		Text: text, HTML: htmlBody, UnsubscribeURL: d.UnsubscribeURL}, nil
}

// composeConfirm is the message asking to confirm pending subscription p.
// Its unsubscribe link cancels the request, for whoever did not make it.
func (s *Service) composeConfirm(sub store.Subscriber, p store.Subscription, now time.Time) (store.OutboxMessage, error) {
	d := s.baseData()
	expires := now.Add(ConfirmTTL)
	d.Address = sub.Address
	d.ActionURL = s.link("/subscribe/confirm?token=" + s.keys.Sign(Token{Purpose: PurposeConfirm, Subject: p.ID, Expires: expires}))
	d.ActionExpires = s.subDate(expires)
	d.Name, d.Kind = text.Line(p.Name), s.mail.kindLabel(p.Kind)
	d.Frequency, d.FrequencyPhrase = p.Frequency, s.mail.frequencyPhrase(p.Frequency)
	d.UnsubscribeURL = s.unsubscribeURL(Token{Purpose: PurposeUnsubscribe, Subject: p.ID})
	d.Unsubscribes = []mailLink{{Label: s.mail.say("email.unsubscribe.cancel"), URL: d.UnsubscribeURL}}
	d.Preheader = s.mail.say("email.preheader.confirm", "Name", d.Name)
	return s.message(store.KindConfirm, fmt.Sprintf("confirm:%d:%s", sub.ID, subNonce()), sub.ID, sub.Address, "confirm", &d)
}

// composeWelcome is the message sent once a subscription is confirmed.
func (s *Service) composeWelcome(res Confirmation, now time.Time) (store.OutboxMessage, error) {
	p := res.Subscription
	d := s.baseData()
	d.Address = res.Subscriber.Address
	d.Name, d.Kind = text.Line(p.Name), s.mail.kindLabel(p.Kind)
	d.Frequency, d.FrequencyPhrase = p.Frequency, s.mail.frequencyPhrase(p.Frequency)
	if res.Replaced != nil {
		d.OldFrequencyPhrase = s.mail.frequencyPhrase(res.Replaced.Frequency)
	}
	d.UnsubscribeURL = s.unsubscribeURL(Token{Purpose: PurposeUnsubscribe, Subject: p.ID})
	d.Unsubscribes = []mailLink{{Label: s.mail.say("email.unsubscribe.one", "Name", d.Name), URL: d.UnsubscribeURL}}
	d.ManageURL = s.manageURL(res.Subscriber.ID, now)
	d.Preheader = s.mail.say("email.preheader.welcome", "Name", d.Name)
	return s.message(store.KindWelcome, fmt.Sprintf("welcome:%d", p.ID), res.Subscriber.ID, res.Subscriber.Address, "welcome", &d)
}

// composeManage is the magic link to the manage page.
func (s *Service) composeManage(sub store.Subscriber, now time.Time) (store.OutboxMessage, error) {
	d := s.baseData()
	expires := now.Add(ManageTTL)
	d.Address = sub.Address
	d.ActionURL = s.link("/manage/" + s.keys.Sign(Token{Purpose: PurposeManage, Subject: sub.ID, Expires: expires}))
	d.ActionExpires = s.subDate(expires)
	d.UnsubscribeURL = s.unsubscribeURL(Token{Purpose: PurposeUnsubscribeAll, Subject: sub.ID})
	d.Unsubscribes = []mailLink{{Label: s.mail.say("email.unsubscribe.everything"), URL: d.UnsubscribeURL}}
	d.Preheader = s.mail.say("email.preheader.manage")
	return s.message(store.KindManage, fmt.Sprintf("manage:%d:%s", sub.ID, subNonce()), sub.ID, sub.Address, "manage", &d)
}

// composeAddressChange asks the new address to confirm it. It has no
// unsubscribe link: its reader is not (yet) the subscriber, and one click
// must not end someone else's subscriptions.
func (s *Service) composeAddressChange(sub store.Subscriber, now time.Time) (store.OutboxMessage, error) {
	d := s.baseData()
	expires := now.Add(ConfirmTTL)
	d.Address = sub.PendingAddress
	d.ActionURL = s.link("/manage/address/" + s.keys.Sign(Token{Purpose: PurposeAddressChange, Subject: sub.ID, Aux: sub.PendingNonce, Expires: expires}))
	d.ActionExpires = s.subDate(expires)
	d.Preheader = s.mail.say("email.preheader.address_change", "Site", s.cfg.SiteName)
	return s.message(store.KindAddressChange, fmt.Sprintf("address-change:%d:%d", sub.ID, sub.PendingNonce), sub.ID, sub.PendingAddress, "address_change", &d)
}

// mailReleaseOf prepares a release for messages: clean title, summary as
// bounded plain text, and links.
func (s *Service) mailReleaseOf(r store.Release, summaryLimit int) *mailRelease {
	paras := subBound(text.Paragraphs(r.Summary), summaryLimit)
	return &mailRelease{
		Title:      text.Line(r.Title),
		Department: text.Line(r.DepartmentName),
		Date:       s.subDate(r.Published),
		Paragraphs: paras,
		Text:       subWrap(paras, 72),
		URL:        subHTTPURL(r.Link),
		PageURL:    s.link("/releases/" + strconv.FormatInt(r.ID, 10)),
		Updated:    r.AlertVersion > 1,
	}
}

// composeImmediate is one subscriber's alert about one release, whichever
// of their subscriptions matched. With one match, one-click unsubscribe
// ends that subscription; with several it ends all the subscriber's
// immediate subscriptions (the footer still links each one).
func (s *Service) composeImmediate(r store.AlertRelease, mr *mailRelease, rc store.Recipient, now time.Time) (store.OutboxMessage, error) {
	d := s.baseData()
	d.Address = rc.Address
	d.Release = mr
	d.Preheader = s.mail.say("email.preheader.immediate", "Department", mr.Department, "Title", mr.Title)
	var names []string
	for _, sub := range rc.Subscriptions {
		name := text.Line(sub.Name)
		names = append(names, s.mail.say("email.subscription", "Name", name, "Kind", s.mail.kindLabel(sub.Kind)))
		d.Unsubscribes = append(d.Unsubscribes, mailLink{Label: s.mail.say("email.unsubscribe.one", "Name", name),
			URL: s.unsubscribeURL(Token{Purpose: PurposeUnsubscribe, Subject: sub.ID})})
	}
	d.Why = []string{s.mail.say("email.why.immediate", "Subscriptions", names, "Site", s.cfg.SiteName)}
	if len(rc.Subscriptions) == 1 {
		d.UnsubscribeURL = d.Unsubscribes[0].URL
	} else {
		d.UnsubscribeURL = s.unsubscribeURL(Token{Purpose: PurposeUnsubscribeAll, Subject: rc.SubscriberID, Aux: frequencyCode(store.FrequencyImmediately)})
	}
	d.ManageURL = s.manageURL(rc.SubscriberID, now)
	key := fmt.Sprintf("immediate:%d.%d:%d", r.ID, r.AlertVersion, rc.SubscriberID)
	return s.message(store.KindImmediate, key, rc.SubscriberID, rc.Address, "immediate", &d)
}

// subMaxMessage bounds a message's encoded size below the 1 MB that mail
// systems commonly refuse, with room for headers and MIME framing.
const subMaxMessage = 900 << 10

// subEncodedSize estimates the size of text and HTML once
// quoted-printable encoded: 3 bytes for each byte that must be escaped, a
// soft line break every 73 characters.
func subEncodedSize(parts ...string) int {
	n := 0
	for _, p := range parts {
		esc := 0
		for i := 0; i < len(p); i++ {
			if c := p[i]; c == '=' || c >= 0x80 {
				esc++
			}
		}
		n += len(p) + 2*esc + 3*(len(p)/73)
	}
	return n
}
