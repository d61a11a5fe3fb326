package alerts

import (
	"errors"
	"strconv"
	"strings"
)

// What became of a request that did not go through. The pages that call
// the subscription operations turn each into an answer; with
// ErrTokenInvalid and ErrTokenExpired (tokens.go) and FieldErrors they are
// every outcome a visitor can cause.
var (
	// ErrInvalid: the request cannot be right whatever is stored, like an
	// action the manage page does not have.
	ErrInvalid = errors.New("alerts: invalid request")
	// ErrLinkGone: a genuine link whose request no longer applies: it was
	// cancelled, done already, replaced by a later one, or its subscriber
	// is gone.
	ErrLinkGone = errors.New("alerts: the link no longer applies")
	// ErrTopicEnded: the topic has been retired; nothing new is published
	// in it.
	ErrTopicEnded = errors.New("alerts: the topic has ended")
	// ErrAddressTaken: the new address of a change already has
	// subscriptions of its own.
	ErrAddressTaken = errors.New("alerts: the address already has its own subscriptions")
	// ErrTooManyLinks: the address has been sent its share of links this
	// hour (Config.ConfirmPerHour).
	ErrTooManyLinks = errors.New("alerts: too many links asked for this hour")
)

// FieldError is what is wrong with one field of a request, in words for
// the person who filled the form in, or as a Code the page says in its
// own words (templates/pages/problems.txt) about Value. Err says what kind
// of problem it is: ErrInvalid, store.ErrNotFound (no such topic or
// department) or ErrTopicEnded.
type FieldError struct {
	Field   string
	Message string
	Code    string
	Value   string
	Err     error
}

// FieldErrors are the problems of one request, in the order its form
// shows its fields.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, f := range fe {
		msg := f.Message
		if f.Code != "" {
			msg = f.Code + " " + strconv.Quote(f.Value)
		}
		parts[i] = f.Field + ": " + msg
	}
	return "alerts: " + strings.Join(parts, "; ")
}

// Get returns the problem with field, if there is one.
func (fe FieldErrors) Get(field string) (FieldError, bool) {
	for _, f := range fe {
		if f.Field == field {
			return f, true
		}
	}
	return FieldError{}, false
}

func (fe *FieldErrors) add(field, msg string, err error) {
	*fe = append(*fe, FieldError{Field: field, Message: msg, Err: err})
}

// err returns fe as an error, or nil when there is no problem.
func (fe FieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}
