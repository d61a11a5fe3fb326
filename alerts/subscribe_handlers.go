package alerts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald/alerts/address"
	"herald/store"
	"herald/templates/text"
)

// Routes mounts the subscription pages on mux.
//
// Confirmation links open a page with one button rather than confirming on
// GET: mail security scanners and link previews fetch links in incoming
// mail, and a confirmation they could trigger would prove nothing about
// the person. The button costs the subscriber one click. The same goes for
// unsubscribe links; mail clients use the RFC 8058 one-click POST instead.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /subscribe", s.subscribeForm)
	mux.HandleFunc("POST /subscribe", s.subscribePost)
	mux.HandleFunc("GET /subscribe/confirm", s.confirmForm)
	mux.HandleFunc("POST /subscribe/confirm", s.confirmPost)
	mux.HandleFunc("GET /manage", s.manageRequestForm)
	mux.HandleFunc("POST /manage", s.manageRequestPost)
	mux.HandleFunc("GET /manage/{token}", s.managePage)
	mux.HandleFunc("POST /manage/{token}", s.manageAction)
	mux.HandleFunc("GET /manage/address/{token}", s.addressForm)
	mux.HandleFunc("POST /manage/address/{token}", s.addressPost)
	mux.HandleFunc("GET /unsubscribe/{token}", s.unsubscribeForm)
	mux.HandleFunc("POST /unsubscribe/{token}", s.unsubscribePost)
}

// subMaxForm bounds every form body: the largest real one is a few hundred
// bytes.
const subMaxForm = 16 << 10

// subFieldError is a message shown beside one form field.
type subFieldError struct {
	Field   string
	Message string
}

// subErrors are a form's problems in the order they are shown.
type subErrors []subFieldError

// For returns the message for field, or "".
func (e subErrors) For(field string) string {
	for _, f := range e {
		if f.Field == field {
			return f.Message
		}
	}
	return ""
}

func (e *subErrors) add(field, msg string) { *e = append(*e, subFieldError{field, msg}) }

// readForm limits and parses a form body, answering 413 or 400 itself.
func (s *Service) readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, subMaxForm)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, errorPage{Heading: "That form was too large",
				Message: "Herald accepts forms of a few kilobytes. Please go back and try again with less text."}, nil)
			return false
		}
		s.fail(w, r, http.StatusBadRequest, errorPage{Heading: "That form could not be read",
			Message: "Please go back and try again."}, nil)
		return false
	}
	return true
}

const subMsgControl = "must not contain line breaks or other control characters."

// subCheckAddress returns the canonical address or a message saying what
// is wrong with it, in the rule's words.
func subCheckAddress(v string) (string, string) {
	a, err := address.Parse(v)
	if err != nil {
		return "", "Your email address " + address.Problem(err) + "."
	}
	return a, ""
}

// subCheckFrequency returns a message when f is not a frequency.
func subCheckFrequency(f string) string {
	switch {
	case f == "":
		return "Choose how often you want emails."
	case text.HasControl(f):
		return "The frequency " + subMsgControl
	case !store.ValidFrequency(f):
		return "Choose immediately, daily or weekly."
	}
	return ""
}

// subTarget is a topic or department someone asked to follow.
type subTarget struct {
	Target      store.Target
	Kind        string
	Slug        string
	Name        string
	Description string
}

