package main_test

// What the reliability cases share besides the harness: a small newsroom
// to publish and subscribe to, and readers of the feeds and emails Herald
// makes, to check them against it.

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"herald/alerts/smtptest"
	"herald/cmd/herald/harness"
)

// ---- a small newsroom: departments, topics, releases, subscribers ----

var (
	worldKeywords = []string{"harbour", "lighthouse", "ferry", "estuary", "dune", "pier", "reef", "lagoon", "marina", "seawall"}
	worldDepts    = []struct{ Slug, Name string }{{"north", "Northern Coast Office"}, {"south", "Southern Coast Office"}, {"west", "Western Isles Office"}}
	noticeRE      = regexp.MustCompile(`Notice \d+-\d+-\d+`)
)

// world is the test's own account of what exists: what the publisher
// offered and who subscribed to what. Herald's results are checked against
// it, never against Herald's own records.
type world struct {
	items []worldItem
	subs  []worldSub
}

// worldItem is a release with what the test knows of it: its department,
// the topic keywords in its title and the wave that brought it.
type worldItem struct {
	harness.Item
	Dept     string
	Keywords []string
	Wave     int
}

// worldSub is a subscriber: its address, frequency and targets (a
// department slug, or topic keywords).
type worldSub struct {
	Address   string
	Frequency string
	Dept      string
	Topics    []string
}

func (w *world) configure(in *harness.Instance, pub *harness.Publisher) {
	var depts, sources, topics []map[string]any
	for _, d := range worldDepts {
		depts = append(depts, map[string]any{"slug": d.Slug, "name": d.Name})
		sources = append(sources, map[string]any{"name": d.Slug + "-news", "url": pub.FeedURL(d.Slug + "-news"), "department": d.Slug, "format": "rss"})
	}
	for _, k := range worldKeywords {
		topics = append(topics, map[string]any{"slug": k, "title": strings.ToUpper(k[:1]) + k[1:] + " works",
			"match": map[string]any{"keywords": []string{k}}})
	}
	in.Config["departments"], in.Config["sources"], in.Config["topics"] = depts, sources, topics
}

// wave makes n releases per department for wave w; wave 0 is the back
// catalogue, published days ago.
func (w *world) wave(pub *harness.Publisher, wave, n int) {
	published := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	if wave == 0 {
		published = published.Add(-72 * time.Hour)
	}
	for s, d := range worldDepts {
		for i := range n {
			k1 := worldKeywords[(wave*3+i*5+s)%len(worldKeywords)]
			k2 := worldKeywords[(wave*7+i+2*s+1)%len(worldKeywords)]
			kws := []string{k1}
			if k2 != k1 {
				kws = append(kws, k2)
			}
			it := worldItem{Dept: d.Slug, Keywords: kws, Wave: wave, Item: harness.Item{
				GUID:      fmt.Sprintf("%s-%d-%d", d.Slug, wave, i),
				Title:     fmt.Sprintf("Notice %d-%d-%d: %s works", wave, s, i, strings.Join(kws, " and ")),
				Summary:   "<p>Details of the notice and its timetable.</p>",
				Published: published.Add(time.Duration(i) * time.Second)}}
			w.items = append(w.items, it)
			pub.Add(d.Slug+"-news", it.Item)
		}
	}
}

// subscribe makes n subscribers: a quarter immediate, the rest daily; a
// third follow a department, the others one or two topics.
func (w *world) subscribe(n int) []string {
	var rows []string
	for i := range n {
		s := worldSub{Address: fmt.Sprintf("reader%04d@example.net", i), Frequency: "daily"}
		if i%4 == 0 {
			s.Frequency = "immediately"
		}
		if i%3 == 0 {
			s.Dept = worldDepts[(i/3)%len(worldDepts)].Slug
			rows = append(rows, fmt.Sprintf("%s,,%s,%s", s.Address, s.Dept, s.Frequency))
		} else {
			s.Topics = []string{worldKeywords[(i*7)%len(worldKeywords)]}
			if t2 := worldKeywords[(i*3+1)%len(worldKeywords)]; i%2 == 0 && t2 != s.Topics[0] {
				s.Topics = append(s.Topics, t2)
			}
			for _, k := range s.Topics {
				rows = append(rows, fmt.Sprintf("%s,%s,,%s", s.Address, k, s.Frequency))
			}
		}
		w.subs = append(w.subs, s)
	}
	return rows
}

func (s worldSub) matches(it worldItem) bool {
	if s.Dept != "" {
		return it.Dept == s.Dept
	}
	for _, k := range s.Topics {
		if slices.Contains(it.Keywords, k) {
			return true
		}
	}
	return false
}

