// Package delivery sends the outbox: workers claim due messages from the
// store, render each as a MIME message, sign it with DKIM when configured,
// and hand it to an SMTP relay or write it as an .eml file; then they
// record what became of it (sent, retry later, failed, address
// suppressed) and export delivery metrics.
//
// It knows nothing of subscriptions: whatever composed a row, delivery
// sends it as stored, with the row's Message-ID, so a message sent again
// after a crash is the same bytes. It imports only the store, so the
// subscription side can change without touching how mail leaves.
package delivery
