package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"herald/store"
)

// topicOut is a topic as the API shows it.
type topicOut struct {
	store.Topic
	URL string `json:"url"`
	// Subscribers counts confirmed subscriptions per frequency; absent when
	// subscriber counts are not available.
	Subscribers map[string]int `json:"subscribers,omitempty"`
}

func (s *Server) topicOut(t store.Topic, counts map[string]map[string]int) topicOut {
	out := topicOut{Topic: t, URL: s.abs("/topics/" + t.Slug)}
	if counts != nil {
		out.Subscribers = map[string]int{"immediately": 0, "daily": 0, "weekly": 0}
		for f, n := range counts[t.Slug] {
			out.Subscribers[f] = n
		}
	}
	return out
}

// subscriptionCounts returns per-topic counts, or nil when no part of
// Herald counts subscribers.
func (s *Server) subscriptionCounts(ctx context.Context) (map[string]map[string]int, error) {
	if s.deps.SubscriberStats == nil {
		return nil, nil
	}
	c, err := s.deps.SubscriberStats.TopicSubscriptionCounts(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = map[string]map[string]int{}
	}
	return c, nil
}

func (s *Server) apiTopics(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	topics, err := s.db.Topics(ctx, r.URL.Query().Get("retired") == "true")
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	out := make([]topicOut, len(topics))
	for i, t := range topics {
		out[i] = s.topicOut(t, counts)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiTopic(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := s.db.TopicBySlug(ctx, r.PathValue("slug"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	counts, err := s.subscriptionCounts(ctx)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.topicOut(t, counts))
}

func (s *Server) apiCreateTopic(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in topicInput) (any, string, error) {
		t, err := s.createTopic(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return s.topicOut(t, nil), "/api/v1/topics/" + t.Slug, nil
	})
}

func (s *Server) createTopic(ctx context.Context, in topicInput) (store.Topic, error) {
	t, err := s.checkTopic(ctx, in, true)
	if err != nil {
		return store.Topic{}, err
	}
	t, err = s.db.CreateTopic(ctx, t)
	if store.IsConflict(err) {
		return store.Topic{}, fieldErrors{"slug": "is already taken by another topic"}
	}
	return t, err
}

func (s *Server) apiUpdateTopic(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in topicInput) (any, string, error) {
		t, err := s.updateTopic(r.Context(), r.PathValue("slug"), in)
		if err != nil {
			return nil, "", err
		}
		return s.topicOut(t, nil), "", nil
	})
}

// updateTopic changes an existing topic. Saving a retired topic brings it
// back (store.UpsertTopic's rule).
func (s *Server) updateTopic(ctx context.Context, slug string, in topicInput) (store.Topic, error) {
	if _, err := s.db.TopicBySlug(ctx, slug); err != nil {
		return store.Topic{}, err
	}
	if in.Slug != "" && in.Slug != slug {
		return store.Topic{}, fieldErrors{"slug": "cannot be changed; create a new topic and retire this one"}
	}
	in.Slug = slug
	t, err := s.checkTopic(ctx, in, false)
	if err != nil {
		return store.Topic{}, err
	}
	return s.db.UpsertTopic(ctx, t)
}

func (s *Server) apiRetireTopic(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	if err := s.db.RetireTopic(ctx, slug); err != nil {
		s.apiFail(w, r, err)
		return
	}
	t, err := s.db.TopicBySlug(ctx, slug)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.topicOut(t, nil))
}

// previewOut is what a rule would have done.
type previewOut struct {
	// Matched30d counts releases first stored in the last 30 days that the
	// rule matches.
	Matched30d int            `json:"matched_30d"`
	Examples   []releaseBrief `json:"examples"`
	// Subscribers counts the current subscribers who would be emailed
	// about what the rule matches: those of the topic being edited, and
	// those following one of the rule's departments, each once.
	Subscribers int `json:"subscribers"`
}

type releaseBrief struct {
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	Department string    `json:"department"`
	Published  time.Time `json:"published"`
	URL        string    `json:"url"`
}

const previewWindow = 30 * 24 * time.Hour

func (s *Server) preview(ctx context.Context, in previewInput) (previewOut, error) {
	fe := fieldErrors{}
	if in.Slug != "" {
		checkSlug(fe, "slug", in.Slug)
	}
	rule, err := s.checkRule(ctx, fe, in.Match)
	if err != nil {
		return previewOut{}, err
	}
	if err := fe.err(); err != nil {
		return previewOut{}, err
	}
	n, examples, err := s.db.RuleMatches(ctx, rule, s.db.Now().Add(-previewWindow), 10)
	if err != nil {
		return previewOut{}, err
	}
	out := previewOut{Matched30d: n, Examples: []releaseBrief{}}
	for _, r := range examples {
		out.Examples = append(out.Examples, releaseBrief{ID: r.ID, Title: r.Title, Department: r.DepartmentName,
			Published: r.Published, URL: s.abs("/releases/" + strconv.FormatInt(r.ID, 10))})
	}
	if out.Subscribers, err = s.db.RuleAudience(ctx, in.Slug, rule.Departments); err != nil {
		return previewOut{}, err
	}
	return out, nil
}

