package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

var (
	fleetN      = flag.Int("fleet.n", 200, "BenchmarkFleetStorm: gateway processes in the fleet")
	fleetOutage = flag.Duration("fleet.outage", 10*time.Second, "BenchmarkFleetStorm: how long the broker stays down")
	fleetJSON   = flag.String("fleet.json", "", "BenchmarkFleetStorm: also write the figures to this file as JSON")
	fleetSettle = flag.Duration("fleet.settle", 15*time.Second, "BenchmarkFleetStorm: how long the started fleet idles before the outage")
)

const (
	fleetSite   = "plant-f"
	fleetPrefix = "scangw/v1"
	// fleetBackTimeout bounds the wait for every gateway after the
	// restart. backoff brings all back within 24 s of a 10 s outage and
	// within reconnect_max of a long one; the rest is room for a loaded
	// machine.
	fleetBackTimeout = 5 * time.Minute
)

// BenchmarkFleetStorm measures the reconnect storm a broker restart sets
// off: -fleet.n real gateway processes (each with its own config, buffer
// and a pty scanner, default settings otherwise) on one Mosquitto, which is
// stopped for -fleet.outage and restarted on the same port. It prints how
// many gateways came back in each second after the restart (by the time
// stamped in each gateway's new birth, which the broker relays), the time
// until all were back, the fleet's RSS before and after, and the same
// distribution scaled to 1,000 gateways. Timing is reported, not asserted:
// the machine is shared.
//
//	go test -run '^$' -bench FleetStorm -benchtime 1x -timeout 30m ./cmd/scangw/ -args -fleet.n 200 -fleet.outage 10s
func BenchmarkFleetStorm(b *testing.B) {
	for range b.N {
		r := runFleetStorm(b, *fleetN, *fleetOutage, *fleetSettle)
		// b.Log would trim a benchmark's output to ten lines.
		fmt.Println(r.String())
		if js, err := json.Marshal(r); err == nil {
			fmt.Printf("json %s\n", js)
			if *fleetJSON != "" {
				if err := os.WriteFile(*fleetJSON, append(js, '\n'), 0o644); err != nil {
					b.Error(err)
				}
			}
		}
		b.ReportMetric(100*float64(slices.Max(r.Histogram))/float64(r.Gateways), "busiest-second-%")
		b.ReportMetric(r.AllBackS, "all-back-s")
		b.ReportMetric(r.MedianS, "median-back-s")
		b.ReportMetric(r.RSSIdleMiB, "fleet-rss-idle-MiB")
		b.ReportMetric(r.RSSAfterMiB, "fleet-rss-after-MiB")
	}
}

// TestFleetReconnects is BenchmarkFleetStorm in small, as a functional
// test: a few gateway processes, a short outage, and every one must come
// back, and once. It asserts nothing about timing.
func TestFleetReconnects(t *testing.T) {
	t.Parallel()
	r := runFleetStorm(t, 3, time.Second, 0)
	t.Log("\n" + r.String())
	if r.Repeats != 0 {
		t.Errorf("%d births after the first one after the restart: a gateway reconnected again", r.Repeats)
	}
}