// subFindTarget resolves the topic or department fields of a form. A
// problem comes back as an HTTP status and a message for the visitor.
func (s *Service) subFindTarget(ctx context.Context, topic, department string) (subTarget, int, string, error) {
	switch {
	case topic != "" && department != "":
		return subTarget{}, http.StatusBadRequest, "Choose a topic or a department, not both.", nil
	case topic == "" && department == "":
		return subTarget{}, http.StatusBadRequest, "Choose a topic or a department to subscribe to.", nil
	case text.HasControl(topic + department):
		return subTarget{}, http.StatusBadRequest, "The topic or department " + subMsgControl, nil
	}
	if topic != "" {
		if !store.ValidSlug(topic) {
			return subTarget{}, http.StatusNotFound, "There is no topic called “" + text.Excerpt(topic, 100) + "”.", nil
		}
		t, err := s.db.TopicBySlug(ctx, topic)
		if errors.Is(err, store.ErrNotFound) {
			return subTarget{}, http.StatusNotFound, "There is no topic called “" + topic + "”.", nil
		}
		if err != nil {
			return subTarget{}, 0, "", err
		}
		if t.Retired() {
			return subTarget{}, http.StatusGone, "The topic “" + t.Title + "” has ended: nothing new is published in it.", nil
		}
		return subTarget{Target: store.Target{TopicID: t.ID}, Kind: "topic", Slug: t.Slug, Name: t.Title, Description: t.Description}, 0, "", nil
	}
	if !store.ValidSlug(department) {
		return subTarget{}, http.StatusNotFound, "There is no department called “" + text.Excerpt(department, 100) + "”.", nil
	}
	d, err := s.db.DepartmentBySlug(ctx, department)
	if errors.Is(err, store.ErrNotFound) {
		return subTarget{}, http.StatusNotFound, "There is no department called “" + department + "”.", nil
	}
	if err != nil {
		return subTarget{}, 0, "", err
	}
	return subTarget{Target: store.Target{DepartmentID: d.ID}, Kind: "department", Slug: d.Slug, Name: d.Name}, 0, "", nil
}

// subscribePage is the data of subscribe.html: the list of what one can
// follow, or the form for one topic or department.
type subscribePage struct {
	CSRF        string
	List        bool
	Topics      []store.Topic
	Departments []store.Department
	Topic       string
	Department  string
	Target      subTarget
	Email       string
	Frequency   string
	Frequencies []string
	Errors      subErrors
}

func (s *Service) subscribeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := subscribePage{Topic: q.Get("topic"), Department: q.Get("department"), Frequencies: store.Frequencies,
		Frequency: q.Get("frequency")}
	if !store.ValidFrequency(p.Frequency) {
		p.Frequency = store.FrequencyImmediately
	}
	if p.Topic == "" && p.Department == "" {
		var err error
		if p.Topics, err = s.db.Topics(r.Context(), false); err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
		if p.Departments, err = s.db.Departments(r.Context()); err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
		p.List = true
		s.render(w, http.StatusOK, "subscribe", p)
		return
	}
	t, status, msg, err := s.subFindTarget(r.Context(), p.Topic, p.Department)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	if msg != "" {
		s.fail(w, r, status, errorPage{Heading: "Nothing to subscribe to here", Message: msg,
			LinkURL: "/subscribe", LinkLabel: "See what you can subscribe to"}, nil)
		return
	}
	p.Target = t
	p.CSRF = s.csrf.Token(w, r)
	s.render(w, http.StatusOK, "subscribe", p)
}

// subscribeSentPage is the data of subscribe_sent.html. It is the same
// whether or not the address is known, limited, or anything else.
type subscribeSentPage struct {
	Email           string
	Target          subTarget
	FrequencyPhrase string
}