func (s *Server) apiPreviewTopic(w http.ResponseWriter, r *http.Request) {
	var in previewInput
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	out, err := s.preview(r.Context(), in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// sourceOut is a source with a one-word summary of its health.
type sourceOut struct {
	store.Source
	// Health is "ok", "failing", "never-pulled" or "disabled".
	Health string `json:"health"`
}

func health(src store.Source) string {
	switch {
	case !src.Enabled:
		return "disabled"
	case src.FailureCount > 0:
		return "failing"
	case src.LastPullAt.IsZero():
		return "never-pulled"
	}
	return "ok"
}

func sourceView(src store.Source) sourceOut { return sourceOut{Source: src, Health: health(src)} }

func (s *Server) apiSources(w http.ResponseWriter, r *http.Request) {
	srcs, err := s.db.Sources(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	out := make([]sourceOut, len(srcs))
	for i, src := range srcs {
		out[i] = sourceView(src)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.db.SourceByName(r.Context(), r.PathValue("name"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourceView(src))
}

func (s *Server) createSource(ctx context.Context, in sourceInput) (store.Source, error) {
	src, err := s.checkSource(ctx, in, true)
	if err != nil {
		return store.Source{}, err
	}
	src, err = s.db.CreateSource(ctx, src)
	if store.IsConflict(err) {
		return store.Source{}, fieldErrors{"name": "is already taken by another source"}
	}
	return src, err
}

func (s *Server) apiCreateSource(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in sourceInput) (any, string, error) {
		src, err := s.createSource(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return sourceView(src), "/api/v1/sources/" + src.Name, nil
	})
}

// updateSource changes an existing source; an omitted enabled keeps the
// current setting.
func (s *Server) updateSource(ctx context.Context, name string, in sourceInput) (store.Source, error) {
	old, err := s.db.SourceByName(ctx, name)
	if err != nil {
		return store.Source{}, err
	}
	if in.Name != "" && in.Name != name {
		return store.Source{}, fieldErrors{"name": "cannot be changed"}
	}
	in.Name = name
	if in.Enabled == nil {
		in.Enabled = &old.Enabled
	}
	src, err := s.checkSource(ctx, in, false)
	if err != nil {
		return store.Source{}, err
	}
	return s.db.UpsertSource(ctx, src)
}

func (s *Server) apiUpdateSource(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in sourceInput) (any, string, error) {
		src, err := s.updateSource(r.Context(), r.PathValue("name"), in)
		if err != nil {
			return nil, "", err
		}
		return sourceView(src), "", nil
	})
}

func (s *Server) apiEnableSource(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		name := r.PathValue("name")
		if err := s.db.SetSourceEnabled(ctx, name, enabled); err != nil {
			s.apiFail(w, r, err)
			return
		}
		src, err := s.db.SourceByName(ctx, name)
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sourceView(src))
	}
}

// pullNow pulls a source and returns its state afterwards. A failed fetch
// is the publisher's problem, answered 502 with the reason; the failure is
// also on the source's health.
func (s *Server) pullNow(ctx context.Context, name string) (store.Source, error) {
	if _, err := s.db.SourceByName(ctx, name); err != nil {
		return store.Source{}, err
	}
	if err := s.deps.Puller.PullSource(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.Source{}, err
		}
		return store.Source{}, &httpError{status: http.StatusBadGateway, msg: "Pulling " + name + " failed: " + err.Error(), err: err}
	}
	return s.db.SourceByName(ctx, name)
}

