package alerts

import (
	"context"
	"errors"
	"log/slog"

	"herald/alerts/address"
	"herald/store"
	"herald/templates/text"
)

// Signing up is double opt-in: a request stores a pending subscription and
// queues a confirmation email; only the link in that email makes it
// active. Nothing a visitor sees along the way says whether the address
// was known.

const subMsgControl = "must not contain line breaks or other control characters."

// CheckAddress returns the canonical form of an address a visitor typed
// (herald/alerts/address), or FieldErrors for the field "email" saying
// what is wrong with it in the rule's words.
func CheckAddress(email string) (string, error) {
	a, err := address.Parse(email)
	if err != nil {
		return "", FieldErrors{{Field: "email", Message: "Your email address " + address.Problem(err) + ".", Err: ErrInvalid}}
	}
	return a, nil
}

// checkFrequency returns a message when f is not a frequency.
func checkFrequency(f string) string {
	switch {
	case f == "":
		return "Choose how often you want emails."
	case text.HasControl(f):
		return "The frequency " + subMsgControl
	case !store.ValidFrequency(f):
		return "Choose immediately, daily or weekly."
	}
	return ""
}

// Target is a topic or a department someone may follow.
type Target struct {
	store.Target
	// Kind is "topic" or "department".
	Kind        string
	Slug        string
	Name        string
	Description string
}

// FindTarget resolves the topic or department fields of a form: exactly
// one must be set. A problem is FieldErrors for the field "target".
func (s *Service) FindTarget(ctx context.Context, topic, department string) (Target, error) {
	problem := func(msg string, err error) (Target, error) {
		return Target{}, FieldErrors{{Field: "target", Message: msg, Err: err}}
	}
	switch {
	case topic != "" && department != "":
		return problem("Choose a topic or a department, not both.", ErrInvalid)
	case topic == "" && department == "":
		return problem("Choose a topic or a department to subscribe to.", ErrInvalid)
	case text.HasControl(topic + department):
		return problem("The topic or department "+subMsgControl, ErrInvalid)
	}
	if topic != "" {
		if !store.ValidSlug(topic) {
			return problem("There is no topic called “"+text.Excerpt(topic, 100)+"”.", store.ErrNotFound)
		}
		t, err := s.db.TopicBySlug(ctx, topic)
		if errors.Is(err, store.ErrNotFound) {
			return problem("There is no topic called “"+topic+"”.", store.ErrNotFound)
		}
		if err != nil {
			return Target{}, err
		}
		if t.Retired() {
			return problem("The topic “"+t.Title+"” has ended: nothing new is published in it.", ErrTopicEnded)
		}
		return Target{Target: store.Target{TopicID: t.ID}, Kind: "topic", Slug: t.Slug, Name: t.Title, Description: t.Description}, nil
	}
	if !store.ValidSlug(department) {
		return problem("There is no department called “"+text.Excerpt(department, 100)+"”.", store.ErrNotFound)
	}
	d, err := s.db.DepartmentBySlug(ctx, department)
	if errors.Is(err, store.ErrNotFound) {
		return problem("There is no department called “"+department+"”.", store.ErrNotFound)
	}
	if err != nil {
		return Target{}, err
	}
	return Target{Target: store.Target{DepartmentID: d.ID}, Kind: "department", Slug: d.Slug, Name: d.Name}, nil
}

// Request is a checked request to subscribe. Only CheckRequest makes one,
// so RequestSubscription never sees an unchecked address.
type Request struct {
	address   string
	target    Target
	frequency string
}

// Address is the canonical address the confirmation goes to.
func (r Request) Address() string { return r.address }

// Target is what the request follows.
func (r Request) Target() Target { return r.target }

// Frequency is how often the subscription will send mail.
func (r Request) Frequency() string { return r.frequency }

// CheckRequest checks the fields of a subscribe form. Problems come back
// as FieldErrors for "target", "email" and "frequency", in that order,
// with the Request's Target filled in whenever it was found, so the form
// can be shown again for it.
func (s *Service) CheckRequest(ctx context.Context, email, topic, department, frequency string) (Request, error) {
	var fe, problems FieldErrors
	t, err := s.FindTarget(ctx, topic, department)
	switch {
	case errors.As(err, &problems):
		fe = append(fe, problems...)
	case err != nil:
		return Request{}, err
	}
	addr, err := CheckAddress(email)
	if errors.As(err, &problems) {
		fe = append(fe, problems...)
	}
	if msg := checkFrequency(frequency); msg != "" {
		fe.add("frequency", msg, ErrInvalid)
	}
	return Request{address: addr, target: t, frequency: frequency}, fe.err()
}

// RequestSubscription stores req as a pending subscription and queues its
// confirmation, unless the address has had too many this hour. It returns
// at once and does the work in the background, so the answer takes the
// same time whether the address is known; Wait waits for it.
func (s *Service) RequestSubscription(ctx context.Context, req Request) {
	s.subBackground(ctx, "subscription request", func(ctx context.Context) error {
		now := s.now()
		res, err := s.db.RequestSubscription(ctx, store.SubscriptionRequest{
			Address: req.address, Target: req.target.Target, Frequency: req.frequency,
			Limit: s.mailLimit(now),
			Compose: func(sub store.Subscriber, p store.Subscription) ([]store.OutboxMessage, error) {
				m, err := s.composeConfirm(sub, p, now)
				if err != nil {
					return nil, err
				}
				return []store.OutboxMessage{m}, nil
			},
		})
		if err != nil {
			return err
		}
		if res.Limited {
			s.log.Warn("alerts: confirmation not sent: the address reached its hourly limit", slog.Int64("subscriber_id", res.Subscriber.ID))
		}
		s.enqueued(store.KindConfirm, res.Queued)
		return nil
	})
}

// PendingSubscription returns the subscription a confirmation link names,
// for the page that asks before confirming. An active one is returned as
// it is (confirming it again changes nothing); one cancelled or expired is
// ErrLinkGone.
func (s *Service) PendingSubscription(ctx context.Context, token string) (store.Subscription, error) {
	t, err := s.keys.Verify(token, s.now(), PurposeConfirm)
	if err != nil {
		return store.Subscription{}, err
	}
	sub, err := s.db.SubscriptionByID(ctx, t.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.Status == store.SubscriptionEnded) {
		return store.Subscription{}, ErrLinkGone
	}
	return sub, err
}

// Confirmation is what confirming a subscription did.
type Confirmation struct {
	store.ConfirmResult
	// ManageURL is a fresh link to the subscriber's manage page.
	ManageURL string
}

// Confirm makes the subscription a confirmation link names active and
// queues the welcome email; confirming twice changes nothing. A request
// cancelled or expired meanwhile is ErrLinkGone.
func (s *Service) Confirm(ctx context.Context, token string) (Confirmation, error) {
	t, err := s.keys.Verify(token, s.now(), PurposeConfirm)
	if err != nil {
		return Confirmation{}, err
	}
	now := s.now()
	res, err := s.db.ConfirmSubscription(ctx, t.Subject, func(res store.ConfirmResult) ([]store.OutboxMessage, error) {
		m, err := s.composeWelcome(res, now)
		if err != nil {
			return nil, err
		}
		return []store.OutboxMessage{m}, nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSubscriptionEnded) {
		return Confirmation{}, ErrLinkGone
	}
	if err != nil {
		return Confirmation{}, err
	}
	s.enqueued(store.KindWelcome, res.Queued)
	return Confirmation{ConfirmResult: res, ManageURL: s.manageURL(res.Subscriber.ID, now)}, nil
}