// inFeed lists the titles a feed key ("all", "department:x", "topic:x")
// must hold.
func (w *world) inFeed(key string) []string {
	var out []string
	for _, it := range w.items {
		kind, slug, _ := strings.Cut(key, ":")
		if kind == "all" || (kind == "department" && it.Dept == slug) || (kind == "topic" && slices.Contains(it.Keywords, slug)) {
			out = append(out, it.Title)
		}
	}
	sort.Strings(out)
	return out
}

func (w *world) feedKeys() []string {
	keys := []string{"all"}
	for _, d := range worldDepts {
		keys = append(keys, "department:"+d.Slug)
	}
	for _, k := range worldKeywords {
		keys = append(keys, "topic:"+k)
	}
	return keys
}

// ---- feeds ----

type atomDoc struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Entries []struct {
		ID    string `xml:"id"`
		Title struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"title"`
	} `xml:"entry"`
}

// title is an Atom entry title as text: type="html" titles are unescaped.
func atomTitle(typ, text string) string {
	if typ == "html" || typ == "xhtml" {
		return html.UnescapeString(text)
	}
	return text
}

type rssDoc struct {
	XMLName xml.Name `xml:"rss"`
	Items   []struct {
		Title string `xml:"title"`
		GUID  string `xml:"guid"`
	} `xml:"channel>item"`
}

type jsonDoc struct {
	Version string `json:"version"`
	Items   []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"items"`
}

// feedPath is the URL path of a feed key without its extension.
func feedPath(key string) string {
	kind, slug, _ := strings.Cut(key, ":")
	switch kind {
	case "department":
		return "/feeds/departments/" + slug
	case "topic":
		return "/feeds/topics/" + slug
	}
	return "/feeds/all"
}

// feedTitles checks one feed in its three formats (well-formed XML and
// JSON, the same entries in each) and returns every title it holds,
// walking the Atom feed's RFC 5005 archive pages back to the first. The
// current feed may repeat entries of the newest archive page (it always
// holds the newest entries); each entry id counts once.
func feedTitles(t *testing.T, in *harness.Instance, key string) (titles []string, docs int) {
	t.Helper()
	path := feedPath(key)
	var current []string
	next := path + ".atom"
	seen := map[string]bool{}
	ids := map[string]string{}
	for next != "" {
		if seen[next] {
			t.Fatalf("%s: archive chain loops at %s", key, next)
		}
		seen[next] = true
		var doc atomDoc
		if err := xml.Unmarshal(in.Get(next), &doc); err != nil {
			t.Fatalf("%s is not a valid Atom document: %v", next, err)
		}
		docs++
		for _, e := range doc.Entries {
			title := atomTitle(e.Title.Type, e.Title.Text)
			if prev, ok := ids[e.ID]; ok && prev != title {
				t.Errorf("%s: entry %s is %q in one document and %q in another", key, e.ID, prev, title)
			} else if !ok {
				titles = append(titles, title)
			}
			ids[e.ID] = title
			if next == path+".atom" {
				current = append(current, title)
			}
		}
		next = ""
		for _, l := range doc.Links {
			if l.Rel == "prev-archive" {
				next = strings.TrimPrefix(l.Href, in.Base())
			}
		}
	}
	var rss rssDoc
	if err := xml.Unmarshal(in.Get(path+".rss"), &rss); err != nil {
		t.Fatalf("%s.rss is not valid RSS: %v", path, err)
	}
	var js jsonDoc
	if err := json.Unmarshal(in.Get(path+".json"), &js); err != nil || js.Version != "https://jsonfeed.org/version/1.1" {
		t.Fatalf("%s.json is not a JSON Feed 1.1 document: %v", path, err)
	}
	var rt, jt []string
	for _, it := range rss.Items {
		rt = append(rt, it.Title)
	}
	for _, it := range js.Items {
		jt = append(jt, it.Title)
	}
	if !slices.Equal(rt, current) || !slices.Equal(jt, current) {
		t.Errorf("%s: the Atom, RSS and JSON feeds list different entries:\natom %q\nrss  %q\njson %q", key, current, rt, jt)
	}
	return titles, docs + 2
}

// ---- mail ----

// messageID is the Message-ID header of the outbox row whose message_id is
// id: the right-hand side is the domain of the From address.
func messageID(id string) string { return "<" + id + "@news.example.org>" }

// gotMail is one message the SMTP server accepted, decoded.
type gotMail struct {
	ID, To, Subject, Text string
}

func decodeMails(t *testing.T, msgs []smtptest.Message) []gotMail {
	t.Helper()
	out := make([]gotMail, 0, len(msgs))
	for _, m := range msgs {
		g, err := decodeMail(m.Data)
		if err != nil {
			t.Fatalf("a message Herald sent cannot be read: %v", err)
		}
		g.ID = m.MessageID
		if len(m.To) == 1 {
			g.To = strings.ToLower(m.To[0])
		}
		out = append(out, g)
	}
	return out
}