func (s *Service) subscribePost(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	f := r.PostForm
	p := subscribePage{Topic: f.Get("topic"), Department: f.Get("department"), Email: strings.TrimSpace(f.Get("email")),
		Frequency: f.Get("frequency"), Frequencies: store.Frequencies}
	status := http.StatusUnprocessableEntity
	t, tstatus, msg, err := s.subFindTarget(r.Context(), p.Topic, p.Department)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	if msg != "" {
		p.Errors.add("target", msg)
		status = tstatus
	}
	p.Target = t
	addr, msg := subCheckAddress(p.Email)
	if msg != "" {
		p.Errors.add("email", msg)
	}
	if msg := subCheckFrequency(p.Frequency); msg != "" {
		p.Errors.add("frequency", msg)
	}
	if !s.csrf.Valid(r) {
		p.Errors.add("csrf", "This form had expired, so nothing was sent. Please check it and press “Subscribe” again.")
		status = http.StatusForbidden
	}
	if len(p.Errors) > 0 {
		if text.HasControl(p.Email) {
			p.Email = text.Line(p.Email)
		}
		p.CSRF = s.csrf.Token(w, r)
		s.render(w, status, "subscribe", p)
		return
	}
	if s.ipLimit.allow(ClientKey(r), s.now()) {
		s.subBackground(r, "subscription request", func(ctx context.Context) error {
			return s.subRequest(ctx, addr, t.Target, p.Frequency)
		})
	} else {
		s.log.Warn("alerts: subscription request over the per-client hourly limit; no email sent")
	}
	s.render(w, http.StatusOK, "subscribe_sent", subscribeSentPage{Email: addr, Target: t, FrequencyPhrase: frequencyPhrase(p.Frequency)})
}

// subRequest stores a subscription request and queues its confirmation,
// unless the address has had too many this hour.
func (s *Service) subRequest(ctx context.Context, addr string, t store.Target, frequency string) error {
	now := s.now()
	res, err := s.db.RequestSubscription(ctx, store.SubscriptionRequest{
		Address: addr, Target: t, Frequency: frequency,
		Limit: store.MailLimit{Max: s.cfg.ConfirmPerHour, Since: now.Add(-time.Hour)},
		Compose: func(sub store.Subscriber, p store.Subscription) ([]store.OutboxMessage, error) {
			m, err := s.composeConfirm(sub, p, now)
			if err != nil {
				return nil, err
			}
			return []store.OutboxMessage{m}, nil
		},
	})
	if err != nil {
		return err
	}
	if res.Limited {
		s.log.Warn("alerts: confirmation not sent: the address reached its hourly limit", slog.Int64("subscriber_id", res.Subscriber.ID))
	}
	s.enqueued(store.KindConfirm, res.Queued)
	return nil
}

// tokenFail answers a link whose token does not verify: expired links
// point to where a fresh one comes from.
func (s *Service) tokenFail(w http.ResponseWriter, r *http.Request, err error, restartURL, restartLabel string) {
	if errors.Is(err, ErrTokenExpired) {
		s.fail(w, r, http.StatusGone, errorPage{Heading: "This link has expired",
			Message: "Links in our emails work for 7 days. You can start again.", LinkURL: restartURL, LinkLabel: restartLabel}, nil)
		return
	}
	s.fail(w, r, http.StatusBadRequest, errorPage{Heading: "This link is not valid",
		Message: "Check that you copied the whole link from the email.", LinkURL: restartURL, LinkLabel: restartLabel}, nil)
}