func (s *Server) apiPullSource(w http.ResponseWriter, r *http.Request) {
	src, err := s.pullNow(r.Context(), r.PathValue("name"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourceView(src))
}

func (s *Server) apiDepartments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.db.Departments(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if ds == nil {
		ds = []store.Department{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *Server) apiDepartment(w http.ResponseWriter, r *http.Request) {
	d, err := s.db.DepartmentBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) createDepartment(ctx context.Context, in departmentInput) (store.Department, error) {
	d, err := checkDepartment(in, true)
	if err != nil {
		return store.Department{}, err
	}
	d, err = s.db.CreateDepartment(ctx, d)
	if store.IsConflict(err) {
		return store.Department{}, fieldErrors{"slug": "is already taken by another department"}
	}
	return d, err
}

func (s *Server) apiCreateDepartment(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in departmentInput) (any, string, error) {
		d, err := s.createDepartment(r.Context(), in)
		if err != nil {
			return nil, "", err
		}
		return d, "/api/v1/departments/" + d.Slug, nil
	})
}

func (s *Server) updateDepartment(ctx context.Context, slug string, in departmentInput) (store.Department, error) {
	if _, err := s.db.DepartmentBySlug(ctx, slug); err != nil {
		return store.Department{}, err
	}
	if in.Slug != "" && in.Slug != slug {
		return store.Department{}, fieldErrors{"slug": "cannot be changed"}
	}
	in.Slug = slug
	d, err := checkDepartment(in, false)
	if err != nil {
		return store.Department{}, err
	}
	return s.db.UpdateDepartment(ctx, slug, d)
}

func (s *Server) apiUpdateDepartment(w http.ResponseWriter, r *http.Request) {
	apiJSON(s, w, r, func(in departmentInput) (any, string, error) {
		d, err := s.updateDepartment(r.Context(), r.PathValue("slug"), in)
		if err != nil {
			return nil, "", err
		}
		return d, "", nil
	})
}

// queryAddress reads and checks ?address=.
func queryAddress(r *http.Request) (string, error) {
	fe := fieldErrors{}
	a := checkAddress(fe, "address", r.URL.Query().Get("address"))
	return a, fe.err()
}

func bodyAddress(r *http.Request) (string, error) {
	var in addressInput
	if err := decodeJSON(r, &in); err != nil {
		return "", err
	}
	fe := fieldErrors{}
	a := checkAddress(fe, "address", in.Address)
	return a, fe.err()
}

func (s *Server) apiLookupSubscriber(w http.ResponseWriter, r *http.Request) {
	addr, err := queryAddress(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	info, err := s.deps.Subscribers.LookupSubscriber(r.Context(), addr)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if info.Subscriptions == nil {
		info.Subscriptions = []SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, info)
}

// export returns a subscriber's data export, whole, so a failure half-way
// is an error status rather than a truncated file.
func (s *Server) export(ctx context.Context, addr string) ([]byte, error) {
	return s.deps.Subscribers.ExportSubscriber(ctx, addr)
}

func (s *Server) apiExportSubscriber(w http.ResponseWriter, r *http.Request) {
	addr, err := queryAddress(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	body, err := s.export(r.Context(), addr)
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
	addr, err := bodyAddress(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if err := s.deps.Subscribers.EraseSubscriber(r.Context(), addr); err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiLiftSuppression(w http.ResponseWriter, r *http.Request) {
	addr, err := bodyAddress(r)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if err := s.deps.Subscribers.LiftSuppression(r.Context(), addr); err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// outboxOut is the state of delivery.
type outboxOut struct {
	Counts map[string]int `json:"counts"`
	// Depth counts messages waiting or being sent; OldestWaiting is when
	// the oldest of them was queued.
	Depth         int       `json:"depth"`
	OldestWaiting time.Time `json:"oldest_waiting,omitzero"`
}

func (s *Server) outboxState(ctx context.Context) (outboxOut, error) {
	counts, err := s.deps.Outbox.OutboxCounts(ctx)
	if err != nil {
		return outboxOut{}, err
	}
	out := outboxOut{Counts: map[string]int{}}
	for _, st := range []string{store.StatusPending, store.StatusSending, store.StatusSent, store.StatusFailed, store.StatusSuppressed} {
		out.Counts[st] = 0
	}
	for k, v := range counts {
		out.Counts[k] = v
	}
	d, err := s.db.Dashboard(ctx, 1, s.cfg.Location)
	if err != nil {
		return outboxOut{}, err
	}
	out.Depth, out.OldestWaiting = d.OutboxDepth, d.OutboxOldest
	return out, nil
}

func (s *Server) apiOutbox(w http.ResponseWriter, r *http.Request) {
	out, err := s.outboxState(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiFailedMessages(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 500 {
			s.apiFail(w, r, fieldErrors{"limit": "must be a whole number from 1 to 500"})
			return
		}
		limit = n
	}
	msgs, err := s.deps.Outbox.FailedMessages(r.Context(), limit)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []store.OutboxMessage{}
	}
	writeJSON(w, http.StatusOK, msgs)
}

// messageID reads the {id} of an outbox route; a malformed one names no
// message.
func messageID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrNotFound
	}
	return id, nil
}

func (s *Server) retry(ctx context.Context, id int64) error {
	err := s.deps.Outbox.RetryMessage(ctx, id)
	if store.IsConflict(err) {
		return errStatus(http.StatusConflict, "Message %d has not failed, so there is nothing to retry.", id)
	}
	return err
}

func (s *Server) apiRetryMessage(w http.ResponseWriter, r *http.Request) {
	id, err := messageID(r)
	if err == nil {
		err = s.retry(r.Context(), id)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiJSON runs a create or update: it decodes the JSON body into In, calls
// do, and answers with what do returns: 201 with a Location when do names
// one (a create), else 200; errors go through apiFail.
func apiJSON[In any](s *Server, w http.ResponseWriter, r *http.Request, do func(in In) (out any, location string, err error)) {
	var in In
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	out, location, err := do(in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	status := http.StatusOK
	if location != "" {
		w.Header().Set("Location", s.abs(location))
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}
