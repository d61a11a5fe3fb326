package publish

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// publishMetrics are the publisher's Prometheus metrics. They exist even
// without a registry, so the serving path never checks for nil.
type publishMetrics struct {
	renders     prometheus.Counter
	renderTime  prometheus.Histogram
	requests200 prometheus.Counter
	requests304 prometheus.Counter
	requests404 prometheus.Counter
	deliveries  *prometheus.CounterVec
}

func newPublishMetrics(reg prometheus.Registerer) *publishMetrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_feed_requests_total",
		Help: "Requests for feed documents by status: 200 served, 304 not modified, 404 unknown.",
	}, []string{"status"})
	m := &publishMetrics{
		renders: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_feed_renders_total",
			Help: "Feeds rendered (each in every format, with any new archive pages).",
		}),
		renderTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_feed_render_duration_seconds",
			Help:    "Time to render the dirty feeds after a change, store them and swap them in.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60},
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_websub_deliveries_total",
			Help: "WebSub content distributions by result: ok, retry, failed (given up), gone (410), refused (callback not allowed).",
		}, []string{"result"}),
	}
	if reg != nil {
		requests = metricsRegister(reg, requests)
		m.renders = metricsRegister(reg, m.renders)
		m.renderTime = metricsRegister(reg, m.renderTime)
		m.deliveries = metricsRegister(reg, m.deliveries)
	}
	m.requests200 = requests.WithLabelValues("200")
	m.requests304 = requests.WithLabelValues("304")
	m.requests404 = requests.WithLabelValues("404")
	// Every result shows from the start, so a rate alert sees a zero
	// rather than no series.
	for _, result := range []string{"ok", "retry", "failed", "gone", "refused"} {
		m.deliveries.WithLabelValues(result)
	}
	return m
}

// metricsRegister registers c, or returns the identical collector already
// registered, so two publishers on one registry share their
// counts. A clashing definition under the same name is a programming error
// and panics, as prometheus.MustRegister does.
func metricsRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

func (m *publishMetrics) rendered(feeds int, d time.Duration) {
	m.renders.Add(float64(feeds))
	m.renderTime.Observe(d.Seconds())
}

func (m *publishMetrics) delivered(result string) {
	m.deliveries.WithLabelValues(result).Inc()
}
