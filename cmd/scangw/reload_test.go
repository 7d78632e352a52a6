package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// reloadConfig is one state of the reload test's config: the main file
// stays, conf.d/ holds the stations and the log level.
type reloadConfig struct {
	mode   string // dock-1's mode
	withH3 bool   // station dock-2 with scanner h3
	level  string
	broken bool // a fragment with an unknown key
}

func (rc reloadConfig) write(t *testing.T, dir string, l1, l2, l3 *serialsim.Pty) {
	t.Helper()
	scanner := func(id string, l *serialsim.Pty) string {
		return fmt.Sprintf("\n      - {id: %s, port: %q, terminator: \"\\r\\n\", feedback: {good: \"\\x06\", bad: \"\\x15\"}}", id, l.Path())
	}
	st := fmt.Sprintf("stations:\n  - id: dock-1\n    mode: %s\n    scanners:%s%s\n", rc.mode, scanner("h1", l1), scanner("h2", l2))
	if rc.withH3 {
		st += fmt.Sprintf("  - id: dock-2\n    mode: ship\n    scanners:%s\n", scanner("h3", l3))
	}
	files := map[string]string{
		"20-stations.yaml": st,
		"30-log.yaml":      "log: {level: " + rc.level + "}\n",
	}
	if rc.broken {
		files["40-broken.yaml"] = "stations:\n  - id: dock-1\n    scanners: [{id: h1, port: /dev/null, baud: fast}]\n"
	} else {
		os.Remove(filepath.Join(dir, "conf.d", "40-broken.yaml"))
	}
	for name, text := range files {
		// As a fleet tool does: a reload never sees half a file.
		p := filepath.Join(dir, "conf.d", name)
		if err := os.WriteFile(p+".tmp", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReloadDuringStream sends SIGHUP ten times while two ptys stream
// 5,000 scans: one station's mode changes, a station with a scanner is
// added and removed again, one config is broken (refused whole). Every
// scan the scanners got an ACK for reaches the broker exactly once, seq is
// gap-free across scans and mode events, the MQTT session is never
// re-made, and the status and heartbeat carry the new config's hash.
func TestReloadDuringStream(t *testing.T) {
	bin := buildScangw(t)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, broker, "central-reload", "scangw/v1/#")
	var lines []*serialsim.Pty
	for range 3 {
		l, err := serialsim.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		lines = append(lines, l)
	}
	l1, l2, l3 := lines[0], lines[1], lines[2]

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	cfgPath := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `
gateway: {id: gw-e2e, site: plant-t}
buffer:  {dir: %q}
mqtt:    {broker: %q, heartbeat: 1s, reconnect_min: 20ms, reconnect_max: 300ms}
http:    {listen: %q}
`, filepath.Join(dir, "buffer"), broker.URL(), httpAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := reloadConfig{mode: "receive", level: "info"}
	rc.write(t, dir, l1, l2, l3)

	d := crashNewDaemon(t, bin, cfgPath, filepath.Join(dir, "scangw.log"))
	d.start()
	waitFor(t, "the daemon ready", func() bool { return strings.HasPrefix(httpGetQuiet("http://"+httpAddr+"/readyz"), "ready") })

	var mu sync.Mutex
	acked := map[string]bool{}
	onAck := func(code string) {
		mu.Lock()
		acked[code] = true
		mu.Unlock()
	}
	ackCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	const perLine = 2500
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); typeScans(t, l1, "A", perLine, onAck) }()
	go func() { defer wg.Done(); typeScans(t, l2, "B", perLine, onAck) }()

	reloaded := func(result string) int {
		return metricValue(httpGetQuiet("http://"+httpAddr+"/metrics"), `scangw_config_reloads_total{result="`+result+`"}`)
	}
	steps := []struct {
		what   string
		change func(*reloadConfig)
	}{
		{"dock-1 to ship", func(c *reloadConfig) { c.mode = "ship" }},
		{"add dock-2 with h3", func(c *reloadConfig) { c.withH3 = true }},
		{"log level debug", func(c *reloadConfig) { c.level = "debug" }},
		{"a broken fragment", func(c *reloadConfig) { c.broken = true }},
		{"the fragment fixed", func(c *reloadConfig) { c.broken = false }},
		{"remove dock-2", func(c *reloadConfig) { c.withH3 = false }},
		{"dock-1 to receive", func(c *reloadConfig) { c.mode = "receive" }},
		{"log level info", func(c *reloadConfig) { c.level = "info" }},
		{"nothing changed", func(c *reloadConfig) {}},
		{"dock-1 to count", func(c *reloadConfig) { c.mode = "count" }},
	}
	var h3Codes int
	for i, step := range steps {
		for ackCount() < (i+1)*2*perLine/(len(steps)+2) {
			time.Sleep(2 * time.Millisecond) // polling the scanners' progress
		}
		step.change(&rc)
		rc.write(t, dir, l1, l2, l3)
		applied, refused := reloaded("applied"), reloaded("refused")
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "reload: "+step.what, func() bool {
			return reloaded("applied") > applied || reloaded("refused") > refused
		})
		if got := reloaded("refused") > refused; got != rc.broken {
			t.Fatalf("reload %q: refused %v\n%s", step.what, got, crashLogTail(d.logPath))
		}
		if step.what == "add dock-2 with h3" {
			// The added scanner works while the stream goes on.
			for j := range 50 {
				code := fmt.Sprintf("C-%05d", j)
				b, err := l3.Send(context.Background(), code, "\r\n", 20*time.Second)
				if err != nil || b != 0x06 {
					t.Fatalf("%s on the added scanner: %#x %v\n%s", code, b, err, crashLogTail(d.logPath))
				}
				onAck(code)
				h3Codes++
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("stream failed\n%s", crashLogTail(d.logPath))
	}
	want := 2*perLine + h3Codes
	if n := ackCount(); n != want {
		t.Fatalf("%d scans acknowledged, want %d", n, want)
	}

	// The config in force now, as check-config computes it.
	out, err := runBinary(bin, "check-config", cfgPath)
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	hash := regexp.MustCompile(`hash ([0-9a-f]{12})`).FindStringSubmatch(out)
	if hash == nil {
		t.Fatalf("check-config printed no hash: %s", out)
	}

	type event struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Seq        uint64 `json:"seq"`
			Raw        string `json:"raw"`
			Mode       string `json:"mode"`
			Station    string `json:"station"`
			ConfigHash string `json:"config_hash"`
			Instance   string `json:"instance"`
			State      string `json:"state"`
		} `json:"data"`
	}
	topics := wire.TopicsFor("scangw/v1", "plant-t", "gw-e2e")
	sub.WaitFor(60*time.Second, "every acknowledged scan and a heartbeat of the final config", func(ms []mosquittotest.Message) bool {
		got, beat := map[string]bool{}, false
		for _, m := range ms {
			var ev event
			if json.Unmarshal(m.Payload, &ev) != nil {
				continue
			}
			got[ev.Data.Raw] = got[ev.Data.Raw] || ev.Type == wire.ScanType
			beat = beat || (ev.Type == wire.HeartbeatType && ev.Data.ConfigHash == hash[1])
		}
		for c := range acked {
			if !got[c] {
				return false
			}
		}
		return beat
	})
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, crashLogTail(d.logPath))
	}

	seen := map[string]bool{}
	seqs := map[uint64]string{}
	var maxSeq uint64
	instances, modes := map[string]bool{}, map[string]int{}
	lastStatusHash := ""
	for _, m := range sub.Messages() {
		if err := schema.CheckMessage(topics, m.Topic, m.Payload); err != nil {
			t.Fatalf("%s: %v\n%s", m.Topic, err, m.Payload)
		}
		var ev event
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case wire.StatusType:
			instances[ev.Data.Instance] = true
			if ev.Data.State == wire.Online {
				lastStatusHash = ev.Data.ConfigHash
			}
			continue
		case wire.ScanType, wire.ContextType:
		default:
			continue
		}
		if seen[ev.ID] {
			t.Errorf("event %s (seq %d) delivered twice: the session was re-made", ev.ID, ev.Data.Seq)
		}
		seen[ev.ID] = true
		if prev, dup := seqs[ev.Data.Seq]; dup && prev != ev.ID {
			t.Fatalf("seq %d given to two events", ev.Data.Seq)
		}
		seqs[ev.Data.Seq] = ev.ID
		maxSeq = max(maxSeq, ev.Data.Seq)
		if ev.Type == wire.ScanType && ev.Data.Station == "dock-1" {
			modes[ev.Data.Mode]++
		}
	}
	for s := uint64(1); s <= maxSeq; s++ {
		if _, ok := seqs[s]; !ok {
			t.Fatalf("seq %d missing of 1..%d", s, maxSeq)
		}
	}
	if len(instances) != 1 {
		t.Errorf("%d gateway instances announced, want the one process", len(instances))
	}
	if lastStatusHash != hash[1] {
		t.Errorf("the last online status carries config hash %q, want the final config's %s", lastStatusHash, hash[1])
	}
	for _, m := range []string{"receive", "ship", "count"} {
		if modes[m] == 0 {
			t.Errorf("no dock-1 scan in mode %s (modes seen: %v)", m, modes)
		}
	}
	if n := strings.Count(broker.Log(), " as scangw-gw-e2e ("); n != 1 {
		t.Errorf("the broker saw the gateway connect %d times, want once\n%s", n, broker.Log())
	}
	logs, _ := os.ReadFile(d.logPath)
	for _, want := range []string{"reload refused; the running config stays", "stations[0].scanners[0].baud", "40-broken.yaml line 3", "config reloaded"} {
		if !strings.Contains(string(logs), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	t.Logf("%d scans (%d on the added scanner), %d events, modes %v", want, h3Codes, maxSeq, modes)
}

// TestReloadRefusesRestartOnlyChanges: a reload that moves buffer.dir or
// changes the broker is refused whole, naming the keys.
func TestReloadRefusesRestartOnlyChanges(t *testing.T) {
	base := `
gateway: {id: gw1, site: s1}
buffer: {dir: /var/lib/scangw}
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`
	old := mustParse(t, base)
	next := mustParse(t, strings.Replace(base, "/var/lib/scangw", "/srv/scangw", 1)+"mqtt: {broker: \"tcp://other:1883\"}\nlog: {level: debug}\n")
	got := strings.Join(restartOnly(old, next), " ")
	if got != "buffer.dir mqtt.broker" {
		t.Fatalf("restart-only changes: %q", got)
	}
	same := mustParse(t, base+"log: {level: debug}\nhttp: {listen: \"127.0.0.1:9999\"}\n")
	if got := restartOnly(old, same); len(got) != 0 {
		t.Fatalf("live changes reported as restart-only: %v", got)
	}
}

// metricValue is the value of the sample named exactly series in a scrape
// (0 when absent).
func metricValue(scrape, series string) int {
	for line := range strings.SplitSeq(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

func mustParse(t *testing.T, text string) *configs.Config {
	t.Helper()
	c, err := configs.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// httpGetQuiet is the body at url, or "" when it cannot be had (yet).
func httpGetQuiet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// runBinary runs the built daemon binary with args and returns its output.
func runBinary(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}
