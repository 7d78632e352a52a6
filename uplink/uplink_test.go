package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// statusEvent is the CloudEvents envelope of a status message.
type statusEvent struct {
	SpecVersion     string      `json:"specversion"`
	ID              string      `json:"id"`
	Source          string      `json:"source"`
	Type            string      `json:"type"`
	Time            string      `json:"time"`
	DataContentType string      `json:"datacontenttype"`
	Data            wire.Status `json:"data"`
}

// parseStatus decodes a status message and checks its envelope and that
// it holds to the wire contract on its topic.
func parseStatus(topic string, p []byte) (statusEvent, error) {
	var ev statusEvent
	if err := json.Unmarshal(p, &ev); err != nil {
		return ev, fmt.Errorf("status %q: %w", p, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
		return ev, fmt.Errorf("status time %q: %w", ev.Time, err)
	}
	if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source != statusSource || ev.Type != wire.StatusType || ev.DataContentType != "application/json" {
		return ev, fmt.Errorf("status envelope %+v, want specversion 1.0, an id, source %s, type %s, application/json", ev, statusSource, wire.StatusType)
	}
	if !strings.HasSuffix(topic, "/site1/gw1/status") {
		return ev, fmt.Errorf("status on topic %q, want <prefix>/site1/gw1/status", topic)
	}
	if err := checkContract(topic, p); err != nil {
		return ev, fmt.Errorf("status %s: %w", p, err)
	}
	return ev, nil
}

// states returns the states of the status messages in msgs, failing on a
// malformed one.
func states(t testing.TB, msgs []mosquittotest.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		ev, err := parseStatus(m.Topic, m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.Data.State)
	}
	return out
}

func hasState(t testing.TB, state string) func([]mosquittotest.Message) bool {
	return func(msgs []mosquittotest.Message) bool {
		for _, s := range states(t, msgs) {
			if s == state {
				return true
			}
		}
		return false
	}
}

