// Package alerts owns subscriptions and email: signing up with double
// opt-in, the signed links in every message (confirm, manage, unsubscribe),
// matching new releases to subscribers, composing immediate alerts and
// daily or weekly digests into the outbox, and delivering the outbox by
// SMTP or as .eml files.
//
// Nothing here sends mail directly: every message is first an outbox row
// with an idempotency key, written in the same transaction as the state
// change that caused it, so a crash loses nothing and a re-run adds nothing
// twice. Fan-out streams subscribers in batches, so memory does not grow
// with their number.
package alerts
