package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.yaml.in/yaml/v3"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// The alert rules and dashboard shipped beside the unit.
const (
	monitoringAlerts    = "../../systemd/monitoring/alerts.yml"
	monitoringDashboard = "../../systemd/monitoring/dashboard.json"
)

// TestMonitoringMetricsExported runs the daemon as a site does (the built
// binary, a pty scanner, Mosquitto, a signed rules.file) and scrapes
// /metrics: every series an alert rule or a dashboard panel queries must
// be in it, or the alert can never fire and the panel stays empty. The
// daemon's own series must say what it runs.
func TestMonitoringMetricsExported(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	env, err := rules.Sign(ruleSet(4, "plant-m"), priv)
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rulesPath, env, 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "scangw.yaml")
	yml := fmt.Sprintf(`
gateway: {id: gw-mon, site: plant-m}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms}
http:    {listen: %q}
log:     {level: warn}
rules:   {keys: [%q], file: %q}
stations:
  - id: dock-1
    scanners: [{id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}]
`, filepath.Join(dir, "buffer"), broker.URL(), httpAddr, base64.StdEncoding.EncodeToString(pub), rulesPath, line.Path())
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := crashNewDaemon(t, buildScangw(t), cfgPath, filepath.Join(dir, "scangw.log"))
	d.start()

	scrape := func() monitoringScrape {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return nil // not listening yet
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s %v", resp.Status, err)
		}
		return parseMonitoringScrape(string(b))
	}
	// One scan all the way to the broker, so that the latency histogram
	// and the counters the panels rate() have moved.
	var s monitoringScrape
	waitFor := func(what string, ok func(monitoringScrape) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if s = scrape(); s != nil && ok(s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never seen on /metrics\n%s", what, crashLogTail(d.logPath))
			}
			time.Sleep(20 * time.Millisecond) // polling the metrics endpoint
		}
	}
	waitFor("mqtt connected", func(s monitoringScrape) bool { return s[`scangw_mqtt_connected`] == 1 })
	if b, err := line.Send(context.Background(), "MON-0001", "\r\n", 20*time.Second); err != nil || b != 0x06 {
		t.Fatalf("scan: feedback %#x, %v", b, err)
	}
	waitFor("the scan acknowledged", func(s monitoringScrape) bool {
		return s[`scangw_mqtt_publish_latency_seconds_count`] >= 1 && s[`scangw_buffer_depth_scans`] == 0
	})

	names := s.names()
	used := monitoringUsedMetrics(t)
	for _, m := range used {
		if m == "up" { // Prometheus's own, per target
			continue
		}
		if !names[m] {
			t.Errorf("%s is queried by an alert or a panel but the daemon does not export it", m)
		}
	}
	t.Logf("%d metric names queried by alerts and panels, all in a scrape of %d names", len(used), len(names))

	synced := 0.0
	if station.KernelClockSynced() {
		synced = 1
	}
	for series, want := range map[string]float64{
		`scangw_gateway_info{gateway="gw-mon",site="plant-m"}`:                                 1,
		`scangw_config_info{hash="` + cfg.Hash() + `"}`:                                        1,
		`scangw_scanner_info{scanner="h1",station="dock-1",type="serial"}`:                     1,
		`scangw_build_info{goversion="` + runtime.Version() + `",version="` + version() + `"}`: 1,
		`scangw_clock_synced`:                                             synced,
		`scangw_rules_loaded{scope="site"}`:                               1,
		`scangw_rules_version{scope="site"}`:                              4,
		`scangw_rules_loaded{scope="gateway"}`:                            0,
		`scangw_station_scans_total{station="dock-1",verdict="accepted"}`: 1,
		`scangw_station_scans_total{station="dock-1",verdict="rejected"}`: 0,
		`scangw_station_scans_total{station="dock-1",verdict="warning"}`:  0,
		`scangw_station_scans_refused_total{station="dock-1"}`:            0,
		`scangw_device_connected{scanner="h1"}`:                           1,
		`scangw_buffer_min_free_bytes`:                                    float64(cfg.Buffer.MinFree),
	} {
		if got, ok := s[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if free, size := s[`scangw_buffer_filesystem_free_bytes`], s[`scangw_buffer_filesystem_size_bytes`]; !(free > 0 && free <= size) {
		t.Errorf("buffer filesystem: %v free of %v", free, size)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, crashLogTail(d.logPath))
	}
}

// monitoringScrape maps each series of an exposition, as written
// (name{labels} without spaces), to its value.
type monitoringScrape map[string]float64

func parseMonitoringScrape(text string) monitoringScrape {
	s := monitoringScrape{}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			continue
		}
		s[l[:i]] = v
	}
	return s
}

// names are the metric names of the samples, histograms' _bucket, _sum
// and _count included: that is what PromQL selects.
func (s monitoringScrape) names() map[string]bool {
	out := map[string]bool{}
	for series := range s {
		name, _, _ := strings.Cut(series, "{")
		out[name] = true
	}
	return out
}

