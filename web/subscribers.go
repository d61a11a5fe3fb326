package web

import (
	"errors"
	"net/http"
	"net/url"

	"herald/store"
	"herald/web/admin"
)

// Subscribers in the admin API and the console: look-up, export, erasure
// and lifting a suppression, each of one address. The operations check the
// address themselves (admin.Address), so a handler passes on what was
// typed.

// addressInput is the body of the API's posts about one address.
type addressInput struct {
	Address string `json:"address"`
}

// ---- API ----

func (s *Server) apiLookupSubscriber(w http.ResponseWriter, r *http.Request) {
	info, err := s.deps.Subscribers.LookupSubscriber(r.Context(), r.URL.Query().Get("address"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if info.Subscriptions == nil {
		info.Subscriptions = []admin.SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) apiExportSubscriber(w http.ResponseWriter, r *http.Request) {
	body, err := s.deps.Subscribers.ExportSubscriber(r.Context(), r.URL.Query().Get("address"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="subscriber-export.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

func (s *Server) apiEraseSubscriber(w http.ResponseWriter, r *http.Request) {
	var in addressInput
	err := decodeJSON(r, &in)
	if err == nil {
		err = s.deps.Subscribers.EraseSubscriber(r.Context(), in.Address)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiLiftSuppression(w http.ResponseWriter, r *http.Request) {
	var in addressInput
	err := decodeJSON(r, &in)
	if err == nil {
		err = s.deps.Subscribers.LiftSuppression(r.Context(), in.Address)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// suppressionQuery reads the filters of a suppression list from a URL.
func suppressionQuery(r *http.Request) (admin.SuppressionQuery, error) {
	q := admin.SuppressionQuery{Cause: r.URL.Query().Get("cause"), Search: r.URL.Query().Get("q")}
	var err error
	q.Limit, err = queryLimit(r, 100, 1000)
	return q, err
}

func (s *Server) apiSuppressions(w http.ResponseWriter, r *http.Request) {
	q, err := suppressionQuery(r)
	var list []store.Suppression
	if err == nil {
		list, err = s.deps.Subscribers.ListSuppressions(r.Context(), q)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// ---- console ----

type suppressionsPage struct {
	Query  admin.SuppressionQuery
	Causes []string
	Error  string
	List   []store.Suppression
}

func (s *Server) adminSuppressions(w http.ResponseWriter, r *http.Request) {
	p := suppressionsPage{Causes: store.Causes()}
	status := http.StatusOK
	q, err := suppressionQuery(r)
	p.Query = q
	if err == nil {
		p.List, err = s.deps.Subscribers.ListSuppressions(r.Context(), q)
	}
	if errs, ok := s.formErrors(err); ok {
		for _, msg := range errs {
			p.Error = msg
		}
		status = http.StatusBadRequest
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, status, "admin_suppressions", "subscribers", s.say("console.title.suppressions"), p)
}

type subscribersPage struct {
	Address  string
	Error    string
	NotFound bool
	Info     *admin.SubscriberInfo
}

func (s *Server) adminSubscribers(w http.ResponseWriter, r *http.Request) {
	p := subscribersPage{}
	status := http.StatusOK
	if r.URL.Query().Has("address") {
		p.Address = r.URL.Query().Get("address")
		addr, err := admin.Address(p.Address)
		if errs, ok := s.formErrors(err); ok {
			p.Error, status = errs["address"], http.StatusBadRequest
		} else {
			p.Address = addr
			info, err := s.deps.Subscribers.LookupSubscriber(r.Context(), addr)
			switch {
			case errors.Is(err, store.ErrNotFound):
				p.NotFound = true
			case err != nil:
				s.fail(w, r, err)
				return
			default:
				p.Info = &info
			}
		}
	}
	s.adminRender(w, r, status, "admin_subscribers", "subscribers", s.say("console.title.subscribers"), p)
}

func (s *Server) adminExportSubscriber(w http.ResponseWriter, r *http.Request) {
	body, err := s.deps.Subscribers.ExportSubscriber(r.Context(), r.URL.Query().Get("address"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="subscriber-export.json"`)
	w.Write(body)
}

func (s *Server) adminEraseSubscriber(w http.ResponseWriter, r *http.Request) {
	addr, err := admin.Address(r.PostForm.Get("address"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.done(w, r, "/admin/subscribers?address="+url.QueryEscape(addr), s.say("console.done.erase_unconfirmed"))
		return
	}
	if err := s.deps.Subscribers.EraseSubscriber(r.Context(), addr); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "subscriber erased by an admin")
	s.done(w, r, "/admin/subscribers", s.say("console.done.erased"))
}

func (s *Server) adminLiftSuppression(w http.ResponseWriter, r *http.Request) {
	addr, err := admin.Address(r.PostForm.Get("address"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.deps.Subscribers.LiftSuppression(r.Context(), addr); err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/subscribers?address="+url.QueryEscape(addr), s.say("console.done.suppression_lifted"))
}
