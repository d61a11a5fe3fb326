package alerts

import (
	"errors"
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

// FieldError is what is wrong with one field of a request. Message names
// the words for the person who filled the form in, a message of the
// templates' messages/forms.txt ("form.frequency.missing"), said with the
// named values of Data; the pages say it. Err says what kind of problem
// it is: ErrInvalid, store.ErrNotFound (no such topic or department) or
// ErrTopicEnded.
type FieldError struct {
	Field   string
	Message string
	Data    []any
	Err     error
}

// FieldErrors are the problems of one request, in the order its form
// shows its fields.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, f := range fe {
		parts[i] = f.Field + ": " + f.Message
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

func (fe *FieldErrors) add(field, msg string, err error, data ...any) {
	*fe = append(*fe, FieldError{Field: field, Message: msg, Data: data, Err: err})
}

// err returns fe as an error, or nil when there is no problem.
func (fe FieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}
