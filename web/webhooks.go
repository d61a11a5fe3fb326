package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"herald/alerts/bounce"
	"herald/alerts/bounce/providers"
)

// BounceProcessor applies the bounce and complaint policy to one report
// (alerts/bounce's Processor is one): it ties the report to the message
// it concerns and refuses one it has seen (same Source and EventID).
type BounceProcessor interface {
	Process(ctx context.Context, r bounce.Report) (bounce.Outcome, error)
}

// WebhookProvider authenticates and reads one relay's webhook requests
// (alerts/bounce/providers has one per relay). Parse's errors wrap
// providers.ErrUnauthenticated, ErrMalformed or ErrUnavailable.
type WebhookProvider interface {
	Name() string
	Parse(ctx context.Context, header http.Header, body []byte) (providers.Result, error)
}

// webhookProviders are the names a metric may carry, so that requests for
// made-up names do not grow the metric's labels.
var webhookProviders = map[string]bool{"ses": true, "postmark": true, "sendgrid": true, "mailgun": true}

// webhookTally counts what a request's reports came to.
type webhookTally struct {
	reports, applied, ignored, suppressed, ended int
}

// webhook serves POST /webhooks/{provider}: it authenticates the request
// with the provider's rule, reads its reports and hands each to the
// processor. A refused request changes nothing. A processor failure
// answers 500 so the provider sends the request again; the reports
// processed before it are then refused as replays.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p, ok := s.webhooks[name]
	if !ok {
		label := name
		if !webhookProviders[label] {
			label = "other"
		}
		s.metrics.webhooks.WithLabelValues(label, "not_configured").Inc()
		writeJSON(w, http.StatusNotFound, apiError{Error: s.say("error.message.404")})
		return
	}
	var tally webhookTally
	res, err := s.readWebhook(r, p)
	if err == nil {
		err = s.processReports(r.Context(), res.Reports, &tally)
	}
	status := http.StatusOK
	if err != nil {
		status = statusOf(err)
	}
	s.metrics.webhooks.WithLabelValues(name, webhookResult(err)).Inc()

	attrs := []any{slog.String("provider", name), slog.Int("status", status), slog.Int("reports", tally.reports),
		slog.Int("applied", tally.applied), slog.Int("ignored", tally.ignored), slog.Int("suppressed", tally.suppressed),
		slog.Int("ended", tally.ended), slog.Int("skipped", res.Skipped)}
	if res.Note != "" {
		attrs = append(attrs, slog.String("note", res.Note))
	}
	switch {
	case err == nil:
		s.log.InfoContext(r.Context(), "webhook", attrs...)
		writeJSON(w, status, map[string]int{"reports": tally.reports, "applied": tally.applied})
		return
	case status >= 500:
		s.log.ErrorContext(r.Context(), "webhook failed", append(attrs, slog.Any("error", err))...)
	default:
		s.log.WarnContext(r.Context(), "webhook rejected", append(attrs, slog.Any("error", err))...)
	}
	writeJSON(w, status, apiError{Error: s.publicMessage(status, err)})
}

// readWebhook reads the body (within the server's limit) and lets the
// provider authenticate and parse it.
func (s *Server) readWebhook(r *http.Request, p WebhookProvider) (providers.Result, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return providers.Result{}, err
	}
	return p.Parse(r.Context(), r.Header, body)
}

// processReports hands each report to the processor, stopping at the
// first failure.
func (s *Server) processReports(ctx context.Context, reports []bounce.Report, t *webhookTally) error {
	for _, rep := range reports {
		out, err := s.deps.Bounces.Process(ctx, rep)
		if err != nil {
			return err
		}
		t.reports++
		if out.Applied {
			t.applied++
		} else {
			t.ignored++
		}
		if out.Suppressed {
			t.suppressed++
		}
		t.ended += out.Ended
	}
	return nil
}

// webhookResult names a request's result for the metric.
func webhookResult(err error) string {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, providers.ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, providers.ErrMalformed):
		return "malformed"
	case errors.As(err, &mbe):
		return "too_large"
	case errors.Is(err, providers.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
