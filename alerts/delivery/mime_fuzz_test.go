package delivery

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/alerts/address"
	"herald/store"
)

// FuzzMIMEBuild feeds rows with hostile subjects, addresses, links and
// bodies to the message builder: whatever it accepts must come out as one
// well-formed message with exactly Herald's headers, a subject and bodies
// that decode to what went in, and no header anyone could inject.
func FuzzMIMEBuild(f *testing.F) {
	f.Add("Home Office: Partners pledge to tackle human trafficking", "reader@example.net",
		"https://news.example.org/unsubscribe/t1", "Plain text.\n", "<p>HTML</p>")
	f.Add("Fees\r\nBcc: everyone@example.net", "reader@example.net", "", "x", "")
	f.Add("=?utf-8?q?not_really_encoded?= “quotes” — dash\ttab\x00nul", `"Reader, Name" <reader@example.net>`,
		"http://127.0.0.1:8080/unsubscribe/t2", "line\r\nwith\rbare CR and trailing space \n.\n..\n", "<b>é</b>")
	f.Add(strings.Repeat("long words ", 40), "a@b.c", "https://x.example/u?a=1&b=2", strings.Repeat("x", 3000), "")
	f.Add("subject", "reader@example.net>\r\nX-Evil: 1", "https://x.example/u>\r\nX-Evil: 1", "t", "h")
	f.Add("--herald-boundary", "reader@example.net", "", "--herald-abc\r\n", "")
	f.Add("IDN", "Reader@Exämple.org", "", "t", "")

	b, err := newMIMEBuilder(Config{From: "Herald <alerts@news.example.org>", ReplyTo: "press@news.example.org",
		ListID: "Herald alerts <alerts.news.example.org>"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, subject, to, unsubscribe, text, html string) {
		row := store.OutboxMessage{Key: "immediate:1.1:1", To: to, Subject: subject, Text: text, HTML: html,
			UnsubscribeURL: unsubscribe, MessageID: store.MessageIDFor("immediate:1.1:1"),
			CreatedAt: time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)}
		msg, from, rcpt, err := b.build(row)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := mimeRender(msg, &buf); err != nil {
			t.Fatalf("render: %v", err)
		}
		raw := buf.Bytes()
		for _, line := range bytes.Split(raw, []byte("\r\n")) {
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("bare CR or LF in %q", line)
			}
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("unparseable message: %v\n%s", err, raw)
		}
		var keys []string
		for k, v := range parsed.Header {
			if len(v) != 1 {
				t.Fatalf("%d %s headers", len(v), k)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"Auto-Submitted", "Content-Type", "Date", "From", "List-Id", "Message-Id", "Mime-Version",
			"Reply-To", "Subject", "To"}
		if unsubscribe != "" {
			want = append(want, "List-Unsubscribe", "List-Unsubscribe-Post")
		}
		if text == "" || html == "" {
			want = append(want, "Content-Transfer-Encoding")
		}
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("headers %v, want %v", keys, want)
		}
		toAddr, err := address.Parse(to)
		if err != nil {
			t.Fatalf("accepted an address the rule refuses: %q", to)
		}
		if got, err := parsed.Header.AddressList("To"); err != nil || len(got) != 1 || got[0].Address != toAddr ||
			strings.ContainsFunc(parsed.Header.Get("To"), func(r rune) bool { return r >= 0x80 }) {
			t.Fatalf("To = %v, %v; want %s", got, err, toAddr)
		}
		if rcpt != "<"+toAddr+">" {
			t.Fatalf("envelope recipient %q for %q", rcpt, toAddr)
		}
		if from != "<alerts@news.example.org>" {
			t.Fatalf("envelope sender %q", from)
		}
		gotSubject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject %q: %v", parsed.Header.Get("Subject"), err)
		}
		clean, _ := mimeHeaderText(subject)
		if strings.Join(strings.Fields(gotSubject), " ") != strings.Join(strings.Fields(clean), " ") {
			t.Fatalf("subject %q came back as %q", clean, gotSubject)
		}
		var bodies []string
		mediaType, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if mediaType == "multipart/alternative" {
			mr := multipart.NewReader(parsed.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("parts: %v", err)
				}
				body, err := io.ReadAll(p)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, string(body))
			}
		} else {
			body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body))
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, string(body))
		}
		var wantBodies []string
		for _, s := range []string{text, html} {
			if s != "" {
				wantBodies = append(wantBodies, s)
			}
		}
		if len(bodies) != len(wantBodies) {
			t.Fatalf("%d parts, want %d", len(bodies), len(wantBodies))
		}
		for i := range bodies {
			if crlf(bodies[i]) != crlf(wantBodies[i]) {
				t.Fatalf("part %d is %q, want %q", i, bodies[i], wantBodies[i])
			}
		}
	})
}

// crlf makes line breaks comparable: CRLF, a bare LF and a bare CR all go
// out as a line break (a bare CR or LF is not allowed in mail) and come
// back as CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
