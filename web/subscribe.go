package web

import (
	"context"
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
			s.showError(w, r, errorPage{Status: http.StatusRequestEntityTooLarge, Heading: "That form was too large",
				Message: "Herald accepts forms of a few kilobytes. Please go back and try again with less text."})
			return false
		}
		s.badForm(w, r)
		return false
	}
	return true
}

// badForm answers a subscription form that no page of ours would send.
func (s *Server) badForm(w http.ResponseWriter, r *http.Request) {
	s.showError(w, r, errorPage{Status: http.StatusBadRequest, Heading: "That form could not be read",
		Message: "Please go back and try again."})
}

// restart is where a visitor whose link failed can start again.
type restart struct{ url, label string }

// linkFailed answers a link that cannot be followed: expired (with the way
// to a fresh one), not genuine, or no longer applying, which gone
// explains. Any other error is a fault of ours.
func (s *Server) linkFailed(w http.ResponseWriter, r *http.Request, err error, gone string, to restart) {
	p := errorPage{Status: statusOf(err), LinkURL: to.url, LinkLabel: to.label}
	switch {
	case errors.Is(err, alerts.ErrTokenExpired):
		p.Heading, p.Message = "This link has expired", "Links in our emails work for 7 days. You can start again."
	case errors.Is(err, alerts.ErrTokenInvalid):
		p.Heading, p.Message = "This link is not valid", "Check that you copied the whole link from the email."
	case errors.Is(err, alerts.ErrLinkGone):
		p.Heading, p.Message = "This link no longer works", gone
	default:
		s.fail(w, r, err)
		return
	}
	s.showError(w, r, p)
}

// formProblems puts the alerts side's field problems on a form: fe gets
// each, and the status is that of the target's problem (an unknown topic
// is 404), else 422. Any other error is not the visitor's and comes back.
func (s *Server) formProblems(ctx context.Context, err error, fe admin.FieldErrors) (int, error) {
	var problems alerts.FieldErrors
	if !errors.As(err, &problems) {
		return 0, err
	}
	for _, p := range problems {
		fe.Add(p.Field, "%s", s.problem(ctx, p))
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

func (p subscribePage) title() string {
	if p.List || p.Target.Name == "" {
		return "Subscribe to email alerts"
	}
	return "Get emails about " + p.Target.Name
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
		s.render(w, r, http.StatusOK, "subscribe", &view{Title: p.title(), Data: p})
		return
	}
	t, err := s.deps.Alerts.FindTarget(ctx, p.targetFields())
	var problems alerts.FieldErrors
	if errors.As(err, &problems) {
		problem := problems[0]
		s.showError(w, r, errorPage{Status: statusOf(problem.Err), Heading: "Nothing to subscribe to here", Message: s.problem(ctx, problem),
			LinkURL: "/subscribe", LinkLabel: "See what you can subscribe to"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Target = t
	p.CSRF = s.csrf.token(w, r)
	s.render(w, r, http.StatusOK, "subscribe", &view{Title: p.title(), Data: p})
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
	status, err := s.formProblems(ctx, err, p.Errors)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Target = req.Target()
	if !s.csrf.valid(r) {
		p.Errors.Add("csrf", "This form had expired, so nothing was sent. Please check it and press “Subscribe” again.")
		status = http.StatusForbidden
	}
	if len(p.Errors) > 0 {
		if text.HasControl(p.Email) {
			p.Email = cleanLine(p.Email, subMaxForm)
		}
		p.CSRF = s.csrf.token(w, r)
		s.render(w, r, status, "subscribe", &view{Title: p.title(), Data: p})
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
	s.render(w, r, http.StatusOK, "subscribe_sent", &view{Title: "Check your email",
		Data: subscribeSentPage{Email: req.Address(), Target: req.Target(), FrequencyPhrase: alerts.FrequencyPhrase(req.Frequency())}})
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
	title := "Confirm your subscription"
	if p.Mode == "address" {
		title = "Confirm your new address"
	}
	s.render(w, r, status, "confirm", &view{Title: title, Data: p})
}

// confirmGone explains a confirmation link whose request is no more.
const confirmGone = "This subscription request was cancelled or has expired."

var subscribeAgain = restart{"/subscribe", "Subscribe again"}

// askConfirm is the confirmation page's one button for pending
// subscription sub.
func askConfirm(token string, sub store.Subscription) confirmPage {
	return confirmPage{Mode: "subscription", State: "ask", Action: "/subscribe/confirm", Token: token,
		Name: sub.Name, Kind: alerts.KindLabel(sub.Kind), FrequencyPhrase: alerts.FrequencyPhrase(sub.Frequency)}
}

func (s *Server) confirmForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	sub, err := s.deps.Alerts.PendingSubscription(r.Context(), tok)
	if err != nil {
		s.linkFailed(w, r, err, confirmGone, subscribeAgain)
		return
	}
	p := askConfirm(tok, sub)
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
		p := askConfirm(tok, sub)
		p.CSRF, p.Error = s.csrf.token(w, r), "This page had expired, so nothing changed. Please press the button again."
		s.renderConfirm(w, r, http.StatusForbidden, p)
		return
	}
	res, err := s.deps.Alerts.Confirm(ctx, tok)
	if err != nil {
		s.linkFailed(w, r, err, confirmGone, subscribeAgain)
		return
	}
	p := confirmPage{Mode: "subscription", State: "done", Name: res.Subscription.Name, Kind: alerts.KindLabel(res.Subscription.Kind),
		FrequencyPhrase: alerts.FrequencyPhrase(res.Subscription.Frequency), ManageURL: res.ManageURL}
	if res.AlreadyActive {
		p.State = "already"
	}
	if res.Replaced != nil {
		p.OldFrequencyPhrase = alerts.FrequencyPhrase(res.Replaced.Frequency)
	}
	s.renderConfirm(w, r, http.StatusOK, p)
}
