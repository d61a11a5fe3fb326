// Package alerts owns subscriptions and the email they cause: signing up
// with double opt-in, the signed links in every message (confirm, manage,
// unsubscribe), matching new releases to subscribers, and composing
// immediate alerts and daily or weekly digests into the outbox. Sending
// the outbox is package delivery's work.
//
// The subscription side offers operations, not pages: requesting,
// confirming, managing and ending subscriptions return results and typed
// errors (FieldErrors, ErrLinkGone, the token errors...), and package web
// turns them into pages.
//
// Nothing here sends mail directly: every message is first an outbox row
// with an idempotency key, written in the same transaction as the state
// change that caused it, so a crash loses nothing and a re-run adds nothing
// twice. Fan-out streams subscribers in batches, so memory does not grow
// with their number.
package alerts
