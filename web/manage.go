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
	s.render(w, r, status, "manage_request", &view{Title: s.say("title.manage_request"), Data: p})
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
	status, err := s.formProblems(err, p.Errors)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.csrf.valid(r) {
		p.Errors.Add("csrf", "%s", s.say("form.csrf.manage_request"))
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
	s.render(w, r, http.StatusOK, "manage_sent", &view{Title: s.say("title.check_email"), Data: manageSentPage{Email: addr}})
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
	return manageRow{ID: x.ID, Name: x.Name, Kind: s.kindLabel(x.Kind), URL: url, Frequency: x.Frequency, Retired: x.TopicRetired}
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

// manageNotice is the notice after action done (a redirect carries only
// the action's name, never free text): the message "manage.notice.ACTION",
// or "" for no action.
func (s *Server) manageNotice(done string) string {
	switch done {
	case alerts.ActionFrequency, alerts.ActionEnd, alerts.ActionAddress:
	case alerts.ActionEndAll:
		done = "end_all"
	default:
		return ""
	}
	return s.say("manage.notice." + done)
}

// manageSubscriber finds the subscriber of the manage link in the path,
// answering itself when it fails.
func (s *Server) manageSubscriber(w http.ResponseWriter, r *http.Request) (store.Subscriber, bool) {
	sub, err := s.deps.Alerts.ManageSubscriber(r.Context(), r.PathValue("token"))
	if errors.Is(err, alerts.ErrLinkGone) {
		s.linkFailed(w, r, err, "link.gone.manage", restart{"/subscribe", "link.to.subscribe"})
		return sub, false
	}
	if err != nil {
		s.linkFailed(w, r, err, "", restart{"/manage", "link.to.new_manage_link"})
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
	s.render(w, r, status, "manage", &view{Title: s.say("title.manage"), Data: p})
}

func (s *Server) managePage(w http.ResponseWriter, r *http.Request) {
	sub, ok := s.manageSubscriber(w, r)
	if !ok {
		return
	}
	s.renderManage(w, r, http.StatusOK, sub, managePage{Notice: s.manageNotice(r.URL.Query().Get("done"))}, nil)
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
		s.renderManage(w, r, http.StatusForbidden, sub, managePage{Notice: s.say("form.csrf.manage")}, nil)
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
		s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePage{}, map[int64]string{a.Subscription: s.say(problems[0].Message, problems[0].Data...)})
	case errors.As(err, &problems):
		s.renderManage(w, r, http.StatusUnprocessableEntity, sub, managePage{Email: cleanLine(a.Email, subMaxForm),
			Errors: admin.FieldErrors{"email": s.say(problems[0].Message, problems[0].Data...)}}, nil)
	case errors.Is(err, alerts.ErrTooManyLinks):
		addr, _ := alerts.CheckAddress(a.Email)
		s.renderManage(w, r, http.StatusTooManyRequests, sub, managePage{Email: addr,
			Errors: admin.FieldErrors{"email": s.say("form.email.too_many_links")}}, nil)
	case errors.Is(err, store.ErrNotFound):
		s.renderManage(w, r, http.StatusNotFound, sub, managePage{Notice: s.say("manage.notice.gone")}, nil)
	case errors.Is(err, alerts.ErrInvalid):
		s.badForm(w, r)
	default:
		s.fail(w, r, err)
	}
}

// addressGone explains an address-change link that no longer applies.
const addressGone = "link.gone.address"

var manageAgain = restart{"/manage", "link.to.manage"}

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
		s.askAddress(w, r, http.StatusForbidden, sub, s.say("form.csrf.button"))
		return
	}
	res, err := s.deps.Alerts.ChangeAddress(ctx, tok)
	if errors.Is(err, alerts.ErrAddressTaken) {
		s.showError(w, r, errorPage{Status: http.StatusConflict, Heading: s.say("link.address_taken.heading"),
			Message: s.say("link.address_taken"), LinkURL: "/manage", LinkLabel: s.say("link.to.manage_short")})
		return
	}
	if err != nil {
		s.linkFailed(w, r, err, addressGone, manageAgain)
		return
	}
	s.renderConfirm(w, r, http.StatusOK, confirmPage{Mode: "address", State: "done", Address: res.Subscriber.Address, ManageURL: res.ManageURL})
}
