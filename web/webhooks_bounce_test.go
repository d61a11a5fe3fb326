package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/alerts/bounce"
	"herald/alerts/bounce/providers/providerstest"
	"herald/alerts/delivery"
	"herald/alerts/smtptest"
	"herald/store"
	"herald/store/storetest"
	"herald/web"
)

// The three subscribers of a bounceSite, named as in the providers'
// documented samples: the relays report a hard bounce for bounced and a
// complaint from complainer; bystander had a message in the same batch.
const (
	bounced    = "gone@" + addressDomain
	bystander  = "reader@" + addressDomain
	complainer = "annoyed@" + addressDomain
	// bounceDomain is the domain of the envelope senders (bounces.domain).
	bounceDomain = "bounces.news.example.org"
)

// sentMessage is one message the relay received from Herald.
type sentMessage struct {
	outboxID int64
	// messageID is its Message-ID header without angle brackets, as the
	// relays quote it back.
	messageID string
}

// bounceSite is a site whose webhooks feed the real bounce processor over
// the site's store, wired as herald serve wires them (the processor in
// web.Deps.Bounces, verifying return paths with the token keys; the four
// providers in web.Deps.Webhooks), after one batch of digests went out
// through a real SMTP relay to three subscribers. complainer has two
// subscriptions, the others one.
type bounceSite struct {
	*site
	hooks *hooks
	sent  map[string]sentMessage
	// subscriptions are each subscriber's subscription ids.
	subscriptions map[string][]int64
}

