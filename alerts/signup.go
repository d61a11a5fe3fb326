package alerts

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"herald/alerts/address"
	"herald/store"
	"herald/templates/text"
)

// Signing up is double opt-in: a request stores a pending subscription and
// queues a confirmation email; only the link in that email makes it
// active. Nothing a visitor sees along the way says whether the address
// was known.

// CheckAddress returns the canonical form of an address a visitor typed
// (herald/alerts/address), or FieldErrors for the field "email" naming
// the rule's reason: the message "form.email.REASON", with the refused
// character as Char when there is one.
func CheckAddress(email string) (string, error) {
	a, err := address.Parse(email)
	if err != nil {
		code, char := address.Reason(err)
		return "", FieldErrors{{Field: "email", Message: "form.email." + code, Data: []any{"Char", char}, Err: ErrInvalid}}
	}
	return a, nil
}

// checkFrequency returns the message naming what is wrong with frequency
// f, or "".
func checkFrequency(f string) string {
	switch {
	case f == "":
		return "form.frequency.missing"
	case text.HasControl(f):
		return "form.frequency.control"
	case !store.ValidFrequency(f):
		return "form.frequency.unknown"
	}
	return ""
}

// Target is a topic, a department or a search someone may follow.
type Target struct {
	store.Target
	// Kind is "topic", "department" or "search".
	Kind string
	// Slug is the topic's or department's slug, or the search's
	// parameters (store.SearchQuery.Params), which name it in links.
	Slug        string
	Name        string
	Description string
	// Search is the search to store, if it is not yet, when a search is
	// followed; Target.SearchID is then 0 until RequestSubscription has
	// stored it.
	Search *store.SearchSpec
}

// TargetFields are the fields of a form that say what to follow: a topic
// or a department by slug, or a search by the search page's query string
// (q, department, topic, type). Exactly one must be set.
type TargetFields struct {
	Topic      string
	Department string
	Search     string
}

// FindTarget resolves the target fields of a form. A problem is
// FieldErrors for the field "target".
func (s *Service) FindTarget(ctx context.Context, f TargetFields) (Target, error) {
	problem := func(msg string, err error, data ...any) (Target, error) {
		return Target{}, FieldErrors{{Field: "target", Message: msg, Data: data, Err: err}}
	}
	topic, department := f.Topic, f.Department
	set := 0
	for _, v := range []string{f.Topic, f.Department, f.Search} {
		if v != "" {
			set++
		}
	}
	switch {
	case set > 1:
		return problem("form.target.both", ErrInvalid)
	case set == 0:
		return problem("form.target.none", ErrInvalid)
	case f.Search != "":
		return s.findSearch(ctx, f.Search)
	case text.HasControl(topic + department):
		return problem("form.target.control", ErrInvalid)
	}
	if topic != "" {
		if !store.ValidSlug(topic) {
			return problem("form.target.no_topic", store.ErrNotFound, "Slug", text.Excerpt(topic, 100))
		}
		t, err := s.db.TopicBySlug(ctx, topic)
		if errors.Is(err, store.ErrNotFound) {
			return problem("form.target.no_topic", store.ErrNotFound, "Slug", topic)
		}
		if err != nil {
			return Target{}, err
		}
		if t.Retired() {
			return problem("form.target.topic_ended", ErrTopicEnded, "Title", t.Title)
		}
		return Target{Target: store.Target{TopicID: t.ID}, Kind: "topic", Slug: t.Slug, Name: t.Title, Description: t.Description}, nil
	}
	if !store.ValidSlug(department) {
		return problem("form.target.no_department", store.ErrNotFound, "Slug", text.Excerpt(department, 100))
	}
	d, err := s.db.DepartmentBySlug(ctx, department)
	if errors.Is(err, store.ErrNotFound) {
		return problem("form.target.no_department", store.ErrNotFound, "Slug", department)
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
func (s *Service) CheckRequest(ctx context.Context, email string, target TargetFields, frequency string) (Request, error) {
	var fe, problems FieldErrors
	t, err := s.FindTarget(ctx, target)
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
		var sub store.Subscriber
		queued, limited := 0, false
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			var p store.Subscription
			target := req.target.Target
			if req.target.Search != nil {
				found, err := tx.EnsureSearch(*req.target.Search)
				if err != nil {
					return err
				}
				target.SearchID = found.ID
			}
			var err error
			if sub, p, err = requestPending(tx, req.address, target, req.frequency); err != nil {
				return err
			}
			queued, limited, err = s.queueLink(tx, sub, now, func() (store.OutboxMessage, error) { return s.composeConfirm(sub, p, now) })
			return err
		})
		if err != nil {
			return err
		}
		if limited {
			s.log.Warn("alerts: confirmation not sent: the address reached its hourly limit", slog.Int64("subscriber_id", sub.ID))
		}
		s.enqueued(store.KindConfirm, queued)
		return nil
	})
}

