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
