package pull

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// pullMetrics are the puller's Prometheus metrics; a nil *pullMetrics
// records nothing.
type pullMetrics struct {
	pulls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	releases *prometheus.CounterVec
}

func newPullMetrics(reg prometheus.Registerer) *pullMetrics {
	if reg == nil {
		return nil
	}
	return &pullMetrics{
		pulls: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_pulls_total",
			Help: "Pulls of publishers' feeds, by source and result (new, updated, unchanged, not-modified, failed, skipped).",
		}, []string{"source", "result"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_pull_duration_seconds",
			Help:    "Time to fetch, parse and store one source's feed.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"source"})),
		releases: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_releases_stored_total",
			Help: "Releases written by pulls: new ones and edits of stored ones.",
		}, []string{"kind"})),
	}
}

func (m *pullMetrics) pulled(r SourceReport) {
	if m == nil {
		return
	}
	m.pulls.WithLabelValues(r.Source, r.Status).Inc()
	if r.Status != StatusSkipped {
		m.duration.WithLabelValues(r.Source).Observe(r.Duration.Seconds())
	}
}

func (m *pullMetrics) stored(newCount, updated int) {
	if m == nil {
		return
	}
	m.releases.WithLabelValues("new").Add(float64(newCount))
	m.releases.WithLabelValues("updated").Add(float64(updated))
}

// register registers c, or returns the identical collector already
// registered, so two pullers on one registry share their counts. A
// clashing definition under the same name panics, as MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}