// linkGone answers a genuine link that no longer applies.
func (s *Service) linkGone(w http.ResponseWriter, r *http.Request, msg, restartURL, restartLabel string) {
	s.fail(w, r, http.StatusGone, errorPage{Heading: "This link no longer works", Message: msg,
		LinkURL: restartURL, LinkLabel: restartLabel}, nil)
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

func (s *Service) confirmForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	t, err := s.keys.Verify(tok, s.now(), PurposeConfirm)
	if err != nil {
		s.tokenFail(w, r, err, "/subscribe", "Subscribe again")
		return
	}
	sub, err := s.db.SubscriptionByID(r.Context(), t.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.Status == store.SubscriptionEnded) {
		s.linkGone(w, r, "This subscription request was cancelled or has expired.", "/subscribe", "Subscribe again")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	p := confirmPage{Mode: "subscription", State: "ask", Action: "/subscribe/confirm", Token: tok,
		Name: sub.Name, Kind: kindLabel(sub.Kind), FrequencyPhrase: frequencyPhrase(sub.Frequency)}
	if sub.Status == store.SubscriptionActive {
		p.State = "already"
	} else {
		p.CSRF = s.csrf.Token(w, r)
	}
	s.render(w, http.StatusOK, "confirm", p)
}

func (s *Service) confirmPost(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	tok := r.PostForm.Get("token")
	t, err := s.keys.Verify(tok, s.now(), PurposeConfirm)
	if err != nil {
		s.tokenFail(w, r, err, "/subscribe", "Subscribe again")
		return
	}
	if !s.csrf.Valid(r) {
		sub, err := s.db.SubscriptionByID(r.Context(), t.Subject)
		if err != nil {
			s.linkGone(w, r, "This subscription request was cancelled or has expired.", "/subscribe", "Subscribe again")
			return
		}
		s.render(w, http.StatusForbidden, "confirm", confirmPage{Mode: "subscription", State: "ask", Action: "/subscribe/confirm",
			Token: tok, CSRF: s.csrf.Token(w, r), Name: sub.Name, Kind: kindLabel(sub.Kind), FrequencyPhrase: frequencyPhrase(sub.Frequency),
			Error: "This page had expired, so nothing changed. Please press the button again."})
		return
	}
	now := s.now()
	res, err := s.db.ConfirmSubscription(r.Context(), t.Subject, func(res store.ConfirmResult) ([]store.OutboxMessage, error) {
		m, err := s.composeWelcome(res, now)
		if err != nil {
			return nil, err
		}
		return []store.OutboxMessage{m}, nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSubscriptionEnded) {
		s.linkGone(w, r, "This subscription request was cancelled or has expired.", "/subscribe", "Subscribe again")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	s.enqueued(store.KindWelcome, res.Queued)
	p := confirmPage{Mode: "subscription", State: "done", Name: res.Subscription.Name, Kind: kindLabel(res.Subscription.Kind),
		FrequencyPhrase: frequencyPhrase(res.Subscription.Frequency), ManageURL: s.manageURL(res.Subscriber.ID, now)}
	if res.AlreadyActive {
		p.State = "already"
	}
	if res.Replaced != nil {
		p.OldFrequencyPhrase = frequencyPhrase(res.Replaced.Frequency)
	}
	s.render(w, http.StatusOK, "confirm", p)
}

// manageRequestPage is the data of manage_request.html.
type manageRequestPage struct {
	CSRF   string
	Email  string
	Errors subErrors
}

func (s *Service) manageRequestForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "manage_request", manageRequestPage{CSRF: s.csrf.Token(w, r)})
}

// manageSentPage is the data of manage_sent.html: the same whether or not
// the address is known.
type manageSentPage struct {
	Email string
}

func (s *Service) manageRequestPost(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	p := manageRequestPage{Email: strings.TrimSpace(r.PostForm.Get("email"))}
	status := http.StatusUnprocessableEntity
	addr, msg := subCheckAddress(p.Email)
	if msg != "" {
		p.Errors.add("email", msg)
	}
	if !s.csrf.Valid(r) {
		p.Errors.add("csrf", "This form had expired, so nothing was sent. Please press “Send me a link” again.")
		status = http.StatusForbidden
	}
	if len(p.Errors) > 0 {
		p.Email = text.Line(p.Email)
		p.CSRF = s.csrf.Token(w, r)
		s.render(w, status, "manage_request", p)
		return
	}
	if s.ipLimit.allow(ClientKey(r), s.now()) {
		s.subBackground(r, "manage link request", func(ctx context.Context) error {
			now := s.now()
			queued, err := s.db.RequestManageLink(ctx, addr, store.MailLimit{Max: s.cfg.ConfirmPerHour, Since: now.Add(-time.Hour)},
				func(sub store.Subscriber) ([]store.OutboxMessage, error) {
					m, err := s.composeManage(sub, now)
					if err != nil {
						return nil, err
					}
					return []store.OutboxMessage{m}, nil
				})
			if queued {
				s.enqueued(store.KindManage, 1)
			}
			return err
		})
	} else {
		s.log.Warn("alerts: manage link request over the per-client hourly limit; no email sent")
	}
	s.render(w, http.StatusOK, "manage_sent", manageSentPage{Email: addr})
}

// manageRow is one subscription on the manage page.
type manageRow struct {
	ID        int64
	Name      string
	Kind      string
	URL       string
	Frequency string
	Retired   bool
	Error     string
}

// managePageData is the data of manage.html.
type managePageData struct {
	CSRF           string
	Action         string
	Address        string
	PendingAddress string
	Rows           []manageRow
	Frequencies    []string
	Notice         string
	Email          string
	Errors         subErrors
}

// manageNotices are the messages after each action (a redirect carries
// only the action's name, never free text).
var manageNotices = map[string]string{
	"frequency": "Your subscription has been changed.",
	"end":       "That subscription has ended. You will get no more emails about it.",
	"end_all":   "You have unsubscribed from everything. You will get no more emails from us.",
	"address":   "We have sent a link to your new address. Your emails will go there once you follow it.",
}

// manageSubscriber verifies the manage token in the path, answering
// itself when it fails.
func (s *Service) manageSubscriber(w http.ResponseWriter, r *http.Request) (store.Subscriber, bool) {
	t, err := s.keys.Verify(r.PathValue("token"), s.now(), PurposeManage)
	if err != nil {
		s.tokenFail(w, r, err, "/manage", "Get a new link")
		return store.Subscriber{}, false
	}
	sub, err := s.db.SubscriberByID(r.Context(), t.Subject)
	if errors.Is(err, store.ErrNotFound) {
		s.linkGone(w, r, "There is nothing to manage for this link any more.", "/subscribe", "Subscribe")
		return store.Subscriber{}, false
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return store.Subscriber{}, false
	}
	return sub, true
}

// renderManage shows the manage page with the subscriber's subscriptions.
func (s *Service) renderManage(w http.ResponseWriter, r *http.Request, status int, sub store.Subscriber, p managePageData, rowErr map[int64]string) {
	subs, err := s.db.Subscriptions(r.Context(), sub.ID)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	p.CSRF = s.csrf.Token(w, r)
	p.Action = "/manage/" + r.PathValue("token")
	p.Address, p.PendingAddress = sub.Address, sub.PendingAddress
	p.Frequencies = store.Frequencies
	for _, x := range subs {
		p.Rows = append(p.Rows, manageRow{ID: x.ID, Name: x.Name, Kind: kindLabel(x.Kind), URL: s.targetURL(x),
			Frequency: x.Frequency, Retired: x.TopicRetired, Error: rowErr[x.ID]})
	}
	s.render(w, status, "manage", p)
}

func (s *Service) managePage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.manageSubscriber(w, r)
	if !ok {
		return
	}
	s.renderManage(w, r, http.StatusOK, sub, managePageData{Notice: manageNotices[r.URL.Query().Get("done")]}, nil)
}

