// Package providerstest stands in for the relays whose webhooks
// alerts/bounce/providers reads, for tests: an Amazon SNS that serves a
// signing certificate it generated and signs messages with its key, and
// the signing rules of SendGrid and Mailgun with keys the test makes. The
// signatures are built from the providers' documentation, independently
// of the code they test.
package providerstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"herald/alerts/bounce/providers"
)

// SNS is a local HTTPS server standing in for Amazon SNS: it serves the
// certificate its messages are signed with at CertURL, and records the
// subscriptions confirmed at its SubscribeURL.
type SNS struct {
	Server  *httptest.Server
	CertURL string
	key     *rsa.PrivateKey

	mu        sync.Mutex
	confirmed []string
	certGets  int
}

// NewSNS starts the server; it stops when the test ends.
func NewSNS(t testing.TB) *SNS {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test.amazonaws.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s := &SNS{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /SimpleNotificationService-test.pem", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.certGets++
		s.mu.Unlock()
		w.Write(certPEM)
	})
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.confirmed = append(s.confirmed, r.URL.Query().Get("Token"))
		s.mu.Unlock()
		w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	s.Server = httptest.NewTLSServer(mux)
	t.Cleanup(s.Server.Close)
	s.CertURL = s.Server.URL + "/SimpleNotificationService-test.pem"
	return s
}

// Config returns an SES config that trusts this server (its TLS
// certificate and its host) and accepts the given topics.
func (s *SNS) Config(topics ...string) providers.SESConfig {
	u, _ := url.Parse(s.Server.URL)
	return providers.SESConfig{
		TopicARNs: topics, Client: s.Server.Client(),
		AllowHost: func(host string) bool { return host == u.Hostname() },
	}
}

// Confirmed returns the tokens of the subscriptions confirmed so far.
func (s *SNS) Confirmed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.confirmed...)
}

// CertFetches counts the downloads of the signing certificate.
func (s *SNS) CertFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certGets
}

// SNSMessage is an SNS message before signing. Version is the
// SignatureVersion (1 or 2; 0 means 2).
type SNSMessage struct {
	Type, MessageID, TopicArn, Message, Token, SubscribeURL string
	Subject                                                 *string
	Timestamp                                               time.Time
	Version                                                 int
	CertURL                                                 string
}

// Notification returns a Notification carrying message, published now.
func (s *SNS) Notification(topic, messageID, message string) SNSMessage {
	return SNSMessage{Type: "Notification", MessageID: messageID, TopicArn: topic, Message: message, Timestamp: time.Now()}
}

// SubscriptionConfirmation returns a confirmation request whose
// SubscribeURL is this server's.
func (s *SNS) SubscriptionConfirmation(topic, messageID, token string) SNSMessage {
	return SNSMessage{
		Type: "SubscriptionConfirmation", MessageID: messageID, TopicArn: topic, Token: token,
		Message:      "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: s.Server.URL + "/confirm?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topic) + "&Token=" + url.QueryEscape(token),
		Timestamp:    time.Now(),
	}
}

// Sign returns m as the JSON body SNS posts, signed with the server's key.
func (s *SNS) Sign(m SNSMessage) []byte {
	return s.sign(m, s.key)
}

// SignWith signs m with another key, as a forger would.
func (s *SNS) SignWith(m SNSMessage, key *rsa.PrivateKey) []byte { return s.sign(m, key) }

func (s *SNS) sign(m SNSMessage, key *rsa.PrivateKey) []byte {
	if m.Version == 0 {
		m.Version = 2
	}
	if m.CertURL == "" {
		m.CertURL = s.CertURL
	}
	doc := map[string]any{
		"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Message": m.Message,
		"Timestamp":        m.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
		"SignatureVersion": strconv.Itoa(m.Version), "SigningCertURL": m.CertURL,
	}
	// The documented string to sign: each name, newline, value, newline,
	// for these keys in this order, those absent left out.
	names := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m.Type != "Notification" {
		doc["Token"], doc["SubscribeURL"] = m.Token, m.SubscribeURL
		names = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	} else {
		doc["UnsubscribeURL"] = s.Server.URL + "/unsubscribe"
	}
	if m.Subject != nil {
		doc["Subject"] = *m.Subject
	}
	var text []byte
	for _, n := range names {
		if v, ok := doc[n]; ok {
			text = fmt.Appendf(text, "%s\n%s\n", n, v)
		}
	}
	var sig []byte
	var err error
	if m.Version == 1 {
		d := sha1.Sum(text)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256(text)
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	}
	if err != nil {
		panic(err)
	}
	doc["Signature"] = base64.StdEncoding.EncodeToString(sig)
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

// SendGridKey is a key pair like the one SendGrid makes when signing is
// turned on.
type SendGridKey struct {
	key *ecdsa.PrivateKey
}

// NewSendGridKey generates a key pair.
func NewSendGridKey(t testing.TB) *SendGridKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &SendGridKey{key: key}
}

// PublicKey is the verification key as SendGrid shows it: base64 DER.
func (k *SendGridKey) PublicKey() string {
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// Sign returns the headers SendGrid sends with body at time at.
func (k *SendGridKey) Sign(body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	d := sha256.Sum256([]byte(ts + string(body)))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, d[:])
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
	h.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
	h.Set("Content-Type", "application/json")
	return h
}

// Mailgun wraps event-data in a Mailgun webhook body signed with
// signingKey at time at.
func Mailgun(signingKey string, eventData []byte, at time.Time) []byte {
	ts := strconv.FormatInt(at.Unix(), 10)
	tok := make([]byte, 25)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	mac := hmac.New(sha256.New, []byte(signingKey))
	mac.Write([]byte(ts + token))
	b, err := json.Marshal(map[string]any{
		"signature":  map[string]string{"timestamp": ts, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": json.RawMessage(eventData),
	})
	if err != nil {
		panic(err)
	}
	return b
}
