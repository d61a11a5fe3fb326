package delivery

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	gomail "github.com/wneessen/go-mail"
)

// dkimSigner signs rendered messages. Signing is done on the bytes with
// go-msgauth rather than with go-mail's built-in signer: in go-mail v0.8.1
// that signer folds the h= tag in the middle of a header name once the list
// is longer than a line, which breaks relaxed canonicalization (the
// signature then never verifies), and it records the key's algorithm on
// first use, which is a data race between workers.
type dkimSigner struct {
	opts dkim.SignOptions
}

// mimeSignedHeaders are the headers the signature covers: those a
// receiver's verdict depends on, and List-Unsubscribe and
// List-Unsubscribe-Post, which RFC 8058 requires to be signed for
// one-click unsubscribe to be honoured. Headers a message lacks are signed
// as absent, so they cannot be added in transit.
func mimeSignedHeaders() []string {
	return []string{
		"From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
		"List-Unsubscribe", "List-Unsubscribe-Post", "Auto-Submitted", "MIME-Version", "Content-Type",
	}
}

// newDKIMSigner parses the key when signing is configured; it returns nil
// when it is not.
func newDKIMSigner(cfg DKIMConfig) (*dkimSigner, error) {
	if cfg.Domain == "" && cfg.Selector == "" && len(cfg.PrivateKeyPEM) == 0 {
		return nil, nil
	}
	var p []string
	if !mimeDotAtom(cfg.Domain) || !strings.Contains(cfg.Domain, ".") {
		p = append(p, fmt.Sprintf("domain %q is not a domain", cfg.Domain))
	}
	if !mimeDotAtom(cfg.Selector) {
		p = append(p, fmt.Sprintf("selector %q is not a DNS label", cfg.Selector))
	}
	var key crypto.Signer
	if len(cfg.PrivateKeyPEM) == 0 {
		p = append(p, "private key is missing")
	} else {
		var err error
		if key, err = gomail.PrivKeyFromPEM(cfg.PrivateKeyPEM); err != nil {
			p = append(p, fmt.Sprintf("private key: %v", err))
		}
	}
	if len(p) > 0 {
		return nil, errors.New("delivery: dkim: " + strings.Join(p, "; "))
	}
	k := &dkimSigner{opts: dkim.SignOptions{
		Domain:                 cfg.Domain,
		Selector:               cfg.Selector,
		Signer:                 key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             mimeSignedHeaders(),
	}}
	if _, err := dkim.NewSigner(&k.opts); err != nil {
		return nil, fmt.Errorf("delivery: dkim: %w", err)
	}
	return k, nil
}

// sign writes raw, the rendered message, into out with a DKIM-Signature
// header in front.
func (k *dkimSigner) sign(raw []byte, out *bytes.Buffer) error {
	s, err := dkim.NewSigner(&k.opts)
	if err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	if _, err := s.Write(raw); err != nil {
		s.Close()
		return fmt.Errorf("dkim: %w", err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	out.Reset()
	out.WriteString(s.Signature())
	out.Write(raw)
	return nil
}
