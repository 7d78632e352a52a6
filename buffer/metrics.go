package buffer

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg           prometheus.Registerer
	commitSeconds prometheus.Histogram
	refusedVec    *prometheus.CounterVec
	high          prometheus.Gauge
	healed        prometheus.Counter
	salvaged      prometheus.Counter
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
		refusedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_buffer_refused_total",
			Help: "Appends refused, by reason: full (a limit), error (the commit failed).",
		}, []string{"reason"}),
		high: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_buffer_high_water",
			Help: "1 while the buffer is above its high-water mark (it will refuse scans when full).",
		}),
		healed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_buffer_corruption_recoveries_total",
			Help: "Times a corrupt buffer was moved aside and a fresh one (new epoch) started.",
		}),
		salvaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_buffer_salvaged_total",
			Help: "Messages recovered from a moved-aside buffer into the live one.",
		}),
	}
	m.cs = []prometheus.Collector{
		m.commitSeconds, m.refusedVec, m.high, m.healed, m.salvaged,
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
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_disk_bytes",
			Help: "Space the buffer directory takes on disk (last measurement).",
		}, func() float64 { return float64(b.diskUsed()) }),
	}
	for _, c := range m.cs {
		reg.MustRegister(c)
	}
	return m
}

func (m *metrics) refused(err error) {
	reason := "error"
	if errors.Is(err, ErrFull) {
		reason = "full"
	}
	m.refusedVec.WithLabelValues(reason).Inc()
}

func (m *metrics) setHighWater(h bool) {
	if h {
		m.high.Set(1)
	} else {
		m.high.Set(0)
	}
}

func (m *metrics) unregister() {
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
