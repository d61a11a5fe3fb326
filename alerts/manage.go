package alerts

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"herald/store"
)

// A subscriber manages their subscriptions through signed links only: the
// manage link (asked for by address, sent to that address), the link that
// confirms a new address, and the unsubscribe links in every email.

// RequestManageLink queues an email with a link to the manage page for
// address, if it belongs to a subscriber and has not had too many links
// this hour. Like RequestSubscription it returns at once and does the work
// in the background, so the answer says nothing about the address. A
// malformed address is FieldErrors, as CheckAddress says.
func (s *Service) RequestManageLink(ctx context.Context, email string) error {
	addr, err := CheckAddress(email)
	if err != nil {
		return err
	}
	s.subBackground(ctx, "manage link request", func(ctx context.Context) error {
		now := s.now()
		queued := 0
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			queued = 0
			sub, err := tx.SubscriberByAddress(addr)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			// Only an address that once proved it receives our mail gets
			// a link.
			if sub.ConfirmedAt.IsZero() {
				return nil
			}
			queued, _, err = s.queueLink(tx, sub, now, func() (store.OutboxMessage, error) { return s.composeManage(sub, now) })
			return err
		})
		if err != nil {
			return err
		}
		s.enqueued(store.KindManage, queued)
		return nil
	})
	return nil
}

// ManageSubscriber returns the subscriber a manage link belongs to;
// ErrLinkGone when they have been erased since.
func (s *Service) ManageSubscriber(ctx context.Context, token string) (store.Subscriber, error) {
	t, err := s.keys.Verify(token, s.now(), PurposeManage)
	if err != nil {
		return store.Subscriber{}, err
	}
	sub, err := s.db.SubscriberByID(ctx, t.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return store.Subscriber{}, ErrLinkGone
	}
	return sub, err
}

// Subscriptions returns a subscriber's active subscriptions, by name.
func (s *Service) Subscriptions(ctx context.Context, subscriberID int64) ([]store.Subscription, error) {
	return s.db.Subscriptions(ctx, subscriberID)
}

// The actions of the manage page.
const (
	ActionFrequency = "frequency"
	ActionEnd       = "end"
	ActionEndAll    = "end_all"
	ActionAddress   = "address"
)

// ManageAction is one change a subscriber asks for on their manage page.
type ManageAction struct {
	// Action is one of the Action constants.
	Action string
	// Subscription is the subscription ActionFrequency and ActionEnd act on.
	Subscription int64
	// Frequency is ActionFrequency's new frequency.
	Frequency string
	// Email is ActionAddress's new address, as typed.
	Email string
}

// ApplyManageAction makes the change a of subscriber sub. A bad frequency
// is FieldErrors for "frequency", a bad new address FieldErrors for
// "email"; a subscription that is not sub's active one is
// store.ErrNotFound; an unknown action or no subscription is ErrInvalid.
// A new address is only asked for here: the change is made when the link
// sent to it is followed (ChangeAddress), and an address that has had
// too many links this hour is ErrTooManyLinks.
func (s *Service) ApplyManageAction(ctx context.Context, sub store.Subscriber, a ManageAction) error {
	switch a.Action {
	case ActionFrequency:
		if msg := checkFrequency(a.Frequency); msg != "" {
			return FieldErrors{{Field: "frequency", Message: msg, Err: ErrInvalid}}
		}
		_, err := s.db.ChangeFrequency(ctx, sub.ID, a.Subscription, a.Frequency)
		return err
	case ActionEnd:
		if a.Subscription <= 0 {
			return ErrInvalid
		}
		_, err := s.db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: sub.ID, SubscriptionID: a.Subscription})
		return err
	case ActionEndAll:
		_, err := s.db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: sub.ID})
		return err
	case ActionAddress:
		addr, err := CheckAddress(a.Email)
		if err != nil {
			return err
		}
		if addr == sub.Address {
			return FieldErrors{{Field: "email", Message: "form.email.same", Err: ErrInvalid}}
		}
		queued, err := s.requestAddressChange(ctx, sub.ID, addr)
		if err != nil {
			return err
		}
		if queued == 0 {
			return ErrTooManyLinks
		}
		s.enqueued(store.KindAddressChange, 1)
		return nil
	}
	return ErrInvalid
}

// requestAddressChange records addr as subscriberID's pending address
// under a fresh nonce and queues the link that confirms it, sent to addr,
// unless the subscriber had too many links this hour; it returns how many
// messages it queued. A later request replaces an earlier one, whose link
// then stops working, also when the limit holds the new link back.
func (s *Service) requestAddressChange(ctx context.Context, subscriberID int64, addr string) (int, error) {
	nonce, err := addressNonce()
	if err != nil {
		return 0, err
	}
	now := s.now()
	queued := 0
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		queued = 0
		sub, err := tx.SetPendingAddress(subscriberID, addr, nonce)
		if err != nil {
			return err
		}
		queued, _, err = s.queueLink(tx, sub, now, func() (store.OutboxMessage, error) { return s.composeAddressChange(sub, now) })
		return err
	})
	return queued, err
}