// runFleetStorm starts n gateways on one broker, has each store a scan,
// lets the fleet idle for settle, stops the broker for outage, and waits
// until all are back. It fails b if a gateway exits, a scan is not
// acknowledged, or some gateway is not back within fleetBackTimeout.
func runFleetStorm(b testing.TB, n int, outage, settle time.Duration) fleetResult {
	bin := buildScangw(b)
	broker := mosquittotest.Start(b, mosquittotest.Options{})
	births := newBirthLog(b, broker.URL())
	dir := b.TempDir()

	loadStart := loadAvg()
	started := time.Now()
	fleet := make([]*fleetGateway, n)
	for i := range fleet {
		fleet[i] = startFleetGateway(b, bin, dir, broker.URL(), i)
	}
	births.waitAll(b, n, started, 2*time.Minute+time.Duration(n)*time.Second, fleet)
	startup := time.Since(started)
	// One scan each: the pipeline is live (scanner → buffer → broker), and
	// the RSS is that of a gateway that has done work.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, g := range fleet {
		wg.Go(func() {
			fb, err := g.line.Send(context.Background(), "FLEET-"+g.id, "\r\n", time.Minute)
			if err == nil && fb != 0x06 {
				err = fmt.Errorf("feedback %#x, want ACK", fb)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: scan: %w\n%s", g.id, err, g.logTail())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// The idle fleet, off the CPU its startup took: part of the scenario,
	// not a wait for a condition.
	cpuIdle := fleetCPU(b, fleet)
	time.Sleep(settle)
	idleCPU := fleetCPU(b, fleet) - cpuIdle
	rssIdle := fleetRSS(b, fleet)

	loadBefore := loadAvg()
	cpuBefore := fleetCPU(b, fleet)
	broker.Stop()
	stopped := time.Now()
	time.Sleep(outage) // the outage under test, not a wait for a condition
	restartCalled := time.Now()
	broker.Restart()
	restarted := time.Now()
	births.waitAll(b, n, stopped, fleetBackTimeout, fleet)
	loadAfter := loadAvg()
	rssAfter := fleetRSS(b, fleet)
	stormCPU := fleetCPU(b, fleet) - cpuBefore
	stormFor := time.Since(stopped)

	back, repeats := births.firstAfter(stopped)
	delays := make([]time.Duration, 0, len(back))
	for _, at := range back {
		delays = append(delays, at.Sub(restarted))
	}
	slices.Sort(delays)
	res := fleetResult{
		Gateways: n, OutageS: restarted.Sub(stopped).Seconds(), RestartS: restarted.Sub(restartCalled).Seconds(),
		StartupS:  startup.Seconds(),
		Histogram: perSecond(delays), AllBackS: delays[len(delays)-1].Seconds(),
		MedianS: delays[len(delays)/2].Seconds(), P90S: delays[len(delays)*9/10].Seconds(),
		Repeats: repeats, RSSIdleMiB: rssIdle, RSSAfterMiB: rssAfter,
		LoadStart: loadStart, LoadBefore: loadBefore, LoadAfter: loadAfter,
		StormCPUPct: 100 * stormCPU.Seconds() / stormFor.Seconds(),
	}
	if settle > 0 {
		res.IdleCPUPct = 100 * idleCPU.Seconds() / settle.Seconds()
	}
	for _, g := range fleet {
		g.stop(b)
	}
	return res
}

// fleetResult is one storm's figures.
type fleetResult struct {
	Gateways    int     `json:"gateways"`
	OutageS     float64 `json:"outage_s"`  // the broker's stop to its restart
	RestartS    float64 `json:"restart_s"` // how long Restart took (the broker is up somewhere in it)
	StartupS    float64 `json:"startup_s"` // fleet start until every first birth
	Histogram   []int   `json:"per_second"`
	AllBackS    float64 `json:"all_back_s"`
	MedianS     float64 `json:"median_s"`
	P90S        float64 `json:"p90_s"`
	Repeats     int     `json:"repeats"` // births after the first one after the restart: a gateway that reconnected twice
	RSSIdleMiB  float64 `json:"rss_idle_mib"`
	RSSAfterMiB float64 `json:"rss_after_mib"`
	LoadStart   string  `json:"loadavg_start"`
	LoadBefore  string  `json:"loadavg_before_stop"`
	LoadAfter   string  `json:"loadavg_after"`
	// The fleet's CPU (all processes, % of one core) idle, and from the
	// stop until all were back.
	IdleCPUPct  float64 `json:"idle_cpu_pct"`
	StormCPUPct float64 `json:"storm_cpu_pct"`
}

// String is the figures as aligned lines, the histogram also scaled to
// 1,000 gateways.
func (r fleetResult) String() string {
	top, peak := 0, 0
	for s, c := range r.Histogram {
		if c > peak {
			top, peak = s, c
		}
	}
	pct := func(c int) float64 { return 100 * float64(c) / float64(r.Gateways) }
	var h strings.Builder
	fmt.Fprintf(&h, "fleet of %d, broker down %.1f s (restart took %.2f s), fleet startup %.1f s\n", r.Gateways, r.OutageS, r.RestartS, r.StartupS)
	fmt.Fprintf(&h, "second after restart  reconnects  %%fleet  cumulative%%  x1000 gateways\n")
	cum := 0
	for s, c := range r.Histogram {
		cum += c
		fmt.Fprintf(&h, "%20d  %10d  %6.1f  %11.1f  %14.0f\n", s, c, pct(c), pct(cum), pct(c)*10)
	}
	fmt.Fprintf(&h, "busiest second %d: %d (%.1f %%); median %.1f s, 90 %% %.1f s, all back %.1f s; %d repeat births\n",
		top, peak, pct(peak), r.MedianS, r.P90S, r.AllBackS, r.Repeats)
	fmt.Fprintf(&h, "fleet RSS idle %.0f MiB (%.1f each), after %.0f MiB (%.1f each); x1000: %.1f GiB idle\n",
		r.RSSIdleMiB, r.RSSIdleMiB/float64(r.Gateways), r.RSSAfterMiB, r.RSSAfterMiB/float64(r.Gateways), r.RSSIdleMiB/float64(r.Gateways)*1000/1024)
	fmt.Fprintf(&h, "fleet CPU idle %.1f %% of a core, stop to all back %.1f %%\n", r.IdleCPUPct, r.StormCPUPct)
	fmt.Fprintf(&h, "loadavg start %s, before stop %s, after %s", r.LoadStart, r.LoadBefore, r.LoadAfter)
	return h.String()
}

// perSecond counts delays by whole second; a gateway the broker took in
// while Restart was still waiting for its log line counts in second 0.
func perSecond(delays []time.Duration) []int {
	var h []int
	for _, d := range delays {
		s := max(int(d/time.Second), 0)
		for len(h) <= s {
			h = append(h, 0)
		}
		h[s]++
	}
	return h
}

// fleetGateway is one scangw process of the fleet.
type fleetGateway struct {
	id      string
	line    *serialsim.Pty
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startFleetGateway(b testing.TB, bin, root, brokerURL string, i int) *fleetGateway {
	b.Helper()
	id := fmt.Sprintf("gw-%04d", i)
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	line, err := serialsim.Open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { line.Close() })
	// Default mqtt settings but the broker: the backoff under test is the
	// one a site gets.
	yaml := fmt.Sprintf(`gateway: {id: %s, site: %s}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: %s}
http:    {listen: ""}
log:     {level: warn}
stations:
  - id: dock-1
    mode: receive
    scanners:
      - {id: s1, type: serial, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}
`, id, fleetSite, filepath.Join(dir, "buffer"), brokerURL, fleetPrefix, line.Path())
	config := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	if i == 0 {
		if _, err := configs.Load(config); err != nil {
			b.Fatalf("%v\n%s", err, yaml)
		}
	}
	g := &fleetGateway{id: id, line: line, logPath: filepath.Join(dir, "scangw.log"), done: make(chan struct{})}
	f, err := os.Create(g.logPath)
	if err != nil {
		b.Fatal(err)
	}
	g.cmd = exec.Command(bin, "run", "--config", config)
	g.cmd.Stdout, g.cmd.Stderr = f, f
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = g.cmd.Start()
	f.Close()
	if err != nil {
		b.Fatalf("start %s: %v", id, err)
	}
	go func() {
		g.cmd.Wait()
		close(g.done)
	}()
	b.Cleanup(func() {
		g.cmd.Process.Kill()
		<-g.done
	})
	return g
}

func (g *fleetGateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// stop ends the gateway with SIGTERM, as systemd does, and fails the
// benchmark if it does not go.
func (g *fleetGateway) stop(b testing.TB) {
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		b.Errorf("%s: still running 30 s after SIGTERM", g.id)
	}
}

func (g *fleetGateway) logTail() string {
	out, _ := os.ReadFile(g.logPath)
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return string(out)
}

// fleetRSS sums VmRSS over the fleet's processes, in MiB.
func fleetRSS(b testing.TB, fleet []*fleetGateway) float64 {
	b.Helper()
	var kib int64
	for _, g := range fleet {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
		if err != nil {
			b.Fatalf("%s: %v", g.id, err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				k, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					b.Fatalf("%s: VmRSS %q: %v", g.id, v, err)
				}
				kib += k
			}
		}
		f.Close()
	}
	return float64(kib) / 1024
}

// fleetCPU sums user and system CPU time over the fleet's processes.
func fleetCPU(b testing.TB, fleet []*fleetGateway) time.Duration {
	b.Helper()
	var ticks int64
	for _, g := range fleet {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", g.cmd.Process.Pid))
		if err != nil {
			b.Fatalf("%s: %v", g.id, err)
		}
		// Fields after the command name, which may hold spaces: state is
		// the first, utime the 12th, stime the 13th.
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		for _, s := range f[11:13] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				b.Fatalf("%s: /proc stat %q: %v", g.id, stat, err)
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err.Error()
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// birthLog records every online birth on the fleet's status topics with
// the time the gateway stamped in it: that is when its session was set up
// (CONNACK, subscriptions), on this machine's clock, whenever our own
// subscriber gets it back after the restart.
type birthLog struct {
	mu      sync.Mutex
	births  map[string][]time.Time // gateway → event times, in arrival order
	changed chan struct{}
	bad     error
}

func newBirthLog(b testing.TB, brokerURL string) *birthLog {
	l := &birthLog{births: map[string][]time.Time{}, changed: make(chan struct{})}
	filter := fleetPrefix + "/" + fleetSite + "/+/status"
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("fleet-births").
		SetCleanSession(true).SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			// Retained births of gateways that were back before this
			// subscriber arrive now; their stamped times are still right.
			c.Subscribe(filter, 1, l.onMessage)
		})
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("birth subscriber: connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	return l
}

func (l *birthLog) onMessage(_ mqtt.Client, m mqtt.Message) {
	var ev struct {
		Time time.Time `json:"time"`
		Data struct {
			State string `json:"state"`
		} `json:"data"`
	}
	parts := strings.Split(m.Topic(), "/")
	err := json.Unmarshal(m.Payload(), &ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || len(parts) < 2 {
		l.bad = errors.Join(l.bad, fmt.Errorf("%s: %q: %v", m.Topic(), m.Payload(), err))
		return
	}
	if ev.Data.State != wire.Online {
		return
	}
	gw := parts[len(parts)-2]
	// A retained birth seen again after the subscriber's reconnect is the
	// same event: keep each stamped time once.
	if slices.Contains(l.births[gw], ev.Time) {
		return
	}
	l.births[gw] = append(l.births[gw], ev.Time)
	close(l.changed)
	l.changed = make(chan struct{})
}

// firstAfter returns each gateway's first birth stamped after t, and how
// many more births came after those.
func (l *birthLog) firstAfter(t time.Time) (first map[string]time.Time, repeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first = map[string]time.Time{}
	for gw, times := range l.births {
		for _, at := range times {
			if !at.After(t) {
				continue
			}
			if f, ok := first[gw]; !ok || at.Before(f) {
				if ok {
					repeats++
				}
				first[gw] = at
			} else {
				repeats++
			}
		}
	}
	return first, repeats
}

// waitAll waits until every one of n gateways announced itself after t;
// it fails the benchmark on timeout or when a gateway exits.
func (l *birthLog) waitAll(b testing.TB, n int, t time.Time, timeout time.Duration, fleet []*fleetGateway) {
	b.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(time.Second) // for exited processes, which send no message
	defer poll.Stop()
	for {
		first, _ := l.firstAfter(t)
		l.mu.Lock()
		changed, bad := l.changed, l.bad
		l.mu.Unlock()
		if bad != nil {
			b.Fatalf("births: %v", bad)
		}
		if len(first) >= n {
			return
		}
		for _, g := range fleet {
			if g.exited() {
				b.Fatalf("%s exited:\n%s", g.id, g.logTail())
			}
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-deadline.C:
			var missing []string
			for _, g := range fleet {
				if _, ok := first[g.id]; !ok {
					missing = append(missing, g.id)
				}
			}
			b.Fatalf("%d of %d gateways back after %v; missing %v; first one's log:\n%s", len(first), n, timeout,
				missing[:min(10, len(missing))], fleetLogOf(fleet, missing[0]))
		}
	}
}

func fleetLogOf(fleet []*fleetGateway, id string) string {
	for _, g := range fleet {
		if g.id == id {
			return g.logTail()
		}
	}
	return ""
}