func (s *Service) manageAction(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	sub, ok := s.manageSubscriber(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	if !s.csrf.Valid(r) {
		s.renderManage(w, r, http.StatusForbidden, sub, managePageData{Notice: "This page had expired, so nothing changed. Please try again."}, nil)
		return
	}
	ctx := r.Context()
	action := f.Get("action")
	id, _ := strconv.ParseInt(f.Get("subscription"), 10, 64)
	switch action {
	case "frequency":
		freq := f.Get("frequency")
		if msg := subCheckFrequency(freq); msg != "" {
			s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePageData{}, map[int64]string{id: msg})
			return
		}
		if _, err := s.db.ChangeFrequency(ctx, sub.ID, id, freq); errors.Is(err, store.ErrNotFound) {
			s.renderManage(w, r, http.StatusNotFound, sub, managePageData{Notice: "That subscription had already ended."}, nil)
			return
		} else if err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
	case "end":
		if id <= 0 {
			s.fail(w, r, http.StatusBadRequest, errorPage{Heading: "That form could not be read", Message: "Please go back and try again."}, nil)
			return
		}
		if _, err := s.db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: sub.ID, SubscriptionID: id}); err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
	case "end_all":
		if _, err := s.db.EndSubscriptions(ctx, store.EndFilter{SubscriberID: sub.ID}); err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
	case "address":
		email := strings.TrimSpace(f.Get("email"))
		addr, msg := subCheckAddress(email)
		if msg == "" && addr == sub.Address {
			msg = "That is already your address."
		}
		if msg != "" {
			var e subErrors
			e.add("email", msg)
			s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePageData{Email: text.Line(email), Errors: e}, nil)
			return
		}
		now := s.now()
		queued, err := s.db.RequestAddressChange(ctx, sub.ID, addr, store.MailLimit{Max: s.cfg.ConfirmPerHour, Since: now.Add(-time.Hour)},
			func(sub store.Subscriber) ([]store.OutboxMessage, error) {
				m, err := s.composeAddressChange(sub, now)
				if err != nil {
					return nil, err
				}
				return []store.OutboxMessage{m}, nil
			})
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
		if !queued {
			var e subErrors
			e.add("email", "You have asked for several links in the last hour. Please wait a while and try again.")
			s.renderManage(w, r, http.StatusTooManyRequests, sub, managePageData{Email: addr, Errors: e}, nil)
			return
		}
		s.enqueued(store.KindAddressChange, 1)
	default:
		s.fail(w, r, http.StatusBadRequest, errorPage{Heading: "That form could not be read", Message: "Please go back and try again."}, nil)
		return
	}
	http.Redirect(w, r, "/manage/"+r.PathValue("token")+"?done="+action, http.StatusSeeOther)
}

