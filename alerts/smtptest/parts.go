package smtptest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Part is one leaf of a received message: a text part, an image.
type Part struct {
	// Type is the media type ("text/plain"); Parent the multipart type it
	// sits in ("multipart/alternative"), "" at the top.
	Type, Parent string
	Header       mail.Header
	// Body is decoded from its transfer encoding.
	Body []byte
}

// Parts returns the leaves of the message, depth first, bodies decoded.
func (m Message) Parts() ([]Part, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, err
	}
	var out []Part
	var walk func(h mail.Header, body io.Reader, parent string) error
	walk = func(h mail.Header, body io.Reader, parent string) error {
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			mt = "text/plain"
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("smtptest: %s: %w", mt, err)
				}
				if err := walk(mail.Header(p.Header), p, mt); err != nil {
					return err
				}
			}
		}
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return fmt.Errorf("smtptest: %s part: %w", mt, err)
		}
		out = append(out, Part{Type: mt, Parent: parent, Header: h, Body: b})
		return nil
	}
	return out, walk(msg.Header, msg.Body, "")
}

// Part returns the first leaf of type mediaType.
func (m Message) Part(mediaType string) (Part, bool, error) {
	parts, err := m.Parts()
	if err != nil {
		return Part{}, false, err
	}
	for _, p := range parts {
		if p.Type == mediaType {
			return p, true, nil
		}
	}
	return Part{}, false, nil
}