// TestDeliversInOrder drains a backlog and live appends (on the in-memory
// queue) to a real broker: every scan arrives once, in seq order, on its
// stream's topic; the queue ends empty; the status topic carries the
// retained online birth and, after a clean shutdown, an offline message
// the uplink published itself.
func TestDeliversInOrder(t *testing.T) {
	t.Parallel()
	const backlog, live = 1000, 1000
	br := mosquittotest.Start(t, mosquittotest.Options{})
	scans := mosquittotest.Subscribe(t, br, "sub-order", scanFilter)
	status := mosquittotest.Subscribe(t, br, "sub-order-status", statusTopic)
	buf := newMemQueue()
	mustAppend(t, buf, backlog)

	q := &checkedQueue{testQueue: buf}
	u, reg, stop := runUplink(t, testConfig(br.URL(), buf), q)
	status.WaitFor(10*time.Second, "online birth", hasState(t, "online"))
	// The birth can reach the subscriber before its PUBACK reaches us.
	waitUntil(t, 5*time.Second, "Connected() after the birth", u.Connected)
	var ev statusEvent
	for _, m := range status.Messages() {
		ev, _ = parseStatus(m.Topic, m.Payload)
	}
	if ev.Data.Epoch != buf.Epoch() || ev.Data.Version != "test" || ev.Data.ConfigHash != "cafe" || ev.Data.StartTime.IsZero() || ev.Data.Instance != u.Instance() {
		t.Errorf("birth data = %+v, want epoch %s, version test, config hash cafe, a start time, instance %s", ev.Data, buf.Epoch(), u.Instance())
	}
	// A subscriber that comes later gets the birth as the retained message.
	late := mosquittotest.Subscribe(t, br, "sub-order-late", statusTopic)
	late.WaitCount(1, 10*time.Second)
	if m := late.Messages()[0]; !m.Retained || states(t, late.Messages()[:1])[0] != "online" {
		t.Errorf("late subscriber got %+v, want the retained online birth", m)
	}

	mustAppend(t, buf, live)
	var got arrivals
	got.waitAll(t, scans, backlog+live, deliveryTimeout)
	got.check(t, backlog+live)
	if got.dups != 0 {
		t.Errorf("%d duplicates without any disruption, want 0", got.dups)
	}
	drained(t, buf, 10*time.Second)
	waitUntil(t, 5*time.Second, "published_total to reach the backlog", func() bool {
		return metricValue(t, reg, "scangw_mqtt_published_total") == backlog+live
	})
	q.verify(t, backlog+live)
	if q.dupAcks != 0 {
		t.Errorf("%d duplicate acks without any disruption", q.dupAcks)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP scangw_mqtt_connected 1 while the MQTT session is up.
# TYPE scangw_mqtt_connected gauge
scangw_mqtt_connected 1
# HELP scangw_mqtt_connect_failures_total Connection attempts that failed, by reason.
# TYPE scangw_mqtt_connect_failures_total counter
scangw_mqtt_connect_failures_total{reason="bad_credentials"} 0
scangw_mqtt_connect_failures_total{reason="local"} 0
scangw_mqtt_connect_failures_total{reason="network"} 0
scangw_mqtt_connect_failures_total{reason="refused"} 0
scangw_mqtt_connect_failures_total{reason="timeout"} 0
scangw_mqtt_connect_failures_total{reason="tls_bad_certificate"} 0
scangw_mqtt_connect_failures_total{reason="tls_expired"} 0
scangw_mqtt_connect_failures_total{reason="tls_handshake"} 0
scangw_mqtt_connect_failures_total{reason="tls_unknown_ca"} 0
# HELP scangw_mqtt_duplicate_gateway 1 once another process was seen announcing itself on this gateway's status topic.
# TYPE scangw_mqtt_duplicate_gateway gauge
scangw_mqtt_duplicate_gateway 0
# HELP scangw_mqtt_poison_total Queued messages over mqtt.max_payload, held in the buffer unsent (counted once per message and process).
# TYPE scangw_mqtt_poison_total counter
scangw_mqtt_poison_total 0
# HELP scangw_mqtt_publish_permitted 1 if the probe on the heartbeat topic came back (the broker lets the gateway publish), 0 if it did not (queue held), -1 not known yet.
# TYPE scangw_mqtt_publish_permitted gauge
scangw_mqtt_publish_permitted 1
# HELP scangw_mqtt_publish_failures_total Publishes that failed; each ends the session and is resent.
# TYPE scangw_mqtt_publish_failures_total counter
scangw_mqtt_publish_failures_total 0
# HELP scangw_mqtt_published_total Queued messages acknowledged by the broker (PUBACK) and deleted.
# TYPE scangw_mqtt_published_total counter
scangw_mqtt_published_total %d
# HELP scangw_mqtt_reconnects_total Sessions that were up and ended (so the uplink reconnects), by reason.
# TYPE scangw_mqtt_reconnects_total counter
scangw_mqtt_reconnects_total{reason="keepalive"} 0
scangw_mqtt_reconnects_total{reason="network"} 0
scangw_mqtt_reconnects_total{reason="publish_failed"} 0
scangw_mqtt_reconnects_total{reason="queue"} 0
scangw_mqtt_reconnects_total{reason="setup_failed"} 0
`, backlog+live)), "scangw_mqtt_connected", "scangw_mqtt_connect_failures_total",
		"scangw_mqtt_publish_failures_total", "scangw_mqtt_published_total", "scangw_mqtt_reconnects_total",
		"scangw_mqtt_poison_total", "scangw_mqtt_publish_permitted", "scangw_mqtt_duplicate_gateway"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(u.m.latency); n != 1 {
		t.Errorf("latency histogram has %d series, want 1", n)
	}

	// Clean shutdown: no will (DISCONNECT suppresses it), so the uplink
	// says offline itself, and that becomes the retained status.
	stop()
	status.WaitFor(10*time.Second, "offline after shutdown", hasState(t, "offline"))
	if got := states(t, status.Messages()); got[len(got)-1] != "offline" || got[0] != "online" {
		t.Errorf("status states = %v, want online first and offline last", got)
	}
	if u.Connected() || metricValue(t, reg, "scangw_mqtt_connected") != 0 || metricValue(t, reg, "scangw_mqtt_inflight_messages") != 0 {
		t.Error("after shutdown: still connected, or the gauges say so")
	}
	after := mosquittotest.Subscribe(t, br, "sub-order-after", statusTopic)
	after.WaitCount(1, 10*time.Second)
	if m := after.Messages()[0]; !m.Retained || states(t, after.Messages()[:1])[0] != "offline" {
		t.Errorf("retained status after shutdown = %+v, want offline", m)
	}
}

// TestBrokerOutages appends at a steady pace while the broker is stopped
// (SIGTERM, with persistence) and restarted several times: every scan
// arrives, first arrivals are in seq order with no gap, and the buffer
// drains. It runs on the real buffer: its point is that the buffer deletes
// only what a PUBACK acknowledged, across many torn sessions.
func TestBrokerOutages(t *testing.T) {
	t.Parallel()
	const (
		// At least this many scans; the appender keeps going until the
		// last outage is over, however long the outages take.
		minTotal = 20000
		outages  = 10
		// Each outage starts once this many more scans were appended,
		// and lasts until at least whileDown more were.
		every     = 1500
		whileDown = 300
	)
	br := mosquittotest.Start(t, mosquittotest.Options{Persistence: true})
	sub := mosquittotest.Subscribe(t, br, "sub-outage", scanFilter)
	buf := openBuffer(t)
	q := &checkedQueue{testQueue: buf}
	u, reg, _ := runUplink(t, testConfig(br.URL(), buf), q)
	waitUntil(t, 10*time.Second, "first connect", u.Connected)

	// The appender: bursts of 10 every 5 ms, about 2,000 scans/s. The
	// ticker paces the load; it synchronises nothing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var appended atomic.Int64
	var outagesOver atomic.Bool
	appendDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for appended.Load() < minTotal || !outagesOver.Load() {
			select {
			case <-ctx.Done():
				appendDone <- ctx.Err()
				return
			case <-tick.C:
			}
			if err := appendScans(ctx, buf, 10, 10, 0); err != nil {
				appendDone <- err
				return
			}
			appended.Add(10)
		}
		appendDone <- nil
	}()

	var downFor []time.Duration
	for i := range outages {
		mark := int64(every*i + every - whileDown)
		waitUntil(t, deliveryTimeout, fmt.Sprintf("%d appended", mark), func() bool { return appended.Load() >= mark })
		// Only stop a broker the gateway is using, so each outage cuts a
		// live session rather than a reconnect attempt.
		published := metricValue(t, reg, "scangw_mqtt_published_total")
		waitUntil(t, 20*time.Second, fmt.Sprintf("delivery before outage %d", i+1), func() bool {
			return u.Connected() && metricValue(t, reg, "scangw_mqtt_published_total") > published
		})
		br.Stop()
		start := time.Now()
		downAt := appended.Load()
		waitUntil(t, 10*time.Second, "the uplink to notice the outage", func() bool { return !u.Connected() })
		waitUntil(t, deliveryTimeout, fmt.Sprintf("%d appended while down", whileDown), func() bool {
			return appended.Load() >= downAt+whileDown
		})
		br.Restart()
		downFor = append(downFor, time.Since(start))
	}
	outagesOver.Store(true)
	if err := <-appendDone; err != nil {
		t.Fatal(err)
	}
	total := int(appended.Load())

	var got arrivals
	got.waitAll(t, sub, total, deliveryTimeout)
	got.check(t, total)
	defer q.verify(t, total) // also when drained fails: its ack record explains
	drained(t, buf, 10*time.Second)
	t.Logf("%d scans, %d outages lasting %v; %d duplicate deliveries, %d duplicate acks, %v connect failures, %v publish failures",
		total, outages, downFor, got.dups, q.dupAcks, metricValue(t, reg, "scangw_mqtt_connect_failures_total"),
		metricValue(t, reg, "scangw_mqtt_publish_failures_total"))
	if n := metricValue(t, reg, "scangw_mqtt_reconnects_total"); n < outages {
		t.Errorf("scangw_mqtt_reconnects_total = %v, want at least one per outage (%d)", n, outages)
	}
	if v := metricValue(t, reg, "scangw_mqtt_duplicate_gateway"); v != 0 {
		t.Errorf("scangw_mqtt_duplicate_gateway = %v across broker restarts, want 0", v)
	}
}

// TestHalfOpenConnection freezes the broker (SIGSTOP): its sockets stay
// open but nothing answers. Keepalive must notice; connection attempts to
// the frozen broker must time out rather than hang; and once the broker
// thaws (with those stale attempts queued in its accept backlog) the uplink
// must end up connected, announced online, and deliver the scans appended
// meanwhile.
func TestHalfOpenConnection(t *testing.T) {
	t.Parallel()
	const before, during = 10, 50
	br := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, br, "sub-halfopen", scanFilter)
	status := mosquittotest.Subscribe(t, br, "sub-halfopen-status", statusTopic)
	buf := newMemQueue()
	cfg := testConfig(br.URL(), buf)
	cfg.KeepAlive = time.Second
	cfg.ConnectTimeout = time.Second
	cfg.WriteTimeout = time.Second
	q := &checkedQueue{testQueue: buf}
	u, reg, _ := runUplink(t, cfg, q)

	mustAppend(t, buf, before)
	var got arrivals
	got.waitAll(t, sub, before, deliveryTimeout)
	waitUntil(t, 10*time.Second, "connected", u.Connected)

	br.Pause()
	mustAppend(t, buf, during)
	// paho pings once nothing was received for KeepAlive (checked every
	// KeepAlive/4) and gives up PingTimeout (KeepAlive/2 + 1s) later: about
	// 2.75 s here. The bound leaves room for a loaded machine.
	bound := 4*cfg.KeepAlive + 2*(cfg.KeepAlive/2+time.Second)
	took := waitUntil(t, bound, "Connected() to turn false on a half-open connection", func() bool { return !u.Connected() })
	t.Logf("half-open connection noticed after %v (keepalive %v, bound %v)", took.Round(time.Millisecond), cfg.KeepAlive, bound)
	// The kernel still completes TCP handshakes for the frozen broker, so
	// attempts reach CONNECT and must give up waiting for the CONNACK.
	failed := metricValue(t, reg, "scangw_mqtt_connect_failures_total")
	took = waitUntil(t, 4*(cfg.ConnectTimeout+time.Second)+time.Second, "two connect attempts to time out", func() bool {
		return metricValue(t, reg, "scangw_mqtt_connect_failures_total") >= failed+2
	})
	t.Logf("two connect attempts to the frozen broker failed within %v (connect timeout %v)", took.Round(time.Millisecond), cfg.ConnectTimeout)

	br.Resume()
	took = waitUntil(t, 20*time.Second, "reconnect after the broker thawed", u.Connected)
	t.Logf("reconnected %v after the broker thawed", took.Round(time.Millisecond))
	got.waitAll(t, sub, before+during, deliveryTimeout)
	got.check(t, before+during)
	drained(t, buf, 10*time.Second)
	q.verify(t, before+during)
	// The stale attempts took the client id over one after another, each
	// firing the previous one's will; the live session's birth must have
	// the last word. (The subscriber sees every retained update in order,
	// so its last message is what the broker retains.)
	status.WaitFor(10*time.Second, "online as the last status", func(msgs []mosquittotest.Message) bool {
		st := states(t, msgs)
		return len(st) > 0 && st[len(st)-1] == "online"
	})
	t.Logf("status messages: %v", states(t, status.Messages()))
	waitUntil(t, 5*time.Second, "still connected", u.Connected)
	if n := metricValue(t, reg, "scangw_mqtt_reconnects_total", "reason", LostKeepalive); n < 1 {
		t.Errorf("scangw_mqtt_reconnects_total{reason=keepalive} = %v, want the half-open session counted", n)
	}
	if n := metricValue(t, reg, "scangw_mqtt_connect_failures_total", "reason", ReasonTimeout); n < 2 {
		t.Errorf("scangw_mqtt_connect_failures_total{reason=timeout} = %v, want the attempts on the frozen broker", n)
	}
	// The stale attempts were this process's own: no duplicate.
	if v := metricValue(t, reg, "scangw_mqtt_duplicate_gateway"); v != 0 {
		t.Errorf("scangw_mqtt_duplicate_gateway = %v after the gateway's own stale connections, want 0", v)
	}
}

// TestReconnectIsPaced runs the uplink against a stopped broker: attempts
// must be spaced by the backoff, not a tight loop, and it must connect soon
// after the broker is back.
func TestReconnectIsPaced(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	br.Stop() // the port is now closed: each attempt is refused at once
	buf := newMemQueue()
	cfg := testConfig(br.URL(), buf)
	cfg.ReconnectMin = 50 * time.Millisecond
	cfg.ReconnectMax = 200 * time.Millisecond
	u, reg, _ := runUplink(t, cfg, buf)

	failures := func() float64 { return metricValue(t, reg, "scangw_mqtt_connect_failures_total") }
	waitUntil(t, 10*time.Second, "a first connect failure", func() bool { return failures() >= 1 })
	// Time the next attempts instead of counting over a fixed window:
	// each is preceded by a wait of at least ReconnectMin, so they cannot
	// take less than attempts·ReconnectMin (less the polling delay in
	// noticing the first). A loop without backoff makes thousands of
	// refused connects a second. ReconnectMax bounds them from above.
	const attempts = 10
	first := failures()
	took := waitUntil(t, attempts*(cfg.ReconnectMax+time.Second), fmt.Sprintf("%d more connect attempts", attempts), func() bool {
		return failures() >= first+attempts
	})
	n := failures() - first
	t.Logf("%v connect attempts failed in %v, %.1f/s (backoff %v..%v)", n, took.Round(time.Millisecond), n/took.Seconds(), cfg.ReconnectMin, cfg.ReconnectMax)
	if floor := attempts*cfg.ReconnectMin - 50*time.Millisecond; took < floor {
		t.Errorf("%v connect attempts in %v, want them to take at least %v with reconnect_min %v", n, took, floor, cfg.ReconnectMin)
	}
	if u.Connected() {
		t.Error("Connected() = true with the broker down")
	}
	if all, refused := metricValue(t, reg, "scangw_mqtt_connect_failures_total"), metricValue(t, reg, "scangw_mqtt_connect_failures_total", "reason", ReasonNetwork); all != refused {
		t.Errorf("%v connect failures, %v with reason network; want all: the port is closed", all, refused)
	}

	br.Restart()
	took = waitUntil(t, 10*time.Second, "connect after the broker came back", u.Connected)
	t.Logf("connected %v after the broker came back", took.Round(time.Millisecond))
}

// TestMessageIDsWrapPastAStuckConsumer drains more scans in one session than
// MQTT 3.1.1 has message ids (65,535), so every id is reused, while another
// client subscribed to the scans at QoS 1 never acknowledges nor reads
// anything. Neither stalls the gateway nor loses a scan: every one arrives
// at a working subscriber, in order, and the session never drops.
func TestMessageIDsWrapPastAStuckConsumer(t *testing.T) {
	t.Parallel()
	const n = 70_000
	br := mosquittotest.Start(t, mosquittotest.Options{})
	stuck := stuckSubscriber(t, br, scanFilter)
	scans := mosquittotest.Subscribe(t, br, "sub-wrap", scanFilter)
	buf := newMemQueue()
	if err := appendScans(context.Background(), buf, n, 256, 0); err != nil {
		t.Fatal(err)
	}
	q := &checkedQueue{testQueue: buf}
	_, reg, _ := runUplink(t, testConfig(br.URL(), buf), q)

	var got arrivals
	got.waitAll(t, scans, n, 2*deliveryTimeout)
	got.check(t, n)
	drained(t, buf, deliveryTimeout)
	q.verify(t, n)
	if v := metricValue(t, reg, "scangw_mqtt_published_total"); v != n {
		t.Errorf("published_total = %v, want %d", v, n)
	}
	if v := metricValue(t, reg, "scangw_mqtt_reconnects_total"); v != 0 {
		t.Errorf("reconnects_total = %v, want 0: the session dropped", v)
	}
	// The stuck client was really offered scans (and never acked them).
	if err := stuck.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	p, err := packets.ReadPacket(stuck)
	if err != nil {
		t.Fatalf("stuck subscriber: read: %v", err)
	}
	if pub, ok := p.(*packets.PublishPacket); !ok || pub.Qos != 1 || pub.TopicName != scanTopic {
		t.Errorf("stuck subscriber's first packet after SUBACK: %v, want a QoS 1 PUBLISH on %s", p, scanTopic)
	}
}

// stuckSubscriber connects a client that subscribes to filter at QoS 1 and
// then neither reads nor acknowledges anything until the test reads from
// the returned connection.
func stuckSubscriber(t *testing.T, br *mosquittotest.Broker, filter string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", br.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	conn := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	conn.ProtocolName, conn.ProtocolVersion = "MQTT", 4
	conn.ClientIdentifier, conn.CleanSession, conn.Keepalive = "stuck", true, 0
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID, sub.Topics, sub.Qoss = 1, []string{filter}, []byte{1}
	for _, p := range []packets.ControlPacket{conn, sub} {
		if err := p.Write(c); err != nil {
			t.Fatalf("stuck subscriber: %v", err)
		}
	}
	for _, want := range []string{"CONNACK", "SUBACK"} {
		p, err := packets.ReadPacket(c)
		if err != nil {
			t.Fatalf("stuck subscriber: waiting for %s: %v", want, err)
		}
		switch p := p.(type) {
		case *packets.ConnackPacket:
			if p.ReturnCode != 0 {
				t.Fatalf("stuck subscriber: CONNACK %d", p.ReturnCode)
			}
		case *packets.SubackPacket:
			if len(p.ReturnCodes) != 1 || p.ReturnCodes[0] != 1 {
				t.Fatalf("stuck subscriber: SUBACK %v, want QoS 1 granted", p.ReturnCodes)
			}
		default:
			t.Fatalf("stuck subscriber: got %v, want %s", p, want)
		}
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStreams publishes each queued message on its stream's topic under
// the gateway's topics (wire.Topics.Of), and a legacy message that holds a
// whole topic (as scangw stored them before streams) on that topic as it
// stands. Real station events go through, and each holds to the wire
// contract on the topic it arrives on.
func TestStreams(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, br, "sub-streams", "t/site1/gw1/+/+")
	q := newMemQueue()
	ctx := context.Background()
	scan := func(station string) func(seq uint64) ([]byte, error) {
		return func(seq uint64) ([]byte, error) {
			return wire.Event{ID: wire.NewID(), Source: wire.StationSource("site1", "gw1", station), Type: wire.ScanType, Time: time.Now(),
				Data: wire.ScanData{Seq: seq, Epoch: q.Epoch(), Station: station, Mode: "receive", Scanner: "h1", Raw: fmt.Sprint("item-", seq),
					Verdict: wire.Accepted, Reasons: []wire.Reason{}}}.Encode()
		}
	}
	modeChange := func(seq uint64) ([]byte, error) {
		return wire.Event{ID: wire.NewID(), Source: wire.StationSource("site1", "gw1", "s1"), Type: wire.ContextType, Time: time.Now(),
			Data: wire.ContextData{Seq: seq, Epoch: q.Epoch(), Station: "s1", Mode: "ship", Context: map[string]string{"order": "PO-1"}}}.Encode()
	}
	for _, a := range []struct {
		stream string
		build  func(uint64) ([]byte, error)
	}{
		{wire.ScanStream("s1"), scan("s1")},
		{wire.EventStream("s1"), modeChange},
		{"t/site1/gw1/scans/s2", scan("s2")}, // legacy: a whole topic
		{wire.ScanStream("s1"), scan("s1")},
	} {
		if _, err := q.Append(ctx, a.stream, a.build); err != nil {
			t.Fatal(err)
		}
	}
	runUplink(t, testConfig(br.URL(), q), q)
	sub.WaitCount(4, deliveryTimeout)
	want := []string{"t/site1/gw1/scans/s1", "t/site1/gw1/events/s1", "t/site1/gw1/scans/s2", "t/site1/gw1/scans/s1"}
	for i, m := range sub.Messages() {
		if i < len(want) && m.Topic != want[i] {
			t.Errorf("message %d on %s, want %s", i, m.Topic, want[i])
		}
		if err := checkContract(m.Topic, m.Payload); err != nil {
			t.Errorf("message %d: %v\n%s", i, err, m.Payload)
		}
		if m.QoS != 1 || m.Retained {
			t.Errorf("message %d at QoS %d, retained %v; want QoS 1, not retained", i, m.QoS, m.Retained)
		}
	}
	drained(t, q, 10*time.Second)
}
