// Package providers authenticates the bounce and complaint webhooks of the
// relays Herald can send through (Amazon SES by way of SNS, Postmark,
// SendGrid and Mailgun) and reads each into bounce.Reports. It serves no
// HTTP: web hands a provider a request's headers and body, and passes the
// reports on to the processor that applies the policy.
//
// Every provider refuses what it cannot authenticate (ErrUnauthenticated),
// including a signed request whose timestamp is outside the window, so that
// a captured request cannot be replayed later; replays inside the window
// carry the provider's event id, which the processor remembers.
package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald/alerts/bounce"
)

// Errors a provider's Parse wraps, for the caller to choose the answer.
var (
	// ErrUnauthenticated: the request is not from the provider (bad or
	// missing signature or credentials, an unexpected topic, a timestamp
	// outside the window).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrMalformed: the request is not what the provider sends (broken
	// JSON, a missing field).
	ErrMalformed = errors.New("malformed")
	// ErrUnavailable: something the request needs could not be reached
	// (the signing certificate, the subscription confirmation); the
	// provider should try again later.
	ErrUnavailable = errors.New("unavailable")
)

// DefaultWindow is how far a signed timestamp may be from now, either way,
// when a provider's config gives none.
const DefaultWindow = 5 * time.Minute

// maxRaw bounds the copy of an event kept in Report.Raw.
const maxRaw = 16 << 10

// Provider authenticates one provider's webhook requests and reads them.
type Provider interface {
	// Name is the provider's name in /webhooks/{name} and Report.Source.
	Name() string
	// Parse authenticates a request and returns what it reports. Its
	// errors wrap ErrUnauthenticated, ErrMalformed or ErrUnavailable.
	Parse(ctx context.Context, header http.Header, body []byte) (Result, error)
}

// Result is what one webhook request brought.
type Result struct {
	// Reports are the bounces and complaints, one per recipient.
	Reports []bounce.Report
	// Skipped counts the events that are neither (deliveries, opens,
	// types Herald does not act on).
	Skipped int
	// Note says what else the request did, such as confirming an SNS
	// subscription; "" for most.
	Note string
}

func unauthenticated(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// window is a provider's timestamp rule.
type window struct {
	width time.Duration
	now   func() time.Time
}

func newWindow(width time.Duration, now func() time.Time) window {
	if width <= 0 {
		width = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	return window{width: width, now: now}
}

// check refuses a signed time too far from now, in the past or (a skewed
// clock aside) the future.
func (w window) check(t time.Time) error {
	if d := w.now().Sub(t); d > w.width || d < -w.width {
		return unauthenticated("timestamp %s is outside the %s window", t.UTC().Format(time.RFC3339), w.width)
	}
	return nil
}

// unixTime reads a decimal count of seconds since 1970.
func unixTime(s string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return time.Time{}, malformed("timestamp %q is not a number of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// messageID returns a Message-ID without its angle brackets and spaces.
func messageID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

// raw returns a bounded copy of an event for Report.Raw.
func raw(b []byte) []byte {
	if len(b) > maxRaw {
		b = b[:maxRaw]
	}
	return append([]byte(nil), b...)
}