// decodeMail reads a message's Message-ID, decoded subject and plain-text
// part.
func decodeMail(raw []byte) (gotMail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return gotMail{}, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return gotMail{}, fmt.Errorf("subject %q: %w", msg.Header.Get("Subject"), err)
	}
	g := gotMail{ID: msg.Header.Get("Message-ID"), Subject: subject}
	if to, err := mail.ParseAddress(msg.Header.Get("To")); err == nil {
		g.To = strings.ToLower(to.Address)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(msg.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				b, _ := io.ReadAll(p)
				g.Text = string(b)
			}
		}
	}
	return g, nil
}

// mailCheck is what checkMail found.
type mailCheck struct {
	immediates, digests, lost, wrong, dups int
}

// checkMail checks the mail Herald sent against the world, once the
// outbox has settled: every outbox row sent and received at least once
// under its Message-ID, nothing received that the outbox does not hold;
// each immediate subscriber got one alert per matching release and each
// daily subscriber each matching release in exactly one digest, and
// nobody got anything else. Copies of one message (a crash in flight)
// are counted, not faulted.
func (w *world) checkMail(t *testing.T, in *harness.Instance, smtp *smtptest.Server) mailCheck {
	t.Helper()
	// Mail: every outbox row sent, each received at least once under its
	// Message-ID, nothing received that is not in the outbox.
	outbox := in.QueryStrings(`SELECT message_id, to_addr, kind, status FROM outbox`)
	byID := map[string][]string{}
	for _, r := range outbox {
		if r[3] != "sent" {
			t.Errorf("outbox message %s to %s ended %s", r[0], r[1], r[3])
		}
		byID[messageID(r[0])] = r
	}
	mails := decodeMails(t, smtp.Messages())
	copies := map[string]int{}
	for _, m := range mails {
		copies[m.ID]++
		if r, ok := byID[m.ID]; !ok || r[1] != m.To {
			t.Errorf("received %s to %s, which the outbox does not hold", m.ID, m.To)
		}
	}
	lost, dups := 0, 0
	for id := range byID {
		switch n := copies[id]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	if lost > 0 {
		t.Errorf("%d messages in the outbox were never received", lost)
	}

	// Against the world: each immediate subscriber got one alert per
	// matching release; each daily subscriber got each matching release in
	// exactly one digest, and nobody got anything else.
	type got struct {
		immediate map[string]map[string]bool // title -> Message-IDs
		digests   map[string]string          // Message-ID -> text
	}
	byAddr := map[string]*got{}
	for _, m := range mails {
		g := byAddr[m.To]
		if g == nil {
			g = &got{immediate: map[string]map[string]bool{}, digests: map[string]string{}}
			byAddr[m.To] = g
		}
		if strings.Contains(m.Subject, " digest for ") {
			g.digests[m.ID] = m.Text
			continue
		}
		title := noticeRE.FindString(m.Subject)
		if title == "" {
			t.Errorf("unexpected message to %s: %q", m.To, m.Subject)
			continue
		}
		if g.immediate[title] == nil {
			g.immediate[title] = map[string]bool{}
		}
		g.immediate[title][m.ID] = true
	}
	immediates, digests, wrong := 0, 0, 0
	for _, s := range w.subs {
		var expect []string
		for _, it := range w.items {
			if it.Wave > 0 && s.matches(it) {
				expect = append(expect, noticeRE.FindString(it.Title))
			}
		}
		sort.Strings(expect)
		g := byAddr[s.Address]
		if g == nil {
			g = &got{immediate: map[string]map[string]bool{}, digests: map[string]string{}}
		}
		var gotTitles []string
		if s.Frequency == "immediately" {
			if len(g.digests) > 0 {
				t.Errorf("%s (immediate) got %d digests", s.Address, len(g.digests))
				wrong++
			}
			for title, ids := range g.immediate {
				gotTitles = append(gotTitles, title)
				immediates += len(ids)
				if len(ids) > 1 {
					t.Errorf("%s got %d different messages about %s", s.Address, len(ids), title)
					wrong++
				}
			}
		} else {
			if len(g.immediate) > 0 {
				t.Errorf("%s (daily) got %d immediate alerts", s.Address, len(g.immediate))
				wrong++
			}
			for _, text := range g.digests {
				digests++
				inThis := noticeRE.FindAllString(text, -1)
				if len(inThis) == 0 {
					t.Errorf("%s got an empty digest", s.Address)
					wrong++
				}
				gotTitles = append(gotTitles, inThis...)
			}
		}
		sort.Strings(gotTitles)
		if !slices.Equal(gotTitles, expect) {
			t.Errorf("%s (%s) got %d releases (%v), want %d (%v)", s.Address, s.Frequency, len(gotTitles), gotTitles, len(expect), expect)
			wrong++
			if wrong > 20 {
				t.Fatal("too many wrong mailboxes")
			}
		}
	}
	return mailCheck{immediates: immediates, digests: digests, lost: lost, wrong: wrong, dups: dups}
}
