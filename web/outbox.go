package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"herald/store"
)

// Email delivery in the admin API and the console: the state of the
// outbox, the failed messages, and sending one again.

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

// messageID reads the {id} of an outbox route; a malformed one names no
// message.
func messageID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrNotFound
	}
	return id, nil
}

// retry queues the message of the route's {id} again.
func (s *Server) retry(r *http.Request) error {
	id, err := messageID(r)
	if err != nil {
		return err
	}
	err = s.deps.Outbox.RetryMessage(r.Context(), id)
	if store.IsConflict(err) {
		return errStatus(http.StatusConflict, "console.error.not_failed", "ID", id)
	}
	return err
}

// ---- API ----

func (s *Server) apiOutbox(w http.ResponseWriter, r *http.Request) {
	out, err := s.outboxState(r.Context())
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiFailedMessages(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 50, 500)
	if err != nil {
		s.apiFail(w, r, err)
		return
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

func (s *Server) apiRetryMessage(w http.ResponseWriter, r *http.Request) {
	if err := s.retry(r); err != nil {
		s.apiFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- console ----

type outboxPage struct {
	State  outboxOut
	Failed []store.OutboxMessage
}

func (s *Server) adminOutbox(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.outboxState(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	failed, err := s.deps.Outbox.FailedMessages(ctx, 50)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.adminRender(w, r, http.StatusOK, "admin_outbox", "outbox", s.say("console.title.outbox"), outboxPage{State: st, Failed: failed})
}

func (s *Server) adminRetryMessage(w http.ResponseWriter, r *http.Request) {
	if err := s.retry(r); err != nil {
		s.fail(w, r, err)
		return
	}
	s.done(w, r, "/admin/outbox", s.say("console.done.retry"))
}
