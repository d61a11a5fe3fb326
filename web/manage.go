package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"herald/alerts"
	"herald/store"
	"herald/web/admin"
)

// manageRequestPage is the data of manage_request.html.
type manageRequestPage struct {
	CSRF   string
	Email  string
	Errors admin.FieldErrors
}

func (s *Server) renderManageRequest(w http.ResponseWriter, r *http.Request, status int, p manageRequestPage) {
	s.render(w, r, status, "manage_request", &view{Title: "Manage your subscriptions", Data: p})
}

func (s *Server) manageRequestForm(w http.ResponseWriter, r *http.Request) {
	s.renderManageRequest(w, r, http.StatusOK, manageRequestPage{CSRF: s.csrf.token(w, r)})
}

// manageSentPage is the data of manage_sent.html: the same whether or not
// the address is known.
type manageSentPage struct {
	Email string
}

func (s *Server) manageRequestPost(w http.ResponseWriter, r *http.Request) {
	if !s.readSubForm(w, r) {
		return
	}
	ctx := r.Context()
	p := manageRequestPage{Email: strings.TrimSpace(r.PostForm.Get("email")), Errors: admin.FieldErrors{}}
	addr, err := alerts.CheckAddress(p.Email)
	status, err := s.formProblems(ctx, err, p.Errors)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.csrf.valid(r) {
		p.Errors.Add("csrf", "This form had expired, so nothing was sent. Please press “Send me a link” again.")
		status = http.StatusForbidden
	}
	if len(p.Errors) > 0 {
		p.Email = cleanLine(p.Email, subMaxForm)
		p.CSRF = s.csrf.token(w, r)
		s.renderManageRequest(w, r, status, p)
		return
	}
	allowed, err := s.signups.allow(ctx, clientKey(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if allowed {
		if err := s.deps.Alerts.RequestManageLink(ctx, addr); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		s.log.WarnContext(ctx, "manage link request over the per-client hourly limit; no email sent")
	}
	s.render(w, r, http.StatusOK, "manage_sent", &view{Title: "Check your email", Data: manageSentPage{Email: addr}})
}

// manageRow is one subscription on the manage and unsubscribed pages.
type manageRow struct {
	ID        int64
	Name      string
	Kind      string
	URL       string
	Frequency string
	Retired   bool
	Error     string
}

// subscriptionRow is the row of x; its URL is the target's page.
func (s *Server) subscriptionRow(x store.Subscription) manageRow {
	url := s.abs("/" + x.Kind + "s/" + x.Slug)
	if x.Kind == "search" {
		url = s.abs("/search?" + x.Slug)
	}
	return manageRow{ID: x.ID, Name: x.Name, Kind: alerts.KindLabel(x.Kind), URL: url, Frequency: x.Frequency, Retired: x.TopicRetired}
}

// managePage is the data of manage.html.
type managePage struct {
	CSRF           string
	Action         string
	Address        string
	PendingAddress string
	Rows           []manageRow
	Frequencies    []string
	Notice         string
	Email          string
	Errors         admin.FieldErrors
}

// manageNotices are the messages after each action (a redirect carries
// only the action's name, never free text).
var manageNotices = map[string]string{
	alerts.ActionFrequency: "Your subscription has been changed.",
	alerts.ActionEnd:       "That subscription has ended. You will get no more emails about it.",
	alerts.ActionEndAll:    "You have unsubscribed from everything. You will get no more emails from us.",
	alerts.ActionAddress:   "We have sent a link to your new address. Your emails will go there once you follow it.",
}

// manageSubscriber finds the subscriber of the manage link in the path,
// answering itself when it fails.
func (s *Server) manageSubscriber(w http.ResponseWriter, r *http.Request) (store.Subscriber, bool) {
	sub, err := s.deps.Alerts.ManageSubscriber(r.Context(), r.PathValue("token"))
	if errors.Is(err, alerts.ErrLinkGone) {
		s.linkFailed(w, r, err, "There is nothing to manage for this link any more.", restart{"/subscribe", "Subscribe"})
		return sub, false
	}
	if err != nil {
		s.linkFailed(w, r, err, "", restart{"/manage", "Get a new link"})
		return sub, false
	}
	return sub, true
}

// renderManage shows the manage page with the subscriber's subscriptions;
// rowErr holds a problem beside one of them.
func (s *Server) renderManage(w http.ResponseWriter, r *http.Request, status int, sub store.Subscriber, p managePage, rowErr map[int64]string) {
	subs, err := s.deps.Alerts.Subscriptions(r.Context(), sub.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.CSRF = s.csrf.token(w, r)
	p.Action = "/manage/" + r.PathValue("token")
	p.Address, p.PendingAddress = sub.Address, sub.PendingAddress
	p.Frequencies = store.Frequencies()
	for _, x := range subs {
		row := s.subscriptionRow(x)
		row.Error = rowErr[x.ID]
		p.Rows = append(p.Rows, row)
	}
	s.render(w, r, status, "manage", &view{Title: "Your subscriptions", Data: p})
}

func (s *Server) managePage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.manageSubscriber(w, r)
	if !ok {
		return
	}
	s.renderManage(w, r, http.StatusOK, sub, managePage{Notice: manageNotices[r.URL.Query().Get("done")]}, nil)
}

func (s *Server) manageAction(w http.ResponseWriter, r *http.Request) {
	if !s.readSubForm(w, r) {
		return
	}
	sub, ok := s.manageSubscriber(w, r)
	if !ok {
		return
	}
	if !s.csrf.valid(r) {
		s.renderManage(w, r, http.StatusForbidden, sub, managePage{Notice: "This page had expired, so nothing changed. Please try again."}, nil)
		return
	}
	f := r.PostForm
	a := alerts.ManageAction{Action: f.Get("action"), Frequency: f.Get("frequency"), Email: strings.TrimSpace(f.Get("email"))}
	a.Subscription, _ = strconv.ParseInt(f.Get("subscription"), 10, 64)
	err := s.deps.Alerts.ApplyManageAction(r.Context(), sub, a)
	var problems alerts.FieldErrors
	switch {
	case err == nil:
		http.Redirect(w, r, "/manage/"+r.PathValue("token")+"?done="+a.Action, http.StatusSeeOther)
	case errors.As(err, &problems) && a.Action == alerts.ActionFrequency:
		s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePage{}, map[int64]string{a.Subscription: problems[0].Message})
	case errors.As(err, &problems):
		s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePage{Email: cleanLine(a.Email, subMaxForm),
			Errors: admin.FieldErrors{"email": problems[0].Message}}, nil)
	case errors.Is(err, alerts.ErrTooManyLinks):
		addr, _ := alerts.CheckAddress(a.Email)
		s.renderManage(w, r, http.StatusTooManyRequests, sub, managePage{Email: addr,
			Errors: admin.FieldErrors{"email": "You have asked for several links in the last hour. Please wait a while and try again."}}, nil)
	case errors.Is(err, store.ErrNotFound):
		s.renderManage(w, r, http.StatusNotFound, sub, managePage{Notice: "That subscription had already ended."}, nil)
	case errors.Is(err, alerts.ErrInvalid):
		s.badForm(w, r)
	default:
		s.fail(w, r, err)
	}
}