// addressChange verifies an address-change token and that it is the
// subscriber's latest request, answering itself when not.
func (s *Service) addressChange(w http.ResponseWriter, r *http.Request) (Token, store.Subscriber, bool) {
	t, err := s.keys.Verify(r.PathValue("token"), s.now(), PurposeAddressChange)
	if err != nil {
		s.tokenFail(w, r, err, "/manage", "Manage your subscriptions")
		return t, store.Subscriber{}, false
	}
	sub, err := s.db.SubscriberByID(r.Context(), t.Subject)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return t, sub, false
	}
	if err != nil || sub.PendingAddress == "" || sub.PendingNonce != t.Aux {
		s.linkGone(w, r, "This change of address was already made, or replaced by a later request.", "/manage", "Manage your subscriptions")
		return t, sub, false
	}
	return t, sub, true
}

func (s *Service) addressForm(w http.ResponseWriter, r *http.Request) {
	_, sub, ok := s.addressChange(w, r)
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "confirm", confirmPage{Mode: "address", State: "ask", Action: "/manage/address/" + r.PathValue("token"),
		CSRF: s.csrf.Token(w, r), Address: sub.PendingAddress})
}

func (s *Service) addressPost(w http.ResponseWriter, r *http.Request) {
	if !s.readForm(w, r) {
		return
	}
	t, sub, ok := s.addressChange(w, r)
	if !ok {
		return
	}
	if !s.csrf.Valid(r) {
		s.render(w, http.StatusForbidden, "confirm", confirmPage{Mode: "address", State: "ask", Action: "/manage/address/" + r.PathValue("token"),
			CSRF: s.csrf.Token(w, r), Address: sub.PendingAddress, Error: "This page had expired, so nothing changed. Please press the button again."})
		return
	}
	sub, err := s.db.ConfirmAddressChange(r.Context(), t.Subject, t.Aux)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.linkGone(w, r, "This change of address was already made, or replaced by a later request.", "/manage", "Manage your subscriptions")
		return
	case errors.Is(err, store.ErrConflict):
		// Only the owner of the new address can get here, so saying it is
		// taken discloses nothing to anyone else.
		s.fail(w, r, http.StatusConflict, errorPage{Heading: "That address already has its own subscriptions",
			Message: "Your subscriptions stay with your old address. To manage those of this address, ask for a link sent to it.",
			LinkURL: "/manage", LinkLabel: "Manage subscriptions"}, nil)
		return
	case err != nil:
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	s.render(w, http.StatusOK, "confirm", confirmPage{Mode: "address", State: "done", Address: sub.Address,
		ManageURL: s.manageURL(sub.ID, s.now())})
}

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