// requestPending records that someone asked to subscribe address to
// target: it creates the subscriber if needed and a pending subscription,
// or renews an identical one still pending, so asking again reuses it.
// Known and unknown addresses take the same statements, so the time taken
// does not tell them apart.
func requestPending(tx *store.Tx, address string, target store.Target, frequency string) (store.Subscriber, store.Subscription, error) {
	sub, err := tx.EnsureSubscriber(address)
	if err != nil {
		return sub, store.Subscription{}, err
	}
	p, err := tx.PendingSubscription(sub.ID, target, frequency)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p, err = tx.AddSubscription(sub.ID, target, frequency)
	case err == nil:
		p, err = tx.RenewSubscription(p.ID)
	}
	return sub, p, err
}

// linkKinds are the messages a visitor's request sends to an address:
// confirmations, magic links and address-change links.
func linkKinds() []string {
	return []string{store.KindConfirm, store.KindManage, store.KindAddressChange}
}

// queueLink queues the message compose makes for sub, in tx, unless sub
// has had its hourly allowance of linkKinds messages at now (limited). The
// count lives in the outbox, so the limit survives restarts. It returns
// how many messages were new to the outbox.
func (s *Service) queueLink(tx *store.Tx, sub store.Subscriber, now time.Time, compose func() (store.OutboxMessage, error)) (queued int, limited bool, err error) {
	n, err := tx.CountMail(sub.ID, linkKinds(), now.Add(-time.Hour))
	if err != nil || n >= s.cfg.ConfirmPerHour {
		return 0, err == nil, err
	}
	m, err := compose()
	if err != nil {
		return 0, false, err
	}
	queued, err = tx.Enqueue(m)
	return queued, false, err
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
	Subscriber   store.Subscriber
	Subscription store.Subscription
	// Replaced is the active subscription to the same target that the
	// confirmed one replaced (a change of frequency), if any.
	Replaced *store.Subscription
	// AlreadyActive: nothing changed, the subscription (or an identical
	// one) was already active.
	AlreadyActive bool
	// Queued is how many messages (the welcome) were added to the outbox.
	Queued int
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
	var res Confirmation
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		res, err = s.confirm(tx, t.Subject, now)
		return err
	})
	if err != nil {
		return Confirmation{}, err
	}
	s.enqueued(store.KindWelcome, res.Queued)
	res.ManageURL = s.manageURL(res.Subscriber.ID, now)
	return res, nil
}

// confirm activates pending subscription id in tx, lifting a bounce
// suppression of the address, ending any active
// subscription of the same subscriber to the same target (a change of
// frequency), and queues the welcome in the same transaction, so the
// change and its message are recorded together or not at all. A
// subscription that is gone or has ended is ErrLinkGone.
func (s *Service) confirm(tx *store.Tx, id int64, now time.Time) (Confirmation, error) {
	var res Confirmation
	p, err := tx.Subscription(id)
	if errors.Is(err, store.ErrNotFound) {
		return res, ErrLinkGone
	}
	if err != nil {
		return res, err
	}
	if p.Status == store.SubscriptionEnded {
		return res, ErrLinkGone
	}
	// Following the link shows the mailbox takes mail again: a
	// suppression for bouncing ends (one for a complaint does not).
	sub, err := tx.Subscriber(p.SubscriberID)
	if err != nil {
		return res, err
	}
	if _, err := tx.LiftBounceSuppression(sub.Address); err != nil {
		return res, err
	}
	switch p.Status {
	case store.SubscriptionActive:
		res.Subscription, res.AlreadyActive = p, true
		res.Subscriber, err = tx.Subscriber(p.SubscriberID)
		return res, err
	}
	old, err := tx.ActiveSubscription(p.SubscriberID, p.Target())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return res, err
	case old.Frequency == p.Frequency:
		// Same wish twice: keep the older subscription, drop this one.
		if _, err := tx.SetSubscriptionStatus(p.ID, store.SubscriptionEnded); err != nil {
			return res, err
		}
		res.Subscription, res.AlreadyActive = old, true
		res.Subscriber, err = tx.Subscriber(p.SubscriberID)
		return res, err
	default:
		ended, err := tx.SetSubscriptionStatus(old.ID, store.SubscriptionEnded)
		if err != nil {
			return res, err
		}
		res.Replaced = &ended
	}
	if res.Subscription, err = tx.SetSubscriptionStatus(p.ID, store.SubscriptionActive); err != nil {
		return res, err
	}
	if err := tx.MarkSubscriberConfirmed(p.SubscriberID); err != nil {
		return res, err
	}
	if res.Subscriber, err = tx.Subscriber(p.SubscriberID); err != nil {
		return res, err
	}
	m, err := s.composeWelcome(res, now)
	if err != nil {
		return res, err
	}
	res.Queued, err = tx.Enqueue(m)
	return res, err
}