// addressGone explains an address-change link that no longer applies.
const addressGone = "This change of address was already made, or replaced by a later request."

var manageAgain = restart{"/manage", "Manage your subscriptions"}

func (s *Server) askAddress(w http.ResponseWriter, r *http.Request, status int, sub store.Subscriber, problem string) {
	s.renderConfirm(w, r, status, confirmPage{Mode: "address", State: "ask", Action: "/manage/address/" + r.PathValue("token"),
		CSRF: s.csrf.token(w, r), Address: sub.PendingAddress, Error: problem})
}

func (s *Server) addressForm(w http.ResponseWriter, r *http.Request) {
	sub, err := s.deps.Alerts.PendingAddressChange(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkFailed(w, r, err, addressGone, manageAgain)
		return
	}
	s.askAddress(w, r, http.StatusOK, sub, "")
}

func (s *Server) addressPost(w http.ResponseWriter, r *http.Request) {
	if !s.readSubForm(w, r) {
		return
	}
	ctx := r.Context()
	tok := r.PathValue("token")
	sub, err := s.deps.Alerts.PendingAddressChange(ctx, tok)
	if err != nil {
		s.linkFailed(w, r, err, addressGone, manageAgain)
		return
	}
	if !s.csrf.valid(r) {
		s.askAddress(w, r, http.StatusForbidden, sub, "This page had expired, so nothing changed. Please press the button again.")
		return
	}
	res, err := s.deps.Alerts.ChangeAddress(ctx, tok)
	if errors.Is(err, alerts.ErrAddressTaken) {
		s.showError(w, r, errorPage{Status: http.StatusConflict, Heading: "That address already has its own subscriptions",
			Message: "Your subscriptions stay with your old address. To manage those of this address, ask for a link sent to it.",
			LinkURL: "/manage", LinkLabel: "Manage subscriptions"})
		return
	}
	if err != nil {
		s.linkFailed(w, r, err, addressGone, manageAgain)
		return
	}
	s.renderConfirm(w, r, http.StatusOK, confirmPage{Mode: "address", State: "done", Address: res.Subscriber.Address, ManageURL: res.ManageURL})
}
