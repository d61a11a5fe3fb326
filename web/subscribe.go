package web

import (
	"errors"
	"net/http"
	"strings"

	"herald/alerts"
	"herald/store"
	"herald/templates/text"
	"herald/web/admin"
)

// The subscription pages: signing up and confirming here, managing in
// manage.go, leaving in unsubscribe.go. The alerts side does the work and
// says what became of it; these pages choose the words and the status.

// subMaxForm bounds every subscription form body: the largest real one is
// a few hundred bytes.
const subMaxForm = 16 << 10

// private marks a subscription page's answer as one visitor's: never kept
// by a cache, and sending no Referer, because its URL or its form may hold
// a token.
func private(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h(w, r)
	})
}

// readSubForm limits and parses a subscription form, answering 413 or 400
// itself.
func (s *Server) readSubForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, subMaxForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.showError(w, r, errorPage{Status: http.StatusRequestEntityTooLarge, Heading: s.say("error.form_too_large.heading"),
				Message: s.say("error.form_too_large")})
			return false
		}
		s.badForm(w, r)
		return false
	}
	return true
}

// badForm answers a subscription form that no page of ours would send.
func (s *Server) badForm(w http.ResponseWriter, r *http.Request) {
	s.showError(w, r, errorPage{Status: http.StatusBadRequest, Heading: s.say("error.bad_form.heading"),
		Message: s.say("error.bad_form")})
}

// restart is where a visitor whose link failed can start again: url,
// and the message naming it ("link.to.*").
type restart struct{ url, label string }

// linkFailed answers a link that cannot be followed: expired (with the way
// to a fresh one), not genuine, or no longer applying, which the message
// gone explains. Any other error is a fault of ours.
func (s *Server) linkFailed(w http.ResponseWriter, r *http.Request, err error, gone string, to restart) {
	p := errorPage{Status: statusOf(err), LinkURL: to.url, LinkLabel: s.say(to.label)}
	switch {
	case errors.Is(err, alerts.ErrTokenExpired):
		p.Heading, p.Message = s.say("link.expired.heading"), s.say("link.expired")
	case errors.Is(err, alerts.ErrTokenInvalid):
		p.Heading, p.Message = s.say("link.invalid.heading"), s.say("link.invalid")
	case errors.Is(err, alerts.ErrLinkGone):
		p.Heading = s.say("link.gone.heading")
		if gone != "" {
			p.Message = s.say(gone)
		}
	default:
		s.fail(w, r, err)
		return
	}
	s.showError(w, r, p)
}

// formProblems puts the alerts side's field problems on a form, each in
// the words of its message: fe gets each, and the status is that of the
// target's problem (an unknown topic is 404), else 422. Any other error
// is not the visitor's and comes back.
func (s *Server) formProblems(err error, fe admin.FieldErrors) (int, error) {
	var problems alerts.FieldErrors
	if !errors.As(err, &problems) {
		return 0, err
	}
	for _, p := range problems {
		fe.Add(p.Field, "%s", s.say(p.Message, p.Data...))
	}
	if p, ok := problems.Get("target"); ok {
		return statusOf(p.Err), nil
	}
	return http.StatusUnprocessableEntity, nil
}

// subscribePage is the data of subscribe.html: the list of what one can
// follow, or the form for one topic, department or search.
type subscribePage struct {
	CSRF        string
	List        bool
	Topics      []store.Topic
	Departments []store.Department
	Topic       string
	Department  string
	// Search is a search page query string, for following that search.
	Search      string
	Target      alerts.Target
	Email       string
	Frequency   string
	Frequencies []string
	Errors      admin.FieldErrors
}

// targetFields are the fields of the form that say what to follow.
func (p subscribePage) targetFields() alerts.TargetFields {
	return alerts.TargetFields{Topic: p.Topic, Department: p.Department, Search: p.Search}
}

func (s *Server) subscribeTitle(p subscribePage) string {
	if p.List || p.Target.Name == "" {
		return s.say("title.subscribe")
	}
	return s.say("title.subscribe_to", "Name", p.Target.Name)
}

func (s *Server) subscribeForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p := subscribePage{Topic: q.Get("topic"), Department: q.Get("department"), Search: q.Get("search"), Frequencies: store.Frequencies(),
		Frequency: q.Get("frequency")}
	if !store.ValidFrequency(p.Frequency) {
		p.Frequency = store.FrequencyImmediately
	}
	if p.Topic == "" && p.Department == "" && p.Search == "" {
		var err error
		if p.Topics, err = s.db.Topics(ctx, false); err != nil {
			s.fail(w, r, err)
			return
		}
		if p.Departments, err = s.db.Departments(ctx); err != nil {
			s.fail(w, r, err)
			return
		}
		p.List = true
		s.render(w, r, http.StatusOK, "subscribe", &view{Title: s.subscribeTitle(p), Data: p})
		return
	}
	t, err := s.deps.Alerts.FindTarget(ctx, p.targetFields())
	var problems alerts.FieldErrors
	if errors.As(err, &problems) {
		problem := problems[0]
		s.showError(w, r, errorPage{Status: statusOf(problem.Err), Heading: s.say("link.nothing_to_subscribe.heading"),
			Message: s.say(problem.Message, problem.Data...), LinkURL: "/subscribe", LinkLabel: s.say("link.to.subscribe_list")})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Target = t
	p.CSRF = s.csrf.token(w, r)
	s.render(w, r, http.StatusOK, "subscribe", &view{Title: s.subscribeTitle(p), Data: p})
}

