package alerts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"herald/store"
)

// KindTest is the outbox kind of a test email sent from the console or
// the API.
const KindTest = "test"

// TestsPerHour caps the test emails sent in an hour, over every admin:
// each goes to an address an admin typed, through the real relay.
const TestsPerHour = 20

// ErrTooManyTests: TestsPerHour test emails went in the last hour.
var ErrTooManyTests = errors.New("alerts: too many test emails this hour")

// ErrNoSuchEmail: the kind of email asked for is not one of EmailKinds.
var ErrNoSuchEmail = errors.New("alerts: no such kind of email")

// PreviewRequest says which email to render and with what: made-up data,
// or a real release and a real topic or department (as a subscription to
// it would get). Links in a preview carry working tokens for no one: they
// lead to the right pages, which find no subscriber behind them.
type PreviewRequest struct {
	// Kind is one of EmailKinds.
	Kind string
	// Release is a release's id, 0 for a made-up one (or, with a topic
	// or department, its latest releases).
	Release int64
	// Topic or Department is the slug of what the subscription follows;
	// neither for a made-up one.
	Topic, Department string
	// Frequency is the subscription's frequency for a confirm or welcome
	// email, "" for daily. Digests take their own.
	Frequency string
}

// PreviewEmail composes the email req asks for, as it would go to
// name@example.org, without queueing it. A bad request is FieldErrors
// ("target", "frequency") or store.ErrNotFound (no such release);
// ErrNoSuchEmail for an unknown kind.
func (s *Service) PreviewEmail(ctx context.Context, req PreviewRequest) (store.OutboxMessage, error) {
	return s.preview(ctx, req, "name@example.org")
}

func (s *Service) preview(ctx context.Context, req PreviewRequest, to string) (store.OutboxMessage, error) {
	i := slices.IndexFunc(samples(), func(smp sample) bool { return smp.kind == req.Kind })
	if i < 0 {
		return store.OutboxMessage{}, ErrNoSuchEmail
	}
	d, err := s.previewData(ctx, req, s.now())
	if err != nil {
		return store.OutboxMessage{}, err
	}
	d.to = to
	return samples()[i].compose(s, d)
}

// previewData is the made-up sample data with what req names put in.
func (s *Service) previewData(ctx context.Context, req PreviewRequest, now time.Time) (sampleData, error) {
	d := madeUpData(now)
	if req.Frequency != "" {
		if msg := checkFrequency(req.Frequency); msg != "" {
			return d, FieldErrors{{Field: "frequency", Message: msg, Err: ErrInvalid}}
		}
		d.subscription.Frequency = req.Frequency
	}
	if req.Topic != "" || req.Department != "" {
		t, err := s.FindTarget(ctx, TargetFields{Topic: req.Topic, Department: req.Department})
		if err != nil {
			return d, err
		}
		d.subscription = store.Subscription{Kind: t.Kind, Slug: t.Slug, Name: t.Name, TopicID: t.TopicID,
			DepartmentID: t.DepartmentID, Frequency: d.subscription.Frequency, Status: store.SubscriptionPending}
		if req.Release == 0 {
			f := store.ReleaseFilter{Limit: 5}
			if t.Kind == "topic" {
				f.Topic = t.Slug
			} else {
				f.Department = t.Slug
			}
			rels, err := s.db.Releases(ctx, f)
			if err != nil {
				return d, err
			}
			if len(rels) > 0 {
				d.releases = d.releases[:0]
				for _, r := range rels {
					d.releases = append(d.releases, store.AlertRelease{Release: r})
				}
			}
		}
	}
	if req.Release != 0 {
		r, err := s.db.ReleaseByID(ctx, req.Release)
		if err != nil {
			return d, fmt.Errorf("alerts: release %d: %w", req.Release, err)
		}
		d.releases = []store.AlertRelease{{Release: r}}
	}
	// Every release belongs with the subscription, so a digest lists
	// each; the department shown is the release's own.
	for i := range d.releases {
		d.releases[i].TopicIDs = []int64{d.subscription.TopicID}
		if d.subscription.DepartmentID != 0 {
			d.releases[i].DepartmentID = d.subscription.DepartmentID
		}
		if d.releases[i].AlertVersion == 0 {
			d.releases[i].AlertVersion = 1
		}
	}
	return d, nil
}

// SendTestEmail queues the email req asks for to address to, through the
// outbox and the transport every email takes, with its subject marked as
// a test (message "email.test.subject"). A bad address is FieldErrors
// for "email"; more than TestsPerHour tests in the last hour is
// ErrTooManyTests. Nothing here logs the address.
func (s *Service) SendTestEmail(ctx context.Context, req PreviewRequest, to string) error {
	addr, err := CheckAddress(to)
	if err != nil {
		return err
	}
	m, err := s.preview(ctx, req, addr)
	if err != nil {
		return err
	}
	m.Subject = subSubject(s.mail.say("email.test.subject", "Subject", m.Subject))
	m.Key, m.Kind, m.SubscriberID, m.To = "test:"+req.Kind+":"+subNonce(), KindTest, 0, addr
	now := s.now()
	limited := false
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		n, err := tx.CountMail(0, []string{KindTest}, now.Add(-time.Hour))
		if err != nil {
			return err
		}
		if limited = n >= TestsPerHour; limited {
			return nil
		}
		_, err = tx.Enqueue(m)
		return err
	})
	if err != nil {
		return err
	}
	if limited {
		return ErrTooManyTests
	}
	s.enqueued(KindTest, 1)
	return nil
}
