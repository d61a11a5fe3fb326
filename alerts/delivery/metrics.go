package delivery

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the delivery side's Prometheus metrics.
type metrics struct {
	results  *prometheus.CounterVec
	duration prometheus.Histogram
}

// newMetrics creates the metrics and registers them with reg, if
// any. The gauges query the store when scraped, through indexes that cover
// only unsettled messages, so a scrape stays cheap.
func newMetrics(reg prometheus.Registerer, d *Deliverer) (*metrics, error) {
	m := &metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_messages_sent_total",
			Help: "Delivery attempts by result: sent, retry (temporary failure), failed (permanent), suppressed (address suppressed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_smtp_send_duration_seconds",
			Help:    "Time to hand one message to the transport, connecting included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{"sent", "retry", "failed", "suppressed"} {
		m.results.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_outbox_depth",
		Help: "Messages waiting to be sent or being sent.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := d.store.OutboxDepth(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_outbox_oldest_due_seconds",
		Help: "How long the longest-waiting due message has been due; 0 when nothing is overdue.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t, err := d.store.OldestDue(ctx)
		if err != nil {
			return math.NaN()
		}
		if t.IsZero() {
			return 0
		}
		return max(0, d.cfg.Now().Sub(t).Seconds())
	})
	for _, c := range []prometheus.Collector{m.results, m.duration, depth, oldest} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("delivery: metrics are already registered (one Deliverer per registry)")
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) result(result string, n int) {
	if n > 0 {
		m.results.WithLabelValues(result).Add(float64(n))
	}
}

func (m *metrics) sendDuration(d time.Duration) { m.duration.Observe(d.Seconds()) }
