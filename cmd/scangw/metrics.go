package main

import (
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
)

// daemonMetrics are the gateway's own series: what it runs, which config,
// which scanners belong to which station, whether its clock can be
// trusted. The info series carry the names (site, gateway, station) that
// the other parts' series lack, so alert rules join them on to say which
// gateway is in trouble, and count them across the fleet to find two boxes
// sharing one gateway id.
type daemonMetrics struct {
	gateway  *infoCollector // scangw_gateway_info{site,gateway}
	config   *infoCollector // scangw_config_info{hash}
	scanners *infoCollector // scangw_scanner_info{station,scanner,type}
}

// newDaemonMetrics registers the daemon's series with reg, describing cfg.
func newDaemonMetrics(reg prometheus.Registerer, cfg *configs.Config) *daemonMetrics {
	build := newInfo("scangw_build_info", "The running binary: 1, labelled with its version and Go version.", "version", "goversion")
	build.set([]string{version(), runtime.Version()})
	m := &daemonMetrics{
		gateway:  newInfo("scangw_gateway_info", "The gateway's identity (gateway.site, gateway.id): 1. More than one per site and gateway across a fleet means two boxes share an id.", "site", "gateway"),
		config:   newInfo("scangw_config_info", "The config in force: 1, labelled with its hash (as in the birth message and check-config --print).", "hash"),
		scanners: newInfo("scangw_scanner_info", "The configured scanners: 1, labelled with the station each belongs to and its type.", "station", "scanner", "type"),
	}
	// Read at scrape time: a Pi without RTC syncs minutes after boot, or
	// never when NTP is blocked, and scans made meanwhile carry a guessed
	// time.
	clock := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "scangw_clock_synced",
		Help: "1 while the kernel reports its clock synchronised (NTP), 0 while scans carry clock_synced false.",
	}, func() float64 {
		if station.KernelClockSynced() {
			return 1
		}
		return 0
	})
	reg.MustRegister(build, m.gateway, m.config, m.scanners, clock)
	m.SetConfig(cfg)
	return m
}

// SetConfig makes the series describe cfg, the config in force: at start
// and after each live reload. A scanner or station gone from it is gone
// from the series, so an alert stops naming it.
func (m *daemonMetrics) SetConfig(cfg *configs.Config) {
	m.gateway.set([]string{cfg.Gateway.Site, cfg.Gateway.ID})
	var scanners [][]string
	for _, st := range cfg.Stations {
		for _, sc := range st.Scanners {
			scanners = append(scanners, []string{st.ID, sc.ID, sc.Type})
		}
	}
	m.scanners.set(scanners...)
	m.SetConfigHash(cfg.Hash())
}

// SetConfigHash labels scangw_config_info with h, dropping the hash before.
func (m *daemonMetrics) SetConfigHash(h string) { m.config.set([]string{h}) }

// infoCollector is an info metric: series of value 1 whose labels are the
// information. A set replaces all series at once, so that no scrape sees
// the old and the new labels together (an alert joining the series would
// fail on the duplicate) or neither.
type infoCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	sets [][]string
}

func newInfo(name, help string, labels ...string) *infoCollector {
	return &infoCollector{desc: prometheus.NewDesc(name, help, labels, nil)}
}

// set replaces the series by one per label set. A repeated set is dropped:
// the registry refuses a scrape that holds one series twice.
func (c *infoCollector) set(sets ...[]string) {
	var uniq [][]string
	for _, s := range sets {
		if !slices.ContainsFunc(uniq, func(u []string) bool { return slices.Equal(u, s) }) {
			uniq = append(uniq, s)
		}
	}
	c.mu.Lock()
	c.sets = uniq
	c.mu.Unlock()
}

func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sets {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, s...)
	}
}
