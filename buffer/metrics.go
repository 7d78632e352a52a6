package buffer

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg           prometheus.Registerer
	commitSeconds prometheus.Histogram
	cs            []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, b *Buffer) *metrics {
	m := &metrics{
		reg: reg,
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scangw_buffer_commit_duration_seconds",
			Help:    "Time of one durable commit (one sync, many scans).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}),
	}
	m.cs = []prometheus.Collector{
		m.commitSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_depth_scans",
			Help: "Messages stored and not yet acknowledged by the broker.",
		}, func() float64 { return float64(b.Depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_oldest_unsent_age_seconds",
			Help: "Age of the oldest message not yet acknowledged by the broker; 0 when empty.",
		}, func() float64 {
			t, ok := b.Oldest()
			if !ok {
				return 0
			}
			return time.Since(t).Seconds()
		}),
	}
	for _, c := range m.cs {
		reg.MustRegister(c)
	}
	return m
}

func (m *metrics) unregister() {
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