var (
	// A PromQL string: label values and label_replace arguments, which
	// may look like metric names but are not.
	promqlString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	// The metric names the daemon could export: its own, the process and
	// Go collectors'. Functions, keywords and label names have none of
	// these prefixes; up is listed to be told apart.
	promqlMetric = regexp.MustCompile(`\b(?:(?:scangw|process|go)_[A-Za-z0-9_]+|up)\b`)
)

// monitoringUsedMetrics lists the metric names that the alert rules'
// and the dashboard's expressions select, sorted.
func monitoringUsedMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	b, err := os.ReadFile(monitoringAlerts)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", monitoringAlerts, err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	if b, err = os.ReadFile(monitoringDashboard); err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", monitoringDashboard, err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition) // label_values(scangw_gateway_info, ...)
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, m := range promqlMetric.FindAllString(promqlString.ReplaceAllString(e, ""), -1) {
			seen[m] = true
		}
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	slices.Sort(out)
	// A regexp that found nothing would pass any scrape.
	for _, m := range []string{"up", "scangw_gateway_info", "scangw_mqtt_publish_latency_seconds_bucket", "process_resident_memory_bytes"} {
		if !seen[m] {
			t.Fatalf("found no %s in the alerts and the dashboard (found %v)", m, out)
		}
	}
	return out
}

// TestMonitoringMetricNames checks the name extraction on expressions
// that hold names in strings and label lists.
func TestMonitoringMetricNames(t *testing.T) {
	e := `label_replace(sum by (le, go_x) (rate(scangw_a_bucket{instance=~"scangw_not_a_metric"}[5m])), "cause", "go_nope", "", "") / up * on (instance) group_left (site) scangw_b_info or process_c_bytes`
	got := promqlMetric.FindAllString(promqlString.ReplaceAllString(e, ""), -1)
	// go_x in a by () list is a label: a false positive that would fail
	// the export check loudly, never hide a missing metric.
	want := []string{"go_x", "scangw_a_bucket", "up", "scangw_b_info", "process_c_bytes"}
	if !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
}

// TestDaemonMetricsFollowConfig: the info series describe the config in
// force, and a reload's config replaces the old labels instead of adding
// to them (an alert joining scangw_gateway_info or scangw_scanner_info
// would break on two series per instance).
func TestDaemonMetricsFollowConfig(t *testing.T) {
	parse := func(text string) *configs.Config {
		t.Helper()
		cfg, err := configs.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := `
gateway: {id: gw-1, site: plant-1}
buffer:  {dir: /var/lib/scangw}
mqtt:    {broker: "tcp://127.0.0.1:1883"}
stations:
  - id: dock-1
    scanners: [{id: h1, port: /dev/ttyACM0}%s]
`
	cfg1 := parse(fmt.Sprintf(base, `, {id: t1, type: tcp, connect: "10.0.0.9:51236"}`))
	cfg2 := parse(fmt.Sprintf(base, ""))
	reg := prometheus.NewRegistry()
	m := newDaemonMetrics(reg, cfg1)
	check := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
			"scangw_gateway_info", "scangw_config_info", "scangw_scanner_info"); err != nil {
			t.Fatal(err)
		}
	}
	const help = `
# HELP scangw_config_info The config in force: 1, labelled with its hash (as in the birth message and check-config --print).
# TYPE scangw_config_info gauge
scangw_config_info{hash="%s"} 1
# HELP scangw_gateway_info The gateway's identity (gateway.site, gateway.id): 1. More than one per site and gateway across a fleet means two boxes share an id.
# TYPE scangw_gateway_info gauge
scangw_gateway_info{gateway="gw-1",site="plant-1"} 1
# HELP scangw_scanner_info The configured scanners: 1, labelled with the station each belongs to and its type.
# TYPE scangw_scanner_info gauge
scangw_scanner_info{scanner="h1",station="dock-1",type="serial"} 1
`
	check(fmt.Sprintf(help, cfg1.Hash()) + `scangw_scanner_info{scanner="t1",station="dock-1",type="tcp"} 1` + "\n")
	m.SetConfigHash("0123456789ab")
	check(fmt.Sprintf(help, "0123456789ab") + `scangw_scanner_info{scanner="t1",station="dock-1",type="tcp"} 1` + "\n")
	m.SetConfig(cfg2)
	if cfg1.Hash() == cfg2.Hash() {
		t.Fatal("two configs, one hash")
	}
	check(fmt.Sprintf(help, cfg2.Hash()))

	build := fmt.Sprintf(`
# HELP scangw_build_info The running binary: 1, labelled with its version and Go version.
# TYPE scangw_build_info gauge
scangw_build_info{goversion=%q,version=%q} 1
`, runtime.Version(), version())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(build), "scangw_build_info"); err != nil {
		t.Fatal(err)
	}
}