// unsubscribeToken verifies an unsubscribe token (they never expire),
// answering itself when it is not genuine.
func (s *Service) unsubscribeToken(w http.ResponseWriter, r *http.Request) (Token, string, bool) {
	t, err := s.keys.Verify(r.PathValue("token"), s.now(), PurposeUnsubscribe, PurposeUnsubscribeAll)
	freq, okFreq := frequencyOfCode(t.Aux)
	if err != nil || (t.Purpose == PurposeUnsubscribeAll && !okFreq) {
		s.fail(w, r, http.StatusBadRequest, errorPage{Heading: "This unsubscribe link is not valid",
			Message: "Check that you copied the whole link from the email, or manage your subscriptions instead.",
			LinkURL: "/manage", LinkLabel: "Manage your subscriptions"}, nil)
		return t, "", false
	}
	if t.Purpose != PurposeUnsubscribeAll {
		freq = ""
	}
	return t, freq, true
}

func (s *Service) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	t, freq, ok := s.unsubscribeToken(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	p := unsubscribePage{Action: "/unsubscribe/" + r.PathValue("token")}
	if t.Purpose == PurposeUnsubscribe {
		sub, err := s.db.SubscriptionByID(ctx, t.Subject)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
			return
		}
		if err != nil || sub.Status == store.SubscriptionEnded {
			s.render(w, http.StatusOK, "unsubscribed", p)
			return
		}
		p.Pending = sub.Status == store.SubscriptionPending
		p.What = "emails about " + sub.Name + " (" + kindLabel(sub.Kind) + "), sent " + frequencyPhrase(sub.Frequency)
		if p.Pending {
			p.What = "your request to subscribe to " + sub.Name
		}
		s.render(w, http.StatusOK, "unsubscribe", p)
		return
	}
	subs, err := s.db.Subscriptions(ctx, t.Subject)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	n := 0
	for _, x := range subs {
		if freq == "" || x.Frequency == freq {
			n++
		}
	}
	if n == 0 {
		s.render(w, http.StatusOK, "unsubscribed", p)
		return
	}
	p.What = "all your emails from " + s.cfg.SiteName
	if freq != "" {
		p.What = "all your emails sent " + frequencyPhrase(freq)
	}
	s.render(w, http.StatusOK, "unsubscribe", p)
}

// unsubscribePost ends what the token names, with no cookie and no CSRF
// token (RFC 8058: mail clients POST List-Unsubscribe=One-Click). It is
// idempotent: a second POST ends nothing and still answers 200.
func (s *Service) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, subMaxForm)
	t, freq, ok := s.unsubscribeToken(w, r)
	if !ok {
		return
	}
	f := store.EndFilter{SubscriptionID: t.Subject}
	if t.Purpose == PurposeUnsubscribeAll {
		f = store.EndFilter{SubscriberID: t.Subject, Frequency: freq}
	}
	ended, err := s.db.EndSubscriptions(r.Context(), f)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, errorPage{}, err)
		return
	}
	p := unsubscribePage{}
	for _, x := range ended {
		p.Ended = append(p.Ended, manageRow{ID: x.ID, Name: x.Name, Kind: kindLabel(x.Kind), URL: s.targetURL(x), Frequency: x.Frequency})
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
	s.render(w, http.StatusOK, "unsubscribed", p)
}
