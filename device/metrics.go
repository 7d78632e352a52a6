package device

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the per-scanner counters every driver maintains. Labels are
// the configured scanner ids, a bounded set.
type Metrics struct {
	Connected  *prometheus.GaugeVec   // scangw_device_connected{scanner}
	Reads      *prometheus.CounterVec // scangw_device_reads_total{scanner}
	Errors     *prometheus.CounterVec // scangw_device_read_errors_total{scanner,reason}
	Reconnects *prometheus.CounterVec // scangw_device_reconnects_total{scanner}
}

// NewMetrics registers the device metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_device_connected",
			Help: "1 while the scanner's device is open.",
		}, []string{"scanner"}),
		Reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_device_reads_total",
			Help: "Complete frames read from the scanner.",
		}, []string{"scanner"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_device_read_errors_total",
			Help: "Frames discarded or reads failed, by reason.",
		}, []string{"scanner", "reason"}),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_device_reconnects_total",
			Help: "Times the scanner's device was opened again after it was lost.",
		}, []string{"scanner"}),
	}
	reg.MustRegister(m.Connected, m.Reads, m.Errors, m.Reconnects)
	return m
}

// ScannerMetrics are one scanner's series of Metrics, looked up once so that
// the read path does no label hashing. Every series is created up front: a
// scanner that never worked shows as 0 rather than missing from dashboards.
type ScannerMetrics struct {
	Connected  prometheus.Gauge
	Reads      prometheus.Counter
	Reconnects prometheus.Counter
	// Errors holds a counter per reason given to Scanner, plus "io".
	Errors map[string]prometheus.Counter
}

// Scanner returns the series of scanner id, with an error counter for each
// reason. On nil Metrics they are unregistered and count into the void.
func (m *Metrics) Scanner(id string, reasons ...string) *ScannerMetrics {
	reasons = append(reasons, "io")
	sm := &ScannerMetrics{Errors: make(map[string]prometheus.Counter, len(reasons))}
	if m == nil {
		sm.Connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unused"})
		sm.Reads = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
		sm.Reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
		for _, r := range reasons {
			sm.Errors[r] = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
		}
		return sm
	}
	sm.Connected = m.Connected.WithLabelValues(id)
	sm.Reads = m.Reads.WithLabelValues(id)
	sm.Reconnects = m.Reconnects.WithLabelValues(id)
	for _, r := range reasons {
		sm.Errors[r] = m.Errors.WithLabelValues(id, r)
	}
	sm.Connected.Set(0)
	return sm
}