// addressNonce is a fresh positive nonce naming one address-change
// request, so the link of an earlier request stops working.
func addressNonce() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("alerts: address change nonce: %w", err)
	}
	nonce := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	if nonce == 0 {
		nonce = 1
	}
	return nonce, nil
}

// PendingAddressChange returns the subscriber whose change of address a
// link confirms, for the page that asks before changing it. A change made
// already or replaced by a later request is ErrLinkGone.
func (s *Service) PendingAddressChange(ctx context.Context, token string) (store.Subscriber, error) {
	_, sub, err := s.pendingAddressChange(ctx, token)
	return sub, err
}

func (s *Service) pendingAddressChange(ctx context.Context, token string) (Token, store.Subscriber, error) {
	t, err := s.keys.Verify(token, s.now(), PurposeAddressChange)
	if err != nil {
		return t, store.Subscriber{}, err
	}
	sub, err := s.db.SubscriberByID(ctx, t.Subject)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return t, sub, err
	}
	if err != nil || sub.PendingAddress == "" || sub.PendingNonce != t.Aux {
		return t, sub, ErrLinkGone
	}
	return t, sub, nil
}

// AddressChange is what confirming a new address did.
type AddressChange struct {
	Subscriber store.Subscriber
	// ManageURL is a fresh link to the subscriber's manage page.
	ManageURL string
}

// ChangeAddress makes the new address a link confirms the subscriber's.
// An address that meanwhile has subscriptions of its own is
// ErrAddressTaken: only its owner can follow the link, so saying so
// discloses nothing to anyone else.
func (s *Service) ChangeAddress(ctx context.Context, token string) (AddressChange, error) {
	t, _, err := s.pendingAddressChange(ctx, token)
	if err != nil {
		return AddressChange{}, err
	}
	var sub store.Subscriber
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		// Checked again inside the transaction: a later request may have
		// replaced this one since.
		cur, err := tx.Subscriber(t.Subject)
		if err != nil {
			return err
		}
		if cur.PendingAddress == "" || cur.PendingNonce != t.Aux {
			return ErrLinkGone
		}
		sub, err = tx.AdoptPendingAddress(t.Subject)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return AddressChange{}, ErrLinkGone
	case errors.Is(err, store.ErrConflict):
		return AddressChange{}, ErrAddressTaken
	case err != nil:
		return AddressChange{}, err
	}
	return AddressChange{Subscriber: sub, ManageURL: s.manageURL(sub.ID, s.now())}, nil
}

// UnsubscribeLink is what an unsubscribe link would end now, for the page
// that asks before ending it.
type UnsubscribeLink struct {
	// One is the subscription a link for one subscription names, while it
	// has not ended; nil on a link for all of a subscriber's.
	One *store.Subscription
	// Frequency narrows a link for all subscriptions to those sent at it;
	// "" is every frequency.
	Frequency string
	// Ends counts the subscriptions the link would end: 0 when nothing is
	// left to end.
	Ends int
}

// unsubscribeToken verifies an unsubscribe link's token (they never
// expire) and returns the frequency a link for all narrows to. Anything
// not genuine is ErrTokenInvalid.
func (s *Service) unsubscribeToken(token string) (Token, string, error) {
	t, err := s.keys.Verify(token, s.now(), PurposeUnsubscribe, PurposeUnsubscribeAll)
	freq, okFreq := frequencyOfCode(t.Aux)
	if err != nil || (t.Purpose == PurposeUnsubscribeAll && !okFreq) {
		return t, "", ErrTokenInvalid
	}
	if t.Purpose != PurposeUnsubscribeAll {
		freq = ""
	}
	return t, freq, nil
}

// CheckUnsubscribe says what the unsubscribe link token would end, and
// ends nothing.
func (s *Service) CheckUnsubscribe(ctx context.Context, token string) (UnsubscribeLink, error) {
	t, freq, err := s.unsubscribeToken(token)
	if err != nil {
		return UnsubscribeLink{}, err
	}
	if t.Purpose == PurposeUnsubscribe {
		sub, err := s.db.SubscriptionByID(ctx, t.Subject)
		if errors.Is(err, store.ErrNotFound) || (err == nil && sub.Status == store.SubscriptionEnded) {
			return UnsubscribeLink{}, nil
		}
		if err != nil {
			return UnsubscribeLink{}, err
		}
		return UnsubscribeLink{One: &sub, Ends: 1}, nil
	}
	subs, err := s.db.Subscriptions(ctx, t.Subject)
	if err != nil {
		return UnsubscribeLink{}, err
	}
	l := UnsubscribeLink{Frequency: freq}
	for _, x := range subs {
		if freq == "" || x.Frequency == freq {
			l.Ends++
		}
	}
	return l, nil
}

// Unsubscribe ends what the unsubscribe link token names and returns the
// subscriptions it ended. It is idempotent: a second call ends nothing.
func (s *Service) Unsubscribe(ctx context.Context, token string) ([]store.Subscription, error) {
	t, freq, err := s.unsubscribeToken(token)
	if err != nil {
		return nil, err
	}
	f := store.EndFilter{SubscriptionID: t.Subject}
	if t.Purpose == PurposeUnsubscribeAll {
		f = store.EndFilter{SubscriberID: t.Subject, Frequency: freq}
	}
	return s.db.EndSubscriptions(ctx, f)
}
