package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// e2eScan is the part of a scan event the end-to-end tests look at.
type e2eScan struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Seq     uint64 `json:"seq"`
		Epoch   string `json:"epoch"`
		Raw     string `json:"raw"`
		Verdict string `json:"verdict"`
		Scanner string `json:"scanner"`
	} `json:"data"`
}

// e2eConfig writes a config for one station fed by the given ptys.
func e2eConfig(t *testing.T, brokerURL, httpAddr string, lines ...*serialsim.Pty) *configs.Config {
	t.Helper()
	var scanners string
	for i, l := range lines {
		scanners += fmt.Sprintf(`
      - {id: h%d, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, i+1, l.Path())
	}
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-e2e, site: plant-t}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms, keepalive: 5s}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: dock-1
    mode: receive
    scanners:%s
`, t.TempDir(), brokerURL, httpAddr, scanners)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs the daemon in-process until the test ends.
func startDaemon(t *testing.T, cfg *configs.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- run(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// typeScans types n codes, one at a time as an operator would, each waiting
// for its verdict byte; after each good byte it calls onAck.
func typeScans(t *testing.T, l *serialsim.Pty, prefix string, n int, onAck func(code string)) {
	for i := range n {
		code := fmt.Sprintf("%s-%05d", prefix, i)
		b, err := l.Send(context.Background(), code, "\r\n", 20*time.Second)
		if err != nil {
			t.Errorf("%s: %v", code, err)
			return
		}
		if b != 0x06 {
			t.Errorf("%s: feedback %#x, want ACK", code, b)
			return
		}
		onAck(code)
	}
}

// e2eTopics are the topics of the e2e tests' gateway.
var e2eTopics = wire.TopicsFor("scangw/v1", "plant-t", "gw-e2e")

// checkDelivery asserts that every code arrived, that seq is gap-free
// 1..N in one epoch, that first arrivals come in seq order, and that every
// message matches its JSON Schema.
func checkDelivery(t *testing.T, msgs []mosquittotest.Message, codes map[string]bool) {
	t.Helper()
	seen := map[string]uint64{} // id -> seq
	raws := map[string]bool{}
	var order []uint64
	epoch := ""
	for _, m := range msgs {
		if err := schema.CheckMessage(e2eTopics, m.Topic, m.Payload); err != nil {
			t.Fatalf("%s: %v\n%s", m.Topic, err, m.Payload)
		}
		if r, _, _ := e2eTopics.Route(m.Topic); !slices.Contains(r.Types, wire.ScanType) {
			continue
		}
		var ev e2eScan
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if epoch == "" {
			epoch = ev.Data.Epoch
		} else if ev.Data.Epoch != epoch {
			t.Fatalf("epoch changed: %s -> %s", epoch, ev.Data.Epoch)
		}
		if s, dup := seen[ev.ID]; dup {
			if s != ev.Data.Seq {
				t.Fatalf("event %s arrived with seq %d and %d", ev.ID, s, ev.Data.Seq)
			}
			continue
		}
		seen[ev.ID] = ev.Data.Seq
		raws[ev.Data.Raw] = true
		order = append(order, ev.Data.Seq)
	}
	for c := range codes {
		if !raws[c] {
			t.Errorf("acknowledged scan %s never reached the broker", c)
		}
	}
	for i, s := range order {
		if s != uint64(i+1) {
			t.Fatalf("event %d has seq %d: sequence not gap-free and in order (first arrivals %v...)", i, s, order[:min(len(order), i+5)])
		}
	}
	t.Logf("%d messages, %d distinct scans, %d duplicates", len(msgs), len(order), len(msgs)-len(order))
}

func TestEndToEndThousandScansWithBrokerOutage(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{Persistence: true})
	sub := mosquittotest.Subscribe(t, broker, "central-e2e", "scangw/v1/#")
	l1, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	httpAddr := freeAddr(t)
	startDaemon(t, e2eConfig(t, broker.URL(), httpAddr, l1, l2))

	var mu sync.Mutex
	acked := map[string]bool{}
	outage := make(chan struct{})
	var once sync.Once
	onAck := func(code string) {
		mu.Lock()
		acked[code] = true
		n := len(acked)
		mu.Unlock()
		if n == 300 {
			once.Do(func() { close(outage) })
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); typeScans(t, l1, "A", 500, onAck) }()
	go func() { defer wg.Done(); typeScans(t, l2, "B", 500, onAck) }()

	// Take the broker down while scans stream in: the dock keeps working
	// (ACKs keep coming from the durable buffer), and the backlog is sent
	// once it is back.
	<-outage
	broker.Stop()
	mu.Lock()
	atStop := len(acked)
	mu.Unlock()
	waitAcks := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n || time.Now().After(deadline) {
				return
			}
			time.Sleep(5 * time.Millisecond) // polling the scanners' progress
		}
	}
	waitAcks(atStop + 200)
	mu.Lock()
	duringOutage := len(acked) - atStop
	mu.Unlock()
	if duringOutage < 200 {
		t.Fatalf("only %d scans acknowledged while the broker was down", duringOutage)
	}
	broker.Restart()
	wg.Wait()

	sub.WaitFor(60*time.Second, "all 1000 scans", func(ms []mosquittotest.Message) bool {
		got := map[string]bool{}
		for _, m := range ms {
			var ev e2eScan
			if json.Unmarshal(m.Payload, &ev) == nil && ev.Type == "io.scangw.scan.v1" {
				got[ev.Data.Raw] = true
			}
		}
		return len(got) >= 1000
	})
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != 1000 {
		t.Fatalf("%d scans acknowledged, want 1000", len(acked))
	}
	checkDelivery(t, sub.Messages(), acked)

	// Operators' view: readiness does not depend on the broker, metrics
	// count what happened.
	body := httpGet(t, "http://"+httpAddr+"/readyz")
	if !strings.HasPrefix(body, "ready") {
		t.Fatalf("/readyz: %q", body)
	}
	metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	for _, want := range []string{
		`scangw_station_scans_total{station="dock-1",verdict="accepted"} 1000`,
		`scangw_device_connected{scanner="h1"} 1`,
		`scangw_mqtt_connected 1`,
		`scangw_buffer_depth_scans`,
		`scangw_buffer_oldest_unsent_age_seconds`,
		`scangw_mqtt_publish_latency_seconds_bucket`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The status page: the same state for a person at the dock.
	var st statusReport
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/status")), &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	if st.Site != "plant-t" || st.Gateway != "gw-e2e" || !st.MQTT.Connected || st.MQTT.PublishPermitted == nil || !*st.MQTT.PublishPermitted ||
		st.Buffer.NextSeq != 1001 || len(st.Stations) != 1 {
		t.Fatalf("/status = %+v, want plant-t/gw-e2e connected and permitted, next seq 1001, one station", st)
	}
	dock := st.Stations[0]
	if dock.ID != "dock-1" || dock.Mode != "receive" || !dock.Running || len(dock.Scanners) != 2 || !dock.Scanners[0].Up || !dock.Scanners[1].Up {
		t.Errorf("/status station %+v, want dock-1 receiving with h1 and h2 up", dock)
	}
	// The last 20 reads, newest first. The two scanners' reads are stored
	// concurrently, so neighbouring seqs may be recorded in either order.
	if len(dock.Recent) != 20 {
		t.Fatalf("/status has %d recent outcomes, want 20", len(dock.Recent))
	}
	seqs := map[uint64]bool{}
	for _, o := range dock.Recent {
		if o.Verdict != "accepted" || !acked[o.Data] || o.Seq < 1000-25 || seqs[o.Seq] {
			t.Errorf("/status recent outcome %+v: want an accepted scan the scanners sent, one of the last, listed once", o)
		}
		seqs[o.Seq] = true
	}
	if !seqs[1000] || dock.Recent[0].Seq < 999 {
		t.Errorf("/status recent outcomes start with seq %d and hold 1000: %v; want the newest first", dock.Recent[0].Seq, seqs[1000])
	}
	page := httpGet(t, "http://"+httpAddr+"/")
	for _, want := range []string{"plant-t/gw-e2e", "dock-1", ">connected<", "h1 up", dock.Recent[0].Data, `class="read v-accepted"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
