package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/uplink/brokertest"
)

const (
	failoverClientID = "scangw-gw-e2e"
	// failoverPace spaces one scanner's scans: two docks' worth of
	// traffic, so that the stream spans the failover instead of being
	// typed ahead of it into the buffer.
	failoverPace = 20 * time.Millisecond
	// failoverPhase scans are acknowledged before the kill, after the
	// failover and after the restart.
	failoverPhase = 150
	// failoverMaxScans bounds each scanner's stream.
	failoverMaxScans = 20000
)

// failoverStream is scanners typing paced scans until stopped.
type failoverStream struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	acked   map[string]bool
	changed chan struct{} // closed and replaced on every ACK
	err     error
}

func startFailoverStream(lines []*serialsim.Pty) *failoverStream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &failoverStream{cancel: cancel, acked: map[string]bool{}, changed: make(chan struct{})}
	for i, l := range lines {
		s.wg.Go(func() {
			tick := time.NewTicker(failoverPace)
			defer tick.Stop()
			for n := range failoverMaxScans {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				code := fmt.Sprintf("F%d-%05d", i+1, n)
				fb, err := l.Send(context.Background(), code, "\r\n", 20*time.Second)
				s.mu.Lock()
				switch {
				case err != nil:
					s.err = fmt.Errorf("%s: %w", code, err)
				case fb != 0x06:
					s.err = fmt.Errorf("%s: feedback %#x, want ACK", code, fb)
				default:
					s.acked[code] = true
				}
				close(s.changed)
				s.changed = make(chan struct{})
				failed := s.err != nil
				s.mu.Unlock()
				if failed {
					return
				}
			}
		})
	}
	return s
}

// waitAcked waits until n scans in all were acknowledged.
func (s *failoverStream) waitAcked(t *testing.T, n int, logPath string) {
	t.Helper()
	timer := time.NewTimer(brokerWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, err, changed := len(s.acked), s.err, s.changed
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("scanner: %v\n%s", err, crashLogTail(logPath))
		}
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("%d scans acknowledged after %v, want %d\n%s", got, brokerWait, n, crashLogTail(logPath))
		}
	}
}

func (s *failoverStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// stop ends the stream and returns every acknowledged code.
func (s *failoverStream) stop(t *testing.T) map[string]bool {
	t.Helper()
	s.cancel()
	s.wg.Wait()
	if s.err != nil {
		t.Fatalf("scanner: %v", s.err)
	}
	return s.acked
}

// TestNATSClusterFailover: the gateway lists the three nodes of a NATS
// JetStream cluster in mqtt.brokers. Mid-stream, the node it is connected
// to is killed with SIGKILL; the gateway moves to another node (its
// /status and the cluster's own connection list agree), and the node is
// restarted on its store later. A subscriber on another node gets every
// scan that was acknowledged, first arrivals in seq order, seq gap-free.
func TestNATSClusterFailover(t *testing.T) {
	bin := buildScangw(t)
	cluster := brokertest.StartNATSCluster(t, 3)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	var lines []*serialsim.Pty
	var scanners strings.Builder
	for i := range 2 {
		l, err := serialsim.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		lines = append(lines, l)
		fmt.Fprintf(&scanners, `
      - {id: h%d, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, i+1, l.Path())
	}
	yaml := fmt.Sprintf(`gateway: {id: gw-e2e, site: plant-t}
buffer:  {dir: %q}
mqtt:
  brokers: [%q, %q, %q]
  client_id: %s
  topic_prefix: scangw/v1
  reconnect_min: 20ms
  reconnect_max: 300ms
http:    {listen: %q}
log:     {level: info}
stations:
  - id: dock-1
    mode: receive
    scanners:%s
`, filepath.Join(dir, "buffer"), cluster.Node(0).URL(), cluster.Node(1).URL(), cluster.Node(2).URL(),
		failoverClientID, httpAddr, scanners.String())
	config := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := configs.Load(config); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	d := crashNewDaemon(t, bin, config, filepath.Join(dir, "scangw.log"))
	g := &brokerGateway{dir: dir, httpAddr: httpAddr, lines: lines, d: d}
	d.start()

	// The node the gateway is on, by its own word and by the cluster's.
	onNode := func(t *testing.T, not *brokertest.NATSNode) *brokertest.NATSNode {
		t.Helper()
		var nd *brokertest.NATSNode
		g.waitStatus(t, "a session on a live node", func(st statusReport) bool {
			nd = cluster.NodeOf(st.MQTT.Broker)
			return st.MQTT.Connected && nd != nil && nd != not && cluster.ClientNode(failoverClientID) == nd
		})
		return nd
	}
	first := onNode(t, nil)
	var other *brokertest.NATSNode
	for _, nd := range cluster.Nodes() {
		if nd != first {
			other = nd
			break
		}
	}
	t.Logf("the gateway is on %s; the subscriber on %s", first.Name(), other.Name())
	sub := brokertest.Subscribe(t, other, "central-failover", e2eTopics.Base+"/scans/#")

	stream := startFailoverStream(lines)
	t.Cleanup(func() { stream.cancel(); stream.wg.Wait() })
	stream.waitAcked(t, failoverPhase, d.logPath)

	killed := time.Now()
	atKill := stream.count()
	first.Kill()
	second := onNode(t, first)
	failover := time.Since(killed)
	atFailover := stream.count()
	t.Logf("%s killed after %d scans; the gateway was on %s %v later, %d scans acknowledged meanwhile",
		first.Name(), atKill, second.Name(), failover.Round(time.Millisecond), atFailover-atKill)
	if m := httpGet(t, "http://"+httpAddr+"/metrics"); !strings.Contains(m, fmt.Sprintf("scangw_mqtt_broker{url=%q} 1", second.URL())) ||
		!strings.Contains(m, fmt.Sprintf("scangw_mqtt_broker{url=%q} 0", first.URL())) {
		t.Errorf("scangw_mqtt_broker does not say the gateway is on %s and not on %s:\n%s", second.URL(), first.URL(), brokerLines(m, "scangw_mqtt_broker"))
	}

	stream.waitAcked(t, atFailover+failoverPhase, d.logPath)
	restarted := time.Now()
	first.Restart()
	atRestart := stream.count()
	t.Logf("%s back after %v, %d scans acknowledged meanwhile", first.Name(), time.Since(restarted).Round(time.Millisecond), atRestart-atFailover-failoverPhase)
	stream.waitAcked(t, atRestart+failoverPhase, d.logPath)
	acked := stream.stop(t)

	drain := time.Now()
	if !sub.Await(brokerWait, brokerHasAll(acked)) {
		t.Fatalf("not every acknowledged scan arrived\n%s\n%s", sub.Summary(), crashLogTail(d.logPath))
	}
	t.Logf("%d scans acknowledged; all at the subscriber %v after the last", len(acked), time.Since(drain).Round(time.Millisecond))
	checkDelivery(t, sub.Messages(), acked)
	log, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the gateway's sessions:\n%s", brokerLines(string(log), "part=uplink"))
	// NATS makes a JetStream consumer of every QoS 1 subscription; while
	// its cluster recovers from the lost node, creating one can time out,
	// and the SUBACK says 0x80 for that topic.
	if refused := brokerLines(string(log), "broker refused a subscription"); refused != "" {
		t.Logf("NATS refused some of the gateway's subscriptions on %s; the session went on without them:\n%s", second.Name(), refused)
	}
}

// brokerLines returns the lines of text holding s.
func brokerLines(text, s string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