// subscribeSentPage is the data of subscribe_sent.html. It is the same
// whether or not the address is known, limited, or anything else.
type subscribeSentPage struct {
	Email           string
	Target          alerts.Target
	FrequencyPhrase string
}

func (s *Server) subscribePost(w http.ResponseWriter, r *http.Request) {
	if !s.readSubForm(w, r) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	p := subscribePage{Topic: f.Get("topic"), Department: f.Get("department"), Search: f.Get("search"), Email: strings.TrimSpace(f.Get("email")),
		Frequency: f.Get("frequency"), Frequencies: store.Frequencies(), Errors: admin.FieldErrors{}}
	req, err := s.deps.Alerts.CheckRequest(ctx, p.Email, p.targetFields(), p.Frequency)
	status, err := s.formProblems(err, p.Errors)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Target = req.Target()
	if !s.csrf.valid(r) {
		p.Errors.Add("csrf", "%s", s.say("form.csrf.subscribe"))
		status = http.StatusForbidden
	}
	if len(p.Errors) > 0 {
		if text.HasControl(p.Email) {
			p.Email = cleanLine(p.Email, subMaxForm)
		}
		p.CSRF = s.csrf.token(w, r)
		s.render(w, r, status, "subscribe", &view{Title: s.subscribeTitle(p), Data: p})
		return
	}
	allowed, err := s.signups.allow(ctx, clientKey(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if allowed {
		s.deps.Alerts.RequestSubscription(ctx, req)
	} else {
		s.log.WarnContext(ctx, "subscription request over the per-client hourly limit; no email sent")
	}
	s.render(w, r, http.StatusOK, "subscribe_sent", &view{Title: s.say("title.check_email"),
		Data: subscribeSentPage{Email: req.Address(), Target: req.Target(), FrequencyPhrase: s.frequencyPhrase(req.Frequency())}})
}

// confirmPage is the data of confirm.html, for subscriptions (Mode
// "subscription") and new addresses (Mode "address"). State is "ask" (one
// button), "done" or "already".
type confirmPage struct {
	Mode               string
	State              string
	CSRF               string
	Action             string
	Token              string
	Error              string
	Name               string
	Kind               string
	FrequencyPhrase    string
	OldFrequencyPhrase string
	Address            string
	ManageURL          string
}

func (s *Server) renderConfirm(w http.ResponseWriter, r *http.Request, status int, p confirmPage) {
	title := s.say("title.confirm")
	if p.Mode == "address" {
		title = s.say("title.confirm_address")
	}
	s.render(w, r, status, "confirm", &view{Title: title, Data: p})
}

// confirmGone explains a confirmation link whose request is no more.
const confirmGone = "link.gone.confirm"

var subscribeAgain = restart{"/subscribe", "link.to.subscribe_again"}

// askConfirm is the confirmation page's one button for pending
// subscription sub.
func (s *Server) askConfirm(token string, sub store.Subscription) confirmPage {
	return confirmPage{Mode: "subscription", State: "ask", Action: "/subscribe/confirm", Token: token,
		Name: sub.Name, Kind: s.kindLabel(sub.Kind), FrequencyPhrase: s.frequencyPhrase(sub.Frequency)}
}

// frequencyPhrase says how often a frequency sends mail, in the words of
// the emails (messages "frequency.*").
func (s *Server) frequencyPhrase(f string) string { return s.msgs.Phrase("frequency.", f) }

// kindLabel names what a subscription follows, "topic" or "department",
// in the words of the emails (messages "kind.*").
func (s *Server) kindLabel(k string) string { return s.msgs.Kind(k) }

func (s *Server) confirmForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	sub, err := s.deps.Alerts.PendingSubscription(r.Context(), tok)
	if err != nil {
		s.linkFailed(w, r, err, confirmGone, subscribeAgain)
		return
	}
	p := s.askConfirm(tok, sub)
	if sub.Status == store.SubscriptionActive {
		p.State = "already"
	} else {
		p.CSRF = s.csrf.token(w, r)
	}
	s.renderConfirm(w, r, http.StatusOK, p)
}

func (s *Server) confirmPost(w http.ResponseWriter, r *http.Request) {
	if !s.readSubForm(w, r) {
		return
	}
	ctx := r.Context()
	tok := r.PostForm.Get("token")
	if !s.csrf.valid(r) {
		sub, err := s.deps.Alerts.PendingSubscription(ctx, tok)
		if err != nil {
			s.linkFailed(w, r, err, confirmGone, subscribeAgain)
			return
		}
		p := s.askConfirm(tok, sub)
		p.CSRF, p.Error = s.csrf.token(w, r), s.say("form.csrf.button")
		s.renderConfirm(w, r, http.StatusForbidden, p)
		return
	}
	res, err := s.deps.Alerts.Confirm(ctx, tok)
	if err != nil {
		s.linkFailed(w, r, err, confirmGone, subscribeAgain)
		return
	}
	p := confirmPage{Mode: "subscription", State: "done", Name: res.Subscription.Name, Kind: s.kindLabel(res.Subscription.Kind),
		FrequencyPhrase: s.frequencyPhrase(res.Subscription.Frequency), ManageURL: res.ManageURL}
	if res.AlreadyActive {
		p.State = "already"
	}
	if res.Replaced != nil {
		p.OldFrequencyPhrase = s.frequencyPhrase(res.Replaced.Frequency)
	}
	s.renderConfirm(w, r, http.StatusOK, p)
}
