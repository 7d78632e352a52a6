package buffer

import (
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
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
		// Measured at scrape time, not taken from the limits' estimate: that
		// one is refreshed only while scans arrive, and a disk that fills
		// from elsewhere must show on an idle gateway too.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_filesystem_free_bytes",
			Help: "Space available to the daemon on the buffer directory's filesystem.",
		}, func() float64 { free, _ := b.statfs(); return free }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_filesystem_size_bytes",
			Help: "Size of the buffer directory's filesystem.",
		}, func() float64 { _, size := b.statfs(); return size }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "scangw_buffer_min_free_bytes",
			Help: "The free-space floor (buffer.min_free): below it the buffer refuses scans.",
		}, func() float64 { return float64(b.opts.Limits.MinFreeBytes) }),
	}
	for _, c := range m.cs {
		reg.MustRegister(c)
	}
	return m
}

// statfs is the free and total space of the buffer's filesystem, NaN when
// it cannot be measured (an alert must not read that as a full disk).
func (b *Buffer) statfs() (free, size float64) {
	var st unix.Statfs_t
	if err := unix.Statfs(b.opts.Dir, &st); err != nil {
		return math.NaN(), math.NaN()
	}
	return float64(st.Bavail) * float64(st.Bsize), float64(st.Blocks) * float64(st.Bsize)
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
