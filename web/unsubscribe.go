package web

import (
	"errors"
	"net/http"

	"herald/alerts"
	"herald/store"
)

// unsubscribePage is the data of unsubscribe.html and unsubscribed.html.
type unsubscribePage struct {
	Action string
	// What describes what the button ends, as a phrase.
	What string
	// Pending: the link cancels a subscription never confirmed.
	Pending bool
	Ended   []manageRow
	// ResubscribeURL offers the way back after one subscription ended.
	ResubscribeURL string
}

func (s *Server) renderUnsubscribe(w http.ResponseWriter, r *http.Request, name string, p unsubscribePage) {
	title := s.say("title.unsubscribe")
	if name == "unsubscribed" {
		title = s.say("title.unsubscribed")
	}
	s.render(w, r, http.StatusOK, name, &view{Title: title, Data: p})
}

// unsubscribeFailed answers an unsubscribe link that is not genuine.
// Unsubscribe links never expire, so there is no other way for one to
// fail but a fault of ours.
func (s *Server) unsubscribeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, alerts.ErrTokenInvalid) {
		s.fail(w, r, err)
		return
	}
	s.showError(w, r, errorPage{Status: http.StatusBadRequest, Heading: s.say("link.unsubscribe_invalid.heading"),
		Message: s.say("link.unsubscribe_invalid"), LinkURL: "/manage", LinkLabel: s.say("link.to.manage")})
}

func (s *Server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	l, err := s.deps.Alerts.CheckUnsubscribe(r.Context(), r.PathValue("token"))
	if err != nil {
		s.unsubscribeFailed(w, r, err)
		return
	}
	p := unsubscribePage{Action: "/unsubscribe/" + r.PathValue("token")}
	switch {
	case l.Ends == 0:
		s.renderUnsubscribe(w, r, "unsubscribed", p)
		return
	case l.One != nil && l.One.Status == store.SubscriptionPending:
		p.Pending = true
		p.What = s.say("unsubscribe.what.pending", "Name", l.One.Name)
	case l.One != nil:
		p.What = s.say("unsubscribe.what.one", "Name", l.One.Name, "Kind", s.kindLabel(l.One.Kind), "FrequencyPhrase", s.frequencyPhrase(l.One.Frequency))
	case l.Frequency != "":
		p.What = s.say("unsubscribe.what.frequency", "FrequencyPhrase", s.frequencyPhrase(l.Frequency))
	default:
		p.What = s.say("unsubscribe.what.all", "Site", s.cfg.SiteName)
	}
	s.renderUnsubscribe(w, r, "unsubscribe", p)
}

// unsubscribePost ends what the token names, with no cookie and no CSRF
// token (RFC 8058: mail clients POST List-Unsubscribe=One-Click). It is
// idempotent: a second POST ends nothing and still answers 200.
func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, subMaxForm)
	ended, err := s.deps.Alerts.Unsubscribe(r.Context(), r.PathValue("token"))
	if err != nil {
		s.unsubscribeFailed(w, r, err)
		return
	}
	p := unsubscribePage{}
	for _, x := range ended {
		p.Ended = append(p.Ended, s.subscriptionRow(x))
	}
	if len(ended) == 1 && !ended[0].ConfirmedAt.IsZero() {
		q := "topic="
		if ended[0].Kind != "topic" {
			q = "department="
		}
		p.ResubscribeURL = "/subscribe?" + q + ended[0].Slug + "&frequency=" + ended[0].Frequency
	}
	if len(ended) == 1 && ended[0].ConfirmedAt.IsZero() {
		p.Pending = true
	}
	s.renderUnsubscribe(w, r, "unsubscribed", p)
}
