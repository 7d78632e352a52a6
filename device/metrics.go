package device

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the per-scanner counters every driver maintains. Labels are
// the configured scanner ids, a bounded set.
type Metrics struct {
	Connected *prometheus.GaugeVec // scangw_device_connected{scanner}
	// Reads counts the Reads delivered with a code: a frame split into
	// several codes counts each, no-reads and errors are not counted.
	Reads      *prometheus.CounterVec // scangw_device_reads_total{scanner}
	Errors     *prometheus.CounterVec // scangw_device_read_errors_total{scanner,reason}
	Reconnects *prometheus.CounterVec // scangw_device_reconnects_total{scanner}
	// NoReads counts the reader's no-reads (Read.NoRead): with Reads, the
	// read rate a conveyor's owner watches.
	NoReads *prometheus.CounterVec // scangw_device_noreads_total{scanner}
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
		NoReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_device_noreads_total",
			Help: "Results in which the reader reported that it read no code.",
		}, []string{"scanner"}),
	}
	reg.MustRegister(m.Connected, m.Reads, m.Errors, m.Reconnects, m.NoReads)
	return m
}

// ScannerMetrics are one scanner's series of Metrics, looked up once so that
// the read path does no label hashing. Every series is created up front: a
// scanner that never worked shows as 0 rather than missing from dashboards.
type ScannerMetrics struct {
	Connected  prometheus.Gauge
	Reads      prometheus.Counter
	Reconnects prometheus.Counter
	NoReads    prometheus.Counter
	// Errors holds a counter per reason given to Scanner, plus "io".
	Errors map[string]prometheus.Counter
}

// Scanner returns the series of scanner id, with an error counter for each
// reason. On nil Metrics they are unregistered and count into the void.
// NoReads counts into the void as well: a driver whose scanners cannot
// report no-reads (HID) has no such series.
func (m *Metrics) Scanner(id string, reasons ...string) *ScannerMetrics {
	return m.scanner(id, false, reasons)
}

// ScannerWithNoReads is Scanner for drivers that turn frames into reads
// through Codes (serial, TCP): it adds the scanner's no-read series, at 0
// from the start like the others.
func (m *Metrics) ScannerWithNoReads(id string, reasons ...string) *ScannerMetrics {
	return m.scanner(id, true, reasons)
}

func (m *Metrics) scanner(id string, noReads bool, reasons []string) *ScannerMetrics {
	reasons = append(reasons, "io")
	sm := &ScannerMetrics{Errors: make(map[string]prometheus.Counter, len(reasons))}
	void := func() prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"}) }
	sm.NoReads = void()
	if m == nil {
		sm.Connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unused"})
		sm.Reads = void()
		sm.Reconnects = void()
		for _, r := range reasons {
			sm.Errors[r] = void()
		}
		return sm
	}
	sm.Connected = m.Connected.WithLabelValues(id)
	sm.Reads = m.Reads.WithLabelValues(id)
	sm.Reconnects = m.Reconnects.WithLabelValues(id)
	if noReads {
		sm.NoReads = m.NoReads.WithLabelValues(id)
	}
	for _, r := range reasons {
		sm.Errors[r] = m.Errors.WithLabelValues(id, r)
	}
	sm.Connected.Set(0)
	return sm
}

// Count counts rd, one Read a driver delivers: a code, a no-read, or a
// frame discarded as ErrOversize, under reason "oversize" when the driver
// asked Scanner for it.
func (sm *ScannerMetrics) Count(rd Read) {
	switch {
	case rd.Err != nil:
		if c := sm.Errors["oversize"]; c != nil && errors.Is(rd.Err, ErrOversize) {
			c.Inc()
		}
	case rd.NoRead:
		sm.NoReads.Inc()
	default:
		sm.Reads.Inc()
	}
}