func newBounceSite(t *testing.T) *bounceSite {
	t.Helper()
	ctx := context.Background()
	relay := smtptest.Start(t, smtptest.Options{})
	h, webhooks := newHooks(t)
	var deliverer *delivery.Deliverer
	s := newSite(t, withMounts(func(t *testing.T, db *store.DB, d *web.Deps, _ string) {
		keys, err := alerts.NewKeys("bounce-webhooks-token-key-0123456789")
		if err != nil {
			t.Fatal(err)
		}
		proc, err := bounce.NewProcessor(db, bounce.Config{VerifyToken: keys.VerifyReturnPath, Domain: bounceDomain}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Bounces, d.Webhooks = proc, webhooks
		deliverer, err = delivery.New(db, delivery.Config{
			From: "Herald <alerts@news.example.org>", Transport: "smtp",
			SMTP:        delivery.SMTPConfig{Host: relay.Host(), Port: relay.Port(), TLS: "none"},
			Concurrency: 1, Now: db.Now,
			ReturnPath: func(id int64) string { return bounce.Address(keys.SignReturnPath(id), bounceDomain) },
		}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
	}))

	dept := func(slug string) store.Target {
		d, err := s.db.DepartmentBySlug(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		return store.Target{DepartmentID: d.ID}
	}
	b := &bounceSite{site: s, hooks: h, sent: map[string]sentMessage{}, subscriptions: map[string][]int64{}}
	subscribe := func(addr, slug, frequency string) store.Subscriber {
		sub := storetest.Subscribe(t, s.db, addr, dept(slug), frequency)
		b.subscriptions[addr] = append(b.subscriptions[addr], sub.Subscription.ID)
		return sub.Subscriber
	}
	var batch []store.OutboxMessage
	for _, addr := range []string{bounced, bystander, complainer} {
		sub := subscribe(addr, "home-office", store.FrequencyDaily)
		batch = append(batch, store.OutboxMessage{Key: fmt.Sprintf("digest:daily:2026-03-01:%d", sub.ID), Kind: store.KindDigest,
			SubscriberID: sub.ID, To: addr, Subject: "Your daily digest", Text: "What the Home Office published yesterday."})
	}
	subscribe(complainer, "treasury", store.FrequencyWeekly)
	if n, err := s.db.EnqueueEmails(ctx, batch); err != nil || n != len(batch) {
		t.Fatalf("EnqueueEmails = %d, %v", n, err)
	}
	if n, err := deliverer.Drain(ctx); err != nil || n != len(batch) {
		t.Fatalf("Drain = %d, %v", n, err)
	}

	rows, err := s.db.OutboxMessages(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range relay.Messages() {
		if len(m.To) != 1 || !strings.HasPrefix(m.From, "bounces+") {
			t.Fatalf("the relay received %+v", m)
		}
		i := slices.IndexFunc(rows, func(r store.OutboxMessage) bool { return r.To == m.To[0] })
		if i < 0 {
			t.Fatalf("no outbox row for the message to %s", m.To[0])
		}
		b.sent[m.To[0]] = sentMessage{outboxID: rows[i].ID, messageID: strings.Trim(m.MessageID, "<>")}
	}
	if len(b.sent) != len(batch) {
		t.Fatalf("the relay received messages for %d addresses, want %d", len(b.sent), len(batch))
	}
	return b
}

// sample reads a provider's documented sample and makes the messages it
// quotes the ones Herald really sent: the samples' 4710, 4711 and 4712
// are the messages to bystander, bounced and complainer.
func (b *bounceSite) sample(name string) []byte {
	b.t.Helper()
	id := func(addr string) string { return b.sent[addr].messageID }
	return []byte(strings.NewReplacer(
		"immediate.4710.1740906845@news.example.org", id(bystander),
		"immediate.4711.1740906845@news.example.org", id(bounced),
		"immediate.4712.1740906845@news.example.org", id(complainer),
	).Replace(string(providerSampleFile(b.t, name))))
}

// state describes, for each subscriber, whether the address is suppressed
// (cause, source and whether by a report on its own message) and its
// subscriptions' statuses, and counts every suppression in the store.
func (b *bounceSite) state() string {
	b.t.Helper()
	ctx := context.Background()
	all, err := b.db.ListSuppressions(ctx, store.SuppressionFilter{})
	if err != nil {
		b.t.Fatal(err)
	}
	lines := []string{fmt.Sprintf("%d suppressed", len(all))}
	for _, addr := range []string{bounced, bystander, complainer} {
		line := addr + ": not suppressed"
		if i := slices.IndexFunc(all, func(s store.Suppression) bool { return s.Address == addr }); i >= 0 {
			s := all[i]
			about := fmt.Sprintf("message %d", s.OutboxID)
			if s.OutboxID == b.sent[addr].outboxID {
				about = "its message"
			}
			line = fmt.Sprintf("%s: suppressed (%s, %s, %s)", addr, s.Cause, s.Source, about)
		}
		var statuses []string
		for _, id := range b.subscriptions[addr] {
			s, err := b.db.SubscriptionByID(ctx, id)
			if err != nil {
				b.t.Fatal(err)
			}
			statuses = append(statuses, s.Status)
		}
		slices.Sort(statuses)
		lines = append(lines, line+"; subscriptions "+strings.Join(statuses, ", "))
	}
	return strings.Join(lines, "\n")
}

func (b *bounceSite) wantState(when, want string) {
	b.t.Helper()
	if got := b.state(); got != want {
		b.t.Fatalf("%s:\n%s\nwant\n%s", when, got, want)
	}
}

// webhookRequest is one request a relay posts to /webhooks/{provider}.
type webhookRequest struct {
	body   []byte
	header http.Header
}

// webhookCase is one relay: its events about the bounced message and the
// complained-of one, built from its documented samples, and how it sends
// them, signed with its secret or forged without it.
type webhookCase struct {
	provider          string
	bounce, complaint func(b *bounceSite) []byte
	signed, forged    func(t *testing.T, h *hooks, events []byte) webhookRequest
}

// snsMessageID is the id SNS gives the notification carrying events.
func snsMessageID(events []byte) string {
	sum := sha256.Sum256(events)
	return "sns-" + hex.EncodeToString(sum[:8])
}

// sendgridEvents keeps the events of SendGrid's sample about addrs.
func sendgridEvents(t *testing.T, sample []byte, addrs ...string) []byte {
	t.Helper()
	var events []json.RawMessage
	if err := json.Unmarshal(sample, &events); err != nil {
		t.Fatal(err)
	}
	var kept []json.RawMessage
	for _, e := range events {
		var ev struct {
			Email string `json:"email"`
		}
		if err := json.Unmarshal(e, &ev); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(addrs, ev.Email) {
			kept = append(kept, e)
		}
	}
	out, err := json.Marshal(kept)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// webhookCases are the four relays.
func webhookCases() []webhookCase {
	return []webhookCase{
		{
			provider:  "ses",
			bounce:    func(b *bounceSite) []byte { return b.sample("ses_bounce_permanent.json") },
			complaint: func(b *bounceSite) []byte { return b.sample("ses_complaint.json") },
			signed: func(_ *testing.T, h *hooks, events []byte) webhookRequest {
				return webhookRequest{body: h.sns.Sign(h.sns.Notification(sesTopic, snsMessageID(events), string(events)))}
			},
			forged: func(t *testing.T, h *hooks, events []byte) webhookRequest {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				return webhookRequest{body: h.sns.SignWith(h.sns.Notification(sesTopic, snsMessageID(events), string(events)), key)}
			},
		},
		{
			provider:  "postmark",
			bounce:    func(b *bounceSite) []byte { return b.sample("postmark_hard_bounce.json") },
			complaint: func(b *bounceSite) []byte { return b.sample("postmark_spam_complaint.json") },
			signed: func(_ *testing.T, _ *hooks, events []byte) webhookRequest {
				return webhookRequest{body: events, header: postmarkAuth(postmarkUser, postmarkPass)}
			},
			forged: func(_ *testing.T, _ *hooks, events []byte) webhookRequest {
				return webhookRequest{body: events, header: postmarkAuth(postmarkUser, "a guessed postmark webhook password")}
			},
		},
		{
			provider: "sendgrid",
			// The bounce comes in one request with the bystander's own
			// events (processed, delivered, deferred), which change nothing.
			bounce: func(b *bounceSite) []byte {
				return sendgridEvents(b.t, b.sample("sendgrid_events.json"), bounced, bystander)
			},
			complaint: func(b *bounceSite) []byte { return sendgridEvents(b.t, b.sample("sendgrid_events.json"), complainer) },
			signed: func(_ *testing.T, h *hooks, events []byte) webhookRequest {
				return webhookRequest{body: events, header: h.sendgrid.Sign(events, time.Now())}
			},
			forged: func(t *testing.T, _ *hooks, events []byte) webhookRequest {
				return webhookRequest{body: events, header: providerstest.NewSendGridKey(t).Sign(events, time.Now())}
			},
		},
		{
			provider:  "mailgun",
			bounce:    func(b *bounceSite) []byte { return b.sample("mailgun_failed_permanent.json") },
			complaint: func(b *bounceSite) []byte { return b.sample("mailgun_complained.json") },
			signed: func(_ *testing.T, _ *hooks, events []byte) webhookRequest {
				return webhookRequest{body: providerstest.Mailgun(mailgunKey, events, time.Now())}
			},
			forged: func(_ *testing.T, _ *hooks, events []byte) webhookRequest {
				return webhookRequest{body: providerstest.Mailgun("a guessed mailgun signing key", events, time.Now())}
			},
		},
	}
}

// TestWebhooksSuppressExactlyTheAddressTheyConcern sends each relay's
// reports, signed as the relay signs them, about messages Herald really
// delivered, through the web server to the real bounce processor and
// store: a hard bounce suppresses its recipient and no one else, a
// complaint ends its sender's subscriptions and suppresses the address,
// and forged or replayed requests change nothing.
func TestWebhooksSuppressExactlyTheAddressTheyConcern(t *testing.T) {
	for _, tc := range webhookCases() {
		t.Run(tc.provider, func(t *testing.T) {
			b := newBounceSite(t)
			hardBounce, complaint := tc.bounce(b), tc.complaint(b)
			if !bytes.Contains(hardBounce, []byte(b.sent[bounced].messageID)) || !bytes.Contains(complaint, []byte(b.sent[complainer].messageID)) {
				t.Fatalf("the reports do not name the messages Herald sent:\n%s\n%s", hardBounce, complaint)
			}
			post := func(r webhookRequest) response {
				t.Helper()
				return b.hook(tc.provider, r.body, r.header)
			}
			untouched := fmt.Sprintf(`0 suppressed
%s: not suppressed; subscriptions active
%s: not suppressed; subscriptions active
%s: not suppressed; subscriptions active, active`, bounced, bystander, complainer)
			b.wantState("before any report", untouched)

			// Forged: refused, and nothing changes.
			wantStatus(t, post(tc.forged(t, b.hooks, hardBounce)), http.StatusUnauthorized)
			wantStatus(t, post(tc.forged(t, b.hooks, complaint)), http.StatusUnauthorized)
			b.wantState("after forged reports", untouched)

			bounceReq := tc.signed(t, b.hooks, hardBounce)
			r := post(bounceReq)
			wantStatus(t, r, http.StatusOK)
			if !strings.Contains(r.body, `"applied": 1`) {
				t.Errorf("the hard bounce was answered %s", r.body)
			}
			b.wantState("after the hard bounce", fmt.Sprintf(`1 suppressed
%s: suppressed (bounce, %s, its message); subscriptions active
%s: not suppressed; subscriptions active
%s: not suppressed; subscriptions active, active`, bounced, tc.provider, bystander, complainer))

			complaintReq := tc.signed(t, b.hooks, complaint)
			r = post(complaintReq)
			wantStatus(t, r, http.StatusOK)
			if !strings.Contains(r.body, `"applied": 1`) {
				t.Errorf("the complaint was answered %s", r.body)
			}
			after := fmt.Sprintf(`2 suppressed
%s: suppressed (bounce, %s, its message); subscriptions active
%s: not suppressed; subscriptions active
%s: suppressed (complaint, %s, its message); subscriptions ended, ended`, bounced, tc.provider, bystander, complainer, tc.provider)
			b.wantState("after the complaint", after)

			// The same requests again, within the signatures' window:
			// accepted, and applied no more.
			for _, req := range []webhookRequest{bounceReq, complaintReq} {
				r := post(req)
				wantStatus(t, r, http.StatusOK)
				if !strings.Contains(r.body, `"applied": 0`) {
					t.Errorf("a replay was answered %s", r.body)
				}
			}
			b.wantState("after the replays", after)
		})
	}
}
