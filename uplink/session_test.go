package uplink

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

const heartbeatTopic = "t/site1/gw1/heartbeat"

// TestPoisonMessage puts a message over MaxPayload between ordinary scans:
// it is neither published (it would get the gateway disconnected) nor
// deleted, the scans after it are delivered, and it is reported once per
// process however often a session meets it. A gateway with a higher limit
// sends it.
func TestPoisonMessage(t *testing.T) {
	t.Parallel()
	// Persistence keeps the subscriber's session across the restart.
	br := mosquittotest.Start(t, mosquittotest.Options{Persistence: true})
	sub := mosquittotest.Subscribe(t, br, "sub-poison", scanFilter)
	buf := newMemQueue()
	ctx := context.Background()
	for _, size := range []int{0, 0, 0, 3000, 0, 0, 0} {
		if err := appendScans(ctx, buf, 1, 1, size); err != nil {
			t.Fatal(err)
		}
	}
	log, logs := captureLogger(t)
	cfg := testConfig(br.URL(), buf)
	cfg.MaxPayload = 1024
	u, reg, stop := runUplinkLog(t, cfg, buf, log)

	sub.WaitFor(deliveryTimeout, "the six small scans", func(msgs []mosquittotest.Message) bool {
		seen := map[uint64]bool{}
		for _, m := range msgs {
			if seq, err := seqOf(m.Payload); err == nil {
				seen[seq] = true
			}
		}
		return len(seen) == 6
	})
	waitUntil(t, 10*time.Second, "all but one message acked", func() bool { return buf.Depth() == 1 })
	es, err := buf.Peek(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || len(es[0].Payload) != 3000 {
		t.Fatalf("queue holds %d messages, want only the 3000-byte one", len(es))
	}
	for _, m := range sub.Messages() {
		if seq, _ := seqOf(m.Payload); seq == 4 {
			t.Errorf("the oversized scan was published")
		}
	}

	// A reconnect meets the message again: held again, not reported again.
	br.Restart()
	waitUntil(t, 20*time.Second, "a reconnect", func() bool {
		return u.Connected() && metricValue(t, reg, "scangw_mqtt_reconnects_total", "reason", LostNetwork) >= 1
	})
	mustAppend(t, buf, 1)
	waitUntil(t, 10*time.Second, "the scan after the reconnect", func() bool { return buf.Depth() == 1 })
	if n := metricValue(t, reg, "scangw_mqtt_poison_total"); n != 1 {
		t.Errorf("scangw_mqtt_poison_total = %v, want 1", n)
	}
	if n := strings.Count(logs.String(), "larger than mqtt.max_payload"); n != 1 {
		t.Errorf("the poison message was logged %d times, want once", n)
	}
	stop()

	// Raising the limit sends it.
	cfg.MaxPayload = 4096
	runUplink(t, cfg, buf)
	sub.WaitFor(deliveryTimeout, "seq 4 once the limit was raised", func(msgs []mosquittotest.Message) bool {
		for _, m := range msgs {
			if seq, _ := seqOf(m.Payload); seq == 4 {
				return true
			}
		}
		return false
	})
	drained(t, buf, 10*time.Second)
}

// TestPublishNotPermitted runs the gateway against a broker whose ACL lets
// it read but not write: the probe does not come back, so nothing from the
// queue is published (a denied publish is acknowledged and dropped: it
// would be lost), the metric and log say so. Once the ACL allows it, the
// next probe comes back and the queue drains.
func TestPublishNotPermitted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("topic read #\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	br := mosquittotest.Start(t, mosquittotest.Options{ExtraConfig: "acl_file " + acl + "\n"})
	sub := mosquittotest.Subscribe(t, br, "sub-acl", scanFilter)
	indicator := mosquittotest.Subscribe(t, br, "sub-acl-indicator", "t/site1/gw1/indicator/#")
	buf := newMemQueue()
	mustAppend(t, buf, 5)
	log, logs := captureLogger(t)
	cfg := testConfig(br.URL(), buf)
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.ProbeTimeout = 300 * time.Millisecond
	cfg.Notices = NewNotices()
	q := &checkedQueue{testQueue: buf}
	u, reg, _ := runUplinkLog(t, cfg, q, log)

	waitUntil(t, 10*time.Second, "publish_permitted 0", func() bool {
		return metricValue(t, reg, "scangw_mqtt_publish_permitted") == 0
	})
	// Two more probes fail: still nothing sent.
	waitUntil(t, 10*time.Second, "connected", u.Connected)
	if n := sub.Count(); n != 0 || buf.Depth() != 5 || metricValue(t, reg, "scangw_mqtt_published_total") != 0 {
		t.Fatalf("with publishing denied: %d scans arrived, depth %d, %v published; want none sent, 5 held",
			n, buf.Depth(), metricValue(t, reg, "scangw_mqtt_published_total"))
	}
	if !strings.Contains(logs.String(), "the broker does not let the gateway publish") {
		t.Errorf("no log line says that publishing is not permitted")
	}
	// Live notices wait for the probe too: until it comes back they are
	// dropped, and counted.
	for i := range 3 {
		cfg.Notices.Notify(wire.IndicatorStream("dock-3"), indicatorPayload(t, "dock-3", i+1))
	}
	if n := metricValue(t, reg, "scangw_mqtt_notices_dropped_total"); n != 3 {
		t.Errorf("scangw_mqtt_notices_dropped_total = %v with publishing denied, want 3", n)
	}

	if err := os.WriteFile(acl, []byte("topic readwrite #\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	br.Reload()
	var got arrivals
	got.waitAll(t, sub, 5, deliveryTimeout)
	got.check(t, 5)
	drained(t, buf, 10*time.Second)
	q.verify(t, 5)
	if v := metricValue(t, reg, "scangw_mqtt_publish_permitted"); v != 1 {
		t.Errorf("scangw_mqtt_publish_permitted = %v after the ACL allowed it, want 1", v)
	}
	if !strings.Contains(logs.String(), "lets the gateway publish again") {
		t.Errorf("no log line says that publishing works again")
	}
	waitUntil(t, 10*time.Second, "the session to publish notices", cfg.Notices.open.Load)
	cfg.Notices.Notify(wire.IndicatorStream("dock-3"), indicatorPayload(t, "dock-3", 4))
	indicator.WaitCount(1, 10*time.Second)
	if m := indicator.Messages()[0]; m.Topic != "t/site1/gw1/indicator/dock-3" || checkContract(m.Topic, m.Payload) != nil || !strings.Contains(string(m.Payload), `"seq":4`) {
		t.Errorf("notice after publishing was permitted: %+v, want the one sent then, on indicator/dock-3", m)
	}
}

// heartbeatEvent is the parts of a heartbeat the tests look at.
type heartbeatEvent struct {
	ID   string `json:"id"`
	Data struct {
		Instance         string  `json:"instance"`
		PublishPermitted *bool   `json:"publish_permitted"`
		DuplicateGateway bool    `json:"duplicate_gateway"`
		Backlog          *int64  `json:"backlog"`
		OldestAge        float64 `json:"backlog_oldest_age_seconds"`
		ClockSynced      bool    `json:"clock_synced"`
		ScannersUp       int     `json:"scanners_up"`
		ScannersDown     int     `json:"scanners_down"`
		Stations         []struct {
			ID       string            `json:"id"`
			Mode     string            `json:"mode"`
			Context  map[string]string `json:"context"`
			Running  bool              `json:"running"`
			Scanners []struct {
				ID string `json:"id"`
				Up bool   `json:"up"`
			} `json:"scanners"`
		} `json:"stations"`
	} `json:"data"`
}

// parseHeartbeat holds a heartbeat to the wire contract and decodes it.
func parseHeartbeat(t testing.TB, m mosquittotest.Message) heartbeatEvent {
	t.Helper()
	if err := checkContract(m.Topic, m.Payload); err != nil {
		t.Fatalf("heartbeat: %v\n%s", err, m.Payload)
	}
	var hb heartbeatEvent
	if err := json.Unmarshal(m.Payload, &hb); err != nil {
		t.Fatal(err)
	}
	return hb
}

// TestHeartbeat checks the periodic heartbeats: each holds to the wire
// contract, carries the instance and the health the uplink gathers (the
// backlog, the clock, and the stations with their mode, context and
// scanners, counted up and down), and says that publishing is permitted
// once the probe (the first heartbeat, at QoS 1) came back. Each
// heartbeat reports the stations as they are when it is sent.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, br, "sub-heartbeat", heartbeatTopic)
	// The backlog the heartbeats report: 7 messages, the oldest appended
	// 90 s before now (a queue the uplink does not drain).
	backlog := newMemQueue()
	oldest := time.Now().Add(-90 * time.Second)
	backlog.setClock(func() time.Time { return oldest })
	mustAppend(t, backlog, 7)
	stations := newFakeStations("dock-3", "dock-4")
	stations.setScanners("dock-3", wire.ScannerStatus{ID: "h1", Up: true}, wire.ScannerStatus{ID: "h2", Up: false})
	stations.setScanners("dock-4", wire.ScannerStatus{ID: "f1", Up: true})
	stations.setRunning("dock-4", false)
	ctx := context.Background()
	if _, err := stations.SetMode(ctx, "dock-3", "ship"); err != nil {
		t.Fatal(err)
	}
	if _, err := stations.SetContext(ctx, "dock-3", map[string]string{"order": "PO-1"}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(br.URL(), backlog)
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.Stations = stations
	cfg.ClockSynced = func() bool { return true }
	u, _, _ := runUplink(t, cfg, newMemQueue())
	sub.WaitCount(4, 10*time.Second)
	// Every age was taken before its heartbeat arrived: none exceeds this.
	maxAge := time.Since(oldest).Seconds()

	for i, m := range sub.Messages()[:4] {
		if m.Retained {
			t.Errorf("heartbeat %d is retained", i)
		}
		// The probe goes at QoS 1, so that the broker's PUBACK tells it
		// was taken; the heartbeats after it at QoS 0.
		wantQoS := byte(0)
		if i == 0 {
			wantQoS = 1
		}
		if m.QoS != wantQoS {
			t.Errorf("heartbeat %d came at QoS %d, want %d", i, m.QoS, wantQoS)
		}
		hb := parseHeartbeat(t, m)
		d := hb.Data
		if d.Instance != u.Instance() || d.DuplicateGateway || d.Backlog == nil || *d.Backlog != 7 ||
			d.OldestAge < 90 || d.OldestAge > maxAge || !d.ClockSynced || d.ScannersUp != 2 || d.ScannersDown != 1 || len(d.Stations) != 2 ||
			d.Stations[0].ID != "dock-3" || d.Stations[0].Mode != "ship" || d.Stations[0].Context["order"] != "PO-1" || !d.Stations[0].Running ||
			len(d.Stations[0].Scanners) != 2 || d.Stations[0].Scanners[1].ID != "h2" || d.Stations[0].Scanners[1].Up ||
			d.Stations[1].ID != "dock-4" || d.Stations[1].Mode != "receive" || d.Stations[1].Context != nil || d.Stations[1].Running ||
			len(d.Stations[1].Scanners) != 1 {
			t.Errorf("heartbeat %d = %s, want backlog 7 aged 90..%.3f s", i, m.Payload, maxAge)
		}
		switch {
		case i == 0 && d.PublishPermitted != nil:
			t.Errorf("the first heartbeat (the probe) says publish_permitted %v, want null: nothing was checked yet", *d.PublishPermitted)
		case i > 0 && (d.PublishPermitted == nil || !*d.PublishPermitted):
			t.Errorf("heartbeat %d after the probe came back: publish_permitted %v, want true", i, d.PublishPermitted)
		}
	}

	stations.setScanners("dock-3", wire.ScannerStatus{ID: "h1", Up: true}, wire.ScannerStatus{ID: "h2", Up: true})
	if _, err := stations.SetMode(ctx, "dock-4", "count"); err != nil {
		t.Fatal(err)
	}
	from := sub.Count()
	sub.WaitFor(10*time.Second, "a heartbeat with h2 up and dock-4 counting", func(msgs []mosquittotest.Message) bool {
		for _, m := range msgs[from:] {
			d := parseHeartbeat(t, m).Data
			if d.ScannersUp == 3 && d.ScannersDown == 0 && len(d.Stations) == 2 && d.Stations[1].Mode == "count" {
				return true
			}
		}
		return false
	})
}

// TestHealth checks what Health gathers, and what a heartbeat of an uplink
// without a backlog, stations or clock source says.
func TestHealth(t *testing.T) {
	t.Parallel()
	backlog := newMemQueue()
	oldest := time.Now().Add(-time.Minute)
	backlog.setClock(func() time.Time { return oldest })
	mustAppend(t, backlog, 3)
	stations := newFakeStations("a", "b")
	stations.setScanners("a", wire.ScannerStatus{ID: "s1", Up: false})
	u := New(Config{Backlog: backlog, Stations: stations, ClockSynced: func() bool { return true }, Site: "site1", Gateway: "gw1"},
		nil, testLogger(t), prometheus.NewRegistry())
	h := u.Health()
	maxAge := time.Since(oldest)
	if h.Backlog != 3 || h.OldestAge < time.Minute || h.OldestAge > maxAge || !h.ClockSynced || len(h.Stations) != 2 || h.Stations[0].Scanners[0].Up {
		t.Errorf("Health() = %+v, want backlog 3 aged 1m..%v, clock synced, stations a (s1 down) and b", h, maxAge)
	}
	if w := h.wire(); w.ScannersUp != 0 || w.ScannersDown != 1 || len(w.Stations) != 2 {
		t.Errorf("health on the wire = %+v, want 0 scanners up, 1 down, 2 stations", w)
	}

	bare := New(Config{Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())
	if h := bare.Health(); h.Backlog != 0 || h.OldestAge != 0 || h.ClockSynced || h.Stations != nil {
		t.Errorf("Health() without sources = %+v, want all zero", h)
	}
	p, _ := bare.heartbeat()
	if err := checkContract("t/site1/gw1/heartbeat", p); err != nil || !strings.Contains(string(p), `"stations":[]`) || !strings.Contains(string(p), `"clock_synced":false`) {
		t.Errorf("heartbeat without sources %s (%v), want valid, with no stations and the clock not synced", p, err)
	}
}

// TestDuplicateGateway runs two processes with the same gateway id against
// one broker. With the same client id they take the session from each
// other; with different client ids both stay connected. Either way they
// are detected and reported; one process that restarts is not.
func TestDuplicateGateway(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})

	t.Run("same client id", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig(br.URL(), nil)
		cfg.TopicPrefix, cfg.ClientID = "dup1", "gw-dup1"
		logA, logsA := captureLogger(t)
		logB, logsB := captureLogger(t)
		bufA, bufB := newMemQueue(), newMemQueue()
		cfg.Backlog = bufA
		_, regA, _ := runUplinkLog(t, cfg, bufA, logA)
		cfg.Backlog = bufB
		_, regB, _ := runUplinkLog(t, cfg, bufB, logB)
		waitUntil(t, 20*time.Second, "both to report the duplicate", func() bool {
			return metricValue(t, regA, "scangw_mqtt_duplicate_gateway") == 1 && metricValue(t, regB, "scangw_mqtt_duplicate_gateway") == 1
		})
		for _, l := range []*logBuf{logsA, logsB} {
			if !strings.Contains(l.String(), "two gateways share gateway.id") {
				t.Errorf("no log line reports the duplicate")
			}
		}
	})

	t.Run("different client ids", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig(br.URL(), nil)
		cfg.TopicPrefix, cfg.ClientID = "dup2", "gw-dup2-a"
		bufA, bufB := newMemQueue(), newMemQueue()
		cfg.Backlog = bufA
		a, regA, _ := runUplink(t, cfg, bufA)
		waitUntil(t, 10*time.Second, "the first connected", a.Connected)
		cfg.ClientID, cfg.Backlog = "gw-dup2-b", bufB
		runUplink(t, cfg, bufB)
		waitUntil(t, 20*time.Second, "the first to report the duplicate", func() bool {
			return metricValue(t, regA, "scangw_mqtt_duplicate_gateway") == 1
		})
	})

	t.Run("restart is not a duplicate", func(t *testing.T) {
		t.Parallel()
		sub := mosquittotest.Subscribe(t, br, "sub-dup3", "dup3/site1/gw1/heartbeat")
		buf := newMemQueue()
		cfg := testConfig(br.URL(), buf)
		cfg.TopicPrefix, cfg.ClientID = "dup3", "gw-dup3"
		cfg.Heartbeat = 100 * time.Millisecond
		for run := range 3 {
			u, reg, stop := runUplink(t, cfg, buf)
			// A few heartbeats of this process: its own birth came back
			// long before (it is subscribed to its status first).
			from := sub.Count()
			sub.WaitFor(10*time.Second, "three heartbeats of this process", func(msgs []mosquittotest.Message) bool {
				n := 0
				for _, m := range msgs[from:] {
					if parseHeartbeat(t, m).Data.Instance == u.Instance() {
						n++
					}
				}
				return n >= 3
			})
			if v := metricValue(t, reg, "scangw_mqtt_duplicate_gateway"); v != 0 {
				t.Errorf("run %d: scangw_mqtt_duplicate_gateway = %v after a restart, want 0", run, v)
			}
			stop()
		}
	})
}
