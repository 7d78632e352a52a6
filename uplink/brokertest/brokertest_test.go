package brokertest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

const waitTimeout = 30 * time.Second

// publishSeq publishes payloads first..first+n-1 to topic at QoS 1.
func publishSeq(t *testing.T, b Broker, clientID, topic string, first, n int) {
	t.Helper()
	c := Connect(t, b, clientID)
	for i := first; i < first+n; i++ {
		Publish(t, c, topic, 1, false, []byte(strconv.Itoa(i)))
	}
	c.Disconnect(100)
}

// distinct returns the payloads in order of first arrival (QoS 1 may
// deliver one twice).
func distinct(msgs []Message) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range msgs {
		if p := string(m.Payload); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func seq(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(first + i)
	}
	return out
}

// checkSeq asserts the subscriber got first..first+n-1, in order, after
// what the session's earlier clients got (before[p]): QoS 1 may deliver
// again what a client received but whose PUBACK the broker lost.
func checkSeq(t *testing.T, s *Subscriber, before map[string]bool, first, n int) {
	t.Helper()
	fresh := func(ms []Message) []string {
		var out []string
		for _, p := range distinct(ms) {
			if !before[p] {
				out = append(out, p)
			}
		}
		return out
	}
	s.WaitFor(waitTimeout, fmt.Sprintf("%d messages", n), func(ms []Message) bool { return len(fresh(ms)) >= n })
	if got, want := strings.Join(fresh(s.Messages()), ","), strings.Join(seq(first, n), ","); got != want {
		t.Fatalf("received %s, want %s", got, want)
	}
	if again := len(distinct(s.Messages())) - n; again > 0 {
		t.Logf("%s delivered %d messages again that an earlier connection of the session had", "the subscriber", again)
	}
	for _, p := range seq(first, n) {
		before[p] = true
	}
}

// sessionAcrossRestart is the contract every Broker here keeps: a
// persistent QoS 1 session gets what was published while its client was
// away, across a clean restart of the broker.
func sessionAcrossRestart(t *testing.T, b Broker, pub Broker) {
	got := map[string]bool{}
	s := Subscribe(t, b, "bt-sess", "bt/sess/#")
	publishSeq(t, pub, "bt-pub-1", "bt/sess/a", 0, 20)
	checkSeq(t, s, got, 0, 20)
	s.Close()
	publishSeq(t, pub, "bt-pub-2", "bt/sess/a", 20, 30)
	b.Stop()
	b.Restart()
	s2 := Subscribe(t, b, "bt-sess", "bt/sess/#")
	checkSeq(t, s2, got, 20, 30)
}

func TestMosquittoIsABroker(t *testing.T) {
	t.Parallel()
	b := mosquittotest.Start(t, mosquittotest.Options{Persistence: true})
	sessionAcrossRestart(t, b, b)
}

// TestNATSCluster: a message published on one node reaches a subscriber
// on another; a node killed with SIGKILL comes back on its store and its
// clients' sessions are still there; a restart of the whole cluster keeps
// them too; ClientNode finds the node a client is on.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	c := StartNATSCluster(t, 3)
	if got := len(c.URLs()); got != 3 {
		t.Fatalf("%d URLs, want 3", got)
	}
	n1, n2, n3 := c.Node(0), c.Node(1), c.Node(2)
	s := Subscribe(t, n3, "bt-across", "bt/across/#")
	if nd := c.ClientNode("bt-across"); nd != n3 {
		t.Fatalf("ClientNode(bt-across) = %v, want n3", nd)
	}
	got := map[string]bool{}
	publishSeq(t, n1, "bt-pub-across", "bt/across/x", 0, 50)
	checkSeq(t, s, got, 0, 50)

	// Kill the subscriber's node: its session is replicated, so it
	// resumes on another node and gets what was published meanwhile.
	s.Close()
	n3.Kill()
	killed := time.Now()
	publishSeq(t, n1, "bt-pub-across-2", "bt/across/x", 50, 50)
	t.Logf("50 messages published through n1 %v after n3 was killed", time.Since(killed).Round(time.Millisecond))
	s2 := Subscribe(t, n2, "bt-across", "bt/across/#")
	checkSeq(t, s2, got, 50, 50)
	s2.Close()

	// Back on its store, n3 takes publishes and serves the session again.
	n3.Restart()
	publishSeq(t, n3, "bt-pub-across-3", "bt/across/x", 100, 50)
	s3 := Subscribe(t, n3, "bt-across", "bt/across/#")
	checkSeq(t, s3, got, 100, 50)
	s3.Close()

	sessionAcrossRestart(t, c, n2)
}

// TestRabbitMQ: the node serves MQTT, answers rabbitmqctl with its own
// name and cookie, and keeps a persistent session across a restart.
func TestRabbitMQ(t *testing.T) {
	t.Parallel()
	r := StartRabbitMQ(t)
	sessionAcrossRestart(t, r, r)
	// The session is a durable queue of the node's, and the CLI reaches
	// the node through the test's own epmd and cookie.
	if out := r.Ctl("list_queues", "name", "durable"); !strings.Contains(out, "mqtt-subscription-bt-sessqos1\ttrue") {
		t.Errorf("rabbitmqctl list_queues lacks the session's durable queue:\n%s", out)
	}
}
