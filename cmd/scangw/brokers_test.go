package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink"
	"github.com/scangw/scangw/uplink/brokertest"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// What a broker does where brokers differ. Each is asserted as it is, so
// a broker that changes shows up as a failing subtest, and README's broker
// table points at the subtest.
type (
	// qos2Outcome is what becomes of a client's QoS 2 PUBLISH (a central
	// system sending a command at QoS 2; scangw itself uses QoS 1 only).
	qos2Outcome int
	// dotOutcome is what becomes of a '.' inside a topic level: scangw's
	// ids may hold one (wire.ValidID), e.g. a station "dock.2".
	dotOutcome int
)

const (
	qos2Delivered qos2Outcome = iota // PUBREC, PUBCOMP, and delivered (at the subscriber's QoS 1)
	qos2Refused                      // the broker closes the publisher's connection
	qos2AsQoS1                       // a PUBACK as for QoS 1, and delivered
)

const (
	dotVerbatim dotOutcome = iota // the topic arrives as published
	dotRefused                    // the broker closes the connection of a client that uses it
	dotSplit                      // the '.' arrives as '/': another topic, one level more
)

type brokerKind struct {
	name  string
	start func(t *testing.T) brokertest.Broker
	// retainedOnWildcard: a new subscription with a wildcard gets the
	// retained messages it matches (an exact one gets them everywhere).
	retainedOnWildcard bool
	// sharedSubs: a $share/<group>/<filter> subscription is a shared
	// one (MQTT 5's, which some brokers offer to 3.1.1 clients), as
	// a central consumer would use to spread the load.
	sharedSubs bool
	qos2       qos2Outcome
	dot        dotOutcome
	// qos2Log and dotLog are what the broker logs when it closes a
	// connection over a QoS 2 publish or a '.', where it does.
	qos2Log, dotLog string
}

var brokerKinds = []brokerKind{
	{
		name: "mosquitto",
		start: func(t *testing.T) brokertest.Broker {
			return mosquittotest.Start(t, mosquittotest.Options{Persistence: true})
		},
		retainedOnWildcard: true, sharedSubs: true, qos2: qos2Delivered, dot: dotVerbatim,
	},
	{
		// Three nodes, the MQTT streams replicated on each; the gateway
		// and the central clients use the first node.
		name:               "nats",
		start:              func(t *testing.T) brokertest.Broker { return brokertest.StartNATSCluster(t, 3) },
		retainedOnWildcard: true, sharedSubs: false, qos2: qos2Refused, dot: dotRefused,
		qos2Log: "publish QoS=2 not supported", dotLog: "characters ' ' and '.' not supported for MQTT topics",
	},
	{
		name:               "rabbitmq",
		start:              func(t *testing.T) brokertest.Broker { return brokertest.StartRabbitMQ(t) },
		retainedOnWildcard: false, sharedSubs: false, qos2: qos2AsQoS1, dot: dotSplit,
	},
}

const (
	// brokerWait bounds every wait: a NATS cluster that lost a node can
	// take half a minute to take the gateway's session elsewhere.
	brokerWait = 2 * time.Minute
	// brokerScans scans are typed per scanner while the broker is up,
	// brokerAway more per scanner at each stage of the session test.
	brokerScans = 150
	brokerAway  = 50
)

// TestBrokerContract runs the wire contract against each broker with the
// real daemon (a child process, so that it can be killed for its will):
// the retained birth (on an exact and a wildcard subscription), a signed
// rule set retained before the gateway connected, QoS 1 delivery of
// hundreds of scans through the inflight window (gap-free seq, every ACKed
// scan, schema-valid), a signed command and its reply, QoS 2, a '.' in a
// topic, shared subscriptions, a persistent consumer session that keeps
// what was published while it was away across a restart of the broker,
// and the will. Each broker is started once; its steps are subtests that
// build on each other, so the first to fail ends its broker's run.
func TestBrokerContract(t *testing.T) {
	bin := buildScangw(t)
	for _, k := range brokerKinds {
		t.Run(k.name, func(t *testing.T) { brokerContract(t, bin, k) })
	}
}

// brokerGateway is the daemon under test and its surroundings.
type brokerGateway struct {
	dir      string
	config   string
	httpAddr string
	lines    []*serialsim.Pty
	d        *crashDaemon
}

// status reads the daemon's /status.
func (g *brokerGateway) status(t *testing.T) statusReport {
	t.Helper()
	var st statusReport
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+g.httpAddr+"/status")), &st); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return st
}

// waitStatus polls /status until ok holds. The daemon may still be
// starting: until its HTTP server answers, that is a "not yet".
func (g *brokerGateway) waitStatus(t *testing.T, what string, ok func(statusReport) bool) statusReport {
	t.Helper()
	deadline := time.Now().Add(brokerWait)
	for {
		var st statusReport
		resp, err := http.Get("http://" + g.httpAddr + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("/status: %v", err)
			}
			if ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed %s: %+v\n%s", what, st, crashLogTail(g.d.logPath))
		}
		time.Sleep(20 * time.Millisecond) // polling the status endpoint
	}
}

// waitMetric polls /metrics until it holds want.
func (g *brokerGateway) waitMetric(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(brokerWait)
	for !strings.Contains(httpGet(t, "http://"+g.httpAddr+"/metrics"), want) {
		if time.Now().After(deadline) {
			t.Fatalf("metric %s never appeared\n%s", want, crashLogTail(g.d.logPath))
		}
		time.Sleep(20 * time.Millisecond) // polling the metrics endpoint
	}
}

// typeAll types n codes on every scanner at once, each scanner waiting for
// its ACK before the next, and returns the codes acknowledged.
func (g *brokerGateway) typeAll(t *testing.T, prefix string, n int) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for i, l := range g.lines {
		wg.Go(func() {
			typeScans(t, l, fmt.Sprintf("%s%d", prefix, i+1), n, func(code string) {
				mu.Lock()
				acked[code] = true
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if len(acked) != n*len(g.lines) {
		t.Fatalf("%d of %d %s scans acknowledged\n%s", len(acked), n*len(g.lines), prefix, crashLogTail(g.d.logPath))
	}
	return acked
}

// brokerAwait waits on a subscriber made by the broker's test from a subtest,
// failing the subtest, not the test that made the subscriber.
func brokerAwait(t *testing.T, s *brokertest.Subscriber, what string, pred func([]brokertest.Message) bool) {
	t.Helper()
	if !s.Await(brokerWait, pred) {
		t.Fatalf("timed out after %v waiting for %s\n%s", brokerWait, what, s.Summary())
	}
}

// brokerStatus is a status event's data and the retained flag it came
// with.
type brokerStatus struct {
	wire.Status
	retained bool
}

// brokerStatusEvents returns the status events among msgs, after checking each
// against the schema.
func brokerStatusEvents(t *testing.T, msgs []brokertest.Message) []brokerStatus {
	t.Helper()
	var out []brokerStatus
	for _, m := range msgs {
		if m.Topic != e2eTopics.Status {
			continue
		}
		if err := schema.CheckMessage(e2eTopics, m.Topic, m.Payload); err != nil {
			t.Fatalf("status message: %v\n%s", err, m.Payload)
		}
		var ev struct{ Data wire.Status }
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, brokerStatus{ev.Data, m.Retained})
	}
	return out
}

// brokerHasStatus holds once a status event of state came, retained if asked.
func brokerHasStatus(t *testing.T, state string, retained bool) func([]brokertest.Message) bool {
	return func(ms []brokertest.Message) bool {
		for _, s := range brokerStatusEvents(t, ms) {
			if s.State == state && (s.retained || !retained) {
				return true
			}
		}
		return false
	}
}

// brokerReply is the part of a reply event the test looks at.
type brokerReply struct {
	Data struct {
		ID     string          `json:"id"`
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *wire.Error     `json:"error"`
	} `json:"data"`
}

// brokerReplyTo returns the reply to command id among msgs.
func brokerReplyTo(t *testing.T, msgs []brokertest.Message, id string) (brokerReply, bool) {
	t.Helper()
	for _, m := range msgs {
		var r brokerReply
		if json.Unmarshal(m.Payload, &r) == nil && r.Data.ID == id {
			if err := schema.CheckMessage(e2eTopics, m.Topic, m.Payload); err != nil {
				t.Fatalf("reply: %v\n%s", err, m.Payload)
			}
			return r, true
		}
	}
	return brokerReply{}, false
}

// brokerScanRaws returns the raw codes of the scan events among msgs.
func brokerScanRaws(msgs []brokertest.Message) map[string]bool {
	got := map[string]bool{}
	for _, m := range msgs {
		var ev e2eScan
		if json.Unmarshal(m.Payload, &ev) == nil && ev.Type == wire.ScanType {
			got[ev.Data.Raw] = true
		}
	}
	return got
}

func brokerHasAll(codes map[string]bool) func([]brokertest.Message) bool {
	return func(ms []brokertest.Message) bool {
		got := brokerScanRaws(ms)
		for c := range codes {
			if !got[c] {
				return false
			}
		}
		return true
	}
}

func brokerContract(t *testing.T, bin string, k brokerKind) {
	started := time.Now()
	b := k.start(t)
	t.Logf("%s up in %v", k.name, time.Since(started).Round(time.Millisecond))

	rulesPub, rulesPriv, _ := ed25519.GenerateKey(rand.Reader)
	cmdPub, cmdPriv, _ := ed25519.GenerateKey(rand.Reader)
	central := brokertest.Connect(t, b, "central-pub")
	// Offered before the gateway exists: it must get it as the retained
	// message of its subscription.
	env, err := rules.Sign(ruleSet(8, "plant-t"), rulesPriv)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Publish(t, central, e2eTopics.SiteRules, 1, true, env)

	events := brokertest.Subscribe(t, b, "central-events", e2eTopics.Base+"/scans/#")
	status := brokertest.Subscribe(t, b, "central-status", e2eTopics.Status)
	replies := brokertest.Subscribe(t, b, "central-replies", e2eTopics.Reply)

	g := &brokerGateway{dir: t.TempDir(), httpAddr: freeAddr(t)}
	for range 2 {
		l, err := serialsim.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		g.lines = append(g.lines, l)
	}
	g.config = brokerWriteConfig(t, g, b.URL(), rulesPub, cmdPub)
	g.d = crashNewDaemon(t, bin, g.config, filepath.Join(g.dir, "scangw.log"))
	g.d.start()

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			// Later steps build on this one.
			t.FailNow()
		}
	}

	step("birth_retained", func(t *testing.T) {
		brokerAwait(t, status, "the birth", brokerHasStatus(t, wire.Online, false))
		late := brokertest.Subscribe(t, b, "central-status-late", e2eTopics.Status)
		brokerAwait(t, late, "the retained birth on an exact subscription", brokerHasStatus(t, wire.Online, true))
		// The birth names the buffer the scans below come from.
		st := g.waitStatus(t, "connected", func(st statusReport) bool { return st.MQTT.Connected })
		if ev := brokerStatusEvents(t, late.Messages())[0]; ev.Epoch != st.Buffer.Epoch || ev.Instance != st.Instance {
			t.Errorf("birth %+v, want epoch %s and instance %s as /status says", ev, st.Buffer.Epoch, st.Instance)
		}
	})

	step("retained_wildcard", func(t *testing.T) {
		wild := brokertest.Subscribe(t, b, "central-wild", e2eTopics.Base+"/#")
		if k.retainedOnWildcard {
			brokerAwait(t, wild, "the retained birth on a wildcard subscription", brokerHasStatus(t, wire.Online, true))
			return
		}
		// A message published after the SUBACK comes after any retained
		// one the broker would have sent for the subscription.
		marker := e2eTopics.Base + "/probe"
		brokertest.Publish(t, central, marker, 1, false, []byte("marker"))
		brokerAwait(t, wild, "the marker", func(ms []brokertest.Message) bool {
			return len(ms) > 0 && ms[len(ms)-1].Topic == marker
		})
		for _, m := range wild.Messages() {
			if m.Retained {
				t.Fatalf("%s sent retained %s to a wildcard subscription: update brokerKinds", k.name, m.Topic)
			}
		}
		t.Logf("%s: a wildcard subscription gets no retained messages (the birth is retained on %s; subscribe to it exactly)", k.name, e2eTopics.Status)
	})

	var acked = map[string]bool{}
	step("retained_rules", func(t *testing.T) {
		g.waitMetric(t, `scangw_rules_loads_total{result="ok",source="mqtt"} 1`)
		ctx := context.Background()
		if fb, err := g.lines[0].Send(ctx, "SN-STOLEN-77", "\r\n", 20*time.Second); err != nil || fb != 0x15 {
			t.Fatalf("stolen serial under the retained rule set: feedback %#x, %v; want NAK", fb, err)
		}
		if fb, err := g.lines[0].Send(ctx, "SN-FINE-01", "\r\n", 20*time.Second); err != nil || fb != 0x06 {
			t.Fatalf("other serial under the retained rule set: feedback %#x, %v; want ACK", fb, err)
		}
		acked["SN-FINE-01"] = true
	})

	step("qos1_delivery", func(t *testing.T) {
		began := time.Now()
		for c := range g.typeAll(t, "S", brokerScans) {
			acked[c] = true
		}
		brokerAwait(t, events, "every acknowledged scan", brokerHasAll(acked))
		t.Logf("%d scans typed and delivered in %v", len(acked), time.Since(began).Round(time.Millisecond))
		checkDelivery(t, events.Messages(), acked)
	})

	step("command_reply", func(t *testing.T) {
		brokerCommand(t, central, cmdPriv, "c-status-1", 1)
		brokerAwait(t, replies, "the reply to c-status-1", func(ms []brokertest.Message) bool {
			_, ok := brokerReplyTo(t, ms, "c-status-1")
			return ok
		})
		r, _ := brokerReplyTo(t, replies.Messages(), "c-status-1")
		var res struct {
			Epoch   string `json:"epoch"`
			NextSeq uint64 `json:"next_seq"`
		}
		if err := json.Unmarshal(r.Data.Result, &res); err != nil || !r.Data.OK {
			t.Fatalf("reply %+v: want ok with the gateway's status", r.Data)
		}
		// The stolen serial is a scan too: it was stored, with its verdict.
		if st := g.status(t); res.Epoch != st.Buffer.Epoch || res.NextSeq != uint64(len(acked))+2 {
			t.Errorf("status result %s, want epoch %s and next_seq %d", r.Data.Result, st.Buffer.Epoch, len(acked)+2)
		}
	})

	step("command_qos2", func(t *testing.T) { brokerQoS2(t, b, k, central, cmdPriv, replies) })
	step("dot_in_topic", func(t *testing.T) { brokerDot(t, b, k) })
	step("shared_subscription", func(t *testing.T) { brokerShared(t, b, k) })

	// A persistent consumer session across a restart: the consumer goes
	// away; the gateway publishes while it is away, then buffers while the
	// broker is down; the consumer comes back after the restart and gets
	// both, on top of what it had.
	events.Close()
	step("session_away", func(t *testing.T) {
		for c := range g.typeAll(t, "P", brokerAway) {
			acked[c] = true
		}
		// Everything sent and acknowledged by the broker, none of it
		// received: it is in the consumer's session only.
		g.waitStatus(t, "an empty backlog", func(st statusReport) bool { return st.MQTT.Connected && st.Buffer.Backlog == 0 })
	})
	stopped := time.Now()
	b.Stop()
	t.Logf("%s stopped in %v", k.name, time.Since(stopped).Round(time.Millisecond))
	step("buffered_while_down", func(t *testing.T) {
		for c := range g.typeAll(t, "D", brokerAway) {
			acked[c] = true
		}
		if st := g.status(t); st.MQTT.Connected || st.Buffer.Backlog != int64(brokerAway*len(g.lines)) {
			t.Errorf("/status mqtt %+v backlog %d with the broker down, want disconnected with %d buffered", st.MQTT, st.Buffer.Backlog, brokerAway*len(g.lines))
		}
	})
	restarted := time.Now()
	b.Restart()
	t.Logf("%s restarted in %v", k.name, time.Since(restarted).Round(time.Millisecond))
	step("session_resumed", func(t *testing.T) {
		back := brokertest.Subscribe(t, b, "central-events", e2eTopics.Base+"/scans/#")
		brokerAwait(t, back, "the scans published while the consumer was away and while the broker was down", func(ms []brokertest.Message) bool {
			return brokerHasAll(acked)(append(events.Messages(), ms...))
		})
		checkDelivery(t, append(events.Messages(), back.Messages()...), acked)
		if got := brokerScanRaws(back.Messages()); len(got) < 2*brokerAway*len(g.lines) {
			t.Errorf("the resumed session got %d distinct scans, want at least the %d sent while it was away", len(got), 2*brokerAway*len(g.lines))
		}
	})

	step("will", func(t *testing.T) {
		brokerAwait(t, status, "the birth after the restart", func(ms []brokertest.Message) bool {
			sts := brokerStatusEvents(t, ms)
			return len(sts) > 0 && sts[len(sts)-1].State == wire.Online
		})
		online := brokerStatusEvents(t, status.Messages())
		instance := online[len(online)-1].Instance
		before := status.Count()
		if err := g.d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-g.d.done
		brokerAwait(t, status, "the will", func(ms []brokertest.Message) bool {
			return brokerHasStatus(t, wire.Offline, false)(ms[before:])
		})
		late := brokertest.Subscribe(t, b, "central-status-will", e2eTopics.Status)
		brokerAwait(t, late, "the retained will", brokerHasStatus(t, wire.Offline, true))
		if w := brokerStatusEvents(t, late.Messages())[0]; w.Instance != instance {
			t.Errorf("will of instance %s, the daemon that was killed was %s", w.Instance, instance)
		}
	})
	t.Logf("%s: the whole contract in %v", k.name, time.Since(started).Round(time.Millisecond))
}

// brokerCommand publishes a signed status command at qos from c.
func brokerCommand(t *testing.T, c mqtt.Client, key ed25519.PrivateKey, id string, qos byte) {
	t.Helper()
	signed, err := uplink.AddressCommand(fmt.Appendf(nil, `{"v":1,"id":%q,"cmd":"status"}`, id), "plant-t/gw-e2e", time.Now().Add(5*time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Publish(t, c, e2eTopics.Cmd, qos, false, signed)
}

// brokerQoS2 publishes a command at QoS 2 over a raw connection, to see
// the broker's answer on the wire (paho takes a PUBACK for a PUBREC), and
// checks what the broker makes of it; a QoS 1 command after it shows the
// gateway still answers, and that a refused QoS 2 one was not delivered.
func brokerQoS2(t *testing.T, b brokertest.Broker, k brokerKind, central mqtt.Client, key ed25519.PrivateKey, replies *brokertest.Subscriber) {
	signed, err := uplink.AddressCommand([]byte(`{"v":1,"id":"c-qos2","cmd":"status"}`), "plant-t/gw-e2e", time.Now().Add(5*time.Minute), key)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := brokerPublishQoS2(strings.TrimPrefix(b.URL(), "tcp://"), "central-qos2", e2eTopics.Cmd, signed)
	brokerCommand(t, central, key, "c-after-qos2", 1)
	brokerAwait(t, replies, "the reply to the QoS 1 command after the QoS 2 one", func(ms []brokertest.Message) bool {
		_, ok := brokerReplyTo(t, ms, "c-after-qos2")
		return ok
	})
	gotReply := func(ms []brokertest.Message) bool {
		_, ok := brokerReplyTo(t, ms, "c-qos2")
		return ok
	}
	switch k.qos2 {
	case qos2Delivered:
		if err != nil || answer != "PUBREC PUBCOMP" {
			t.Fatalf("QoS 2 publish: broker answered %q (%v), want PUBREC, then PUBCOMP for our PUBREL", answer, err)
		}
		brokerAwait(t, replies, "the reply to the QoS 2 command", gotReply)
	case qos2Refused:
		if answer != "" || err == nil {
			t.Fatalf("QoS 2 publish: broker answered %q (%v), want the connection closed: update brokerKinds", answer, err)
		}
		if !strings.Contains(b.Log(), k.qos2Log) {
			t.Errorf("%s's log lacks %q", k.name, k.qos2Log)
		}
		if gotReply(replies.Messages()) {
			t.Errorf("the refused QoS 2 command reached the gateway")
		}
		t.Logf("%s: answers a QoS 2 PUBLISH by closing the connection (%v), logging %q", k.name, err, k.qos2Log)
	case qos2AsQoS1:
		if err != nil || answer != "PUBACK" {
			t.Fatalf("QoS 2 publish: broker answered %q (%v), want a PUBACK: update brokerKinds", answer, err)
		}
		brokerAwait(t, replies, "the reply to the QoS 2 command", gotReply)
		t.Logf("%s: answers a QoS 2 PUBLISH with a PUBACK (QoS 1's), not a PUBREC, and delivers it", k.name)
	}
}

// brokerPublishQoS2 connects to addr over plain TCP, publishes payload at QoS 2
// and returns the broker's answers: "PUBREC PUBCOMP" (a PUBREL sent in
// between) for a broker that speaks QoS 2, or whatever packet it sent
// instead, with the read error where it closed the connection.
func brokerPublishQoS2(addr, clientID, topic string, payload []byte) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	packet := func(header byte, body []byte) []byte {
		p := []byte{header}
		// MQTT 3.1.1, 2.2.3: the remaining length, 7 bits a byte.
		for n := len(body); ; {
			d := byte(n % 128)
			if n /= 128; n > 0 {
				d |= 0x80
			}
			p = append(p, d)
			if n == 0 {
				break
			}
		}
		return append(p, body...)
	}
	r := bufio.NewReader(conn)
	read := func() (byte, error) {
		h, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n, shift := 0, 0
		for {
			d, err := r.ReadByte()
			if err != nil {
				return 0, err
			}
			n |= int(d&0x7f) << shift
			if d&0x80 == 0 {
				break
			}
			shift += 7
		}
		_, err = io.CopyN(io.Discard, r, int64(n))
		return h >> 4, err
	}
	names := map[byte]string{2: "CONNACK", 4: "PUBACK", 5: "PUBREC", 7: "PUBCOMP"}
	connect := append(append(str("MQTT"), 4, 0x02, 0, 30), str(clientID)...)
	if _, err := conn.Write(packet(0x10, connect)); err != nil {
		return "", err
	}
	if typ, err := read(); err != nil || typ != 2 {
		return "", fmt.Errorf("no CONNACK (packet type %d): %v", typ, err)
	}
	const id = 1
	if _, err := conn.Write(packet(0x34, append(append(str(topic), 0, id), payload...))); err != nil {
		return "", err
	}
	var got []string
	typ, err := read()
	if err != nil {
		return "", err
	}
	got = append(got, names[typ])
	if typ == 5 {
		if _, err := conn.Write(packet(0x62, []byte{0, id})); err != nil {
			return strings.Join(got, " "), err
		}
		typ, err = read()
		if err != nil {
			return strings.Join(got, " "), err
		}
		got = append(got, names[typ])
	}
	return strings.Join(got, " "), nil
}

// brokerDot publishes on a topic of the gateway's shape for a station
// "dock.2", under a prefix of its own, and checks what a subscriber gets.
func brokerDot(t *testing.T, b brokertest.Broker, k brokerKind) {
	topic := "probe/v1/plant-t/gw-e2e/scans/dock.2"
	sub := brokertest.Subscribe(t, b, "central-dot-sub", "probe/#")
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("central-dot").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(brokerWait) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Publish(topic, 1, false, []byte("dot"))
	done := tok.WaitTimeout(10 * time.Second)
	switch k.dot {
	case dotVerbatim, dotSplit:
		if !done || tok.Error() != nil {
			t.Fatalf("publish to %s: completed %v, error %v", topic, done, tok.Error())
		}
		want := topic
		if k.dot == dotSplit {
			want = strings.ReplaceAll(topic, ".", "/")
		}
		brokerAwait(t, sub, "the message", func(ms []brokertest.Message) bool { return len(ms) > 0 })
		if got := sub.Messages()[0].Topic; got != want {
			t.Fatalf("published to %s, received on %s, want %s: update brokerKinds", topic, got, want)
		}
		if k.dot == dotSplit {
			t.Logf("%s: a '.' in a topic arrives as '/': %s was received as %s", k.name, topic, want)
		}
	case dotRefused:
		if done && tok.Error() == nil {
			t.Fatalf("publish to %s completed: %s now takes a '.', update brokerKinds", topic, k.name)
		}
		if !strings.Contains(b.Log(), k.dotLog) {
			t.Errorf("%s's log lacks %q", k.name, k.dotLog)
		}
		if n := sub.Count(); n != 0 {
			t.Errorf("the refused publish reached a subscriber")
		}
		t.Logf("%s: closes the connection of a client publishing to %s (publish error: %v; log: %q)", k.name, topic, tok.Error(), k.dotLog)
	}
}

// brokerShared subscribes one client to $share/central/probe/share/# and
// to a marker topic, both at QoS 0, and publishes a message the shared
// subscription matches and then the marker. One publisher's messages to
// one QoS 0 subscriber keep their order on every broker here (QoS 1 ones
// need not on NATS: each QoS 1 subscription is a JetStream consumer of
// its own), so once the marker is in, so is the message if the broker
// routed it to the shared subscription.
func brokerShared(t *testing.T, b brokertest.Broker, k brokerKind) {
	var mu sync.Mutex
	var topics []string
	in := make(chan struct{}, 16)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("central-share").
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			topics = append(topics, m.Topic())
			mu.Unlock()
			in <- struct{}{}
		}))
	if tok := c.Connect(); !tok.WaitTimeout(brokerWait) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	const shared, marker = "$share/central/probe/share/#", "probe/marker"
	tok := c.SubscribeMultiple(map[string]byte{shared: 0, marker: 0}, nil)
	if !tok.WaitTimeout(brokerWait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// paho keys the result by the filter without its $share/<group>/.
	if codes := tok.(*mqtt.SubscribeToken).Result(); codes["probe/share/#"] != 0 || codes[marker] != 0 {
		t.Fatalf("SUBACK %v, want both granted at QoS 0", codes)
	}
	pub := brokertest.Connect(t, b, "central-share-pub")
	brokertest.Publish(t, pub, "probe/share/x", 1, false, []byte("x"))
	brokertest.Publish(t, pub, marker, 1, false, []byte("marker"))
	timer := time.NewTimer(brokerWait)
	defer timer.Stop()
	for {
		mu.Lock()
		got := append([]string(nil), topics...)
		mu.Unlock()
		if slices.Contains(got, marker) {
			delivered := slices.Contains(got, "probe/share/x")
			switch {
			case delivered != k.sharedSubs:
				t.Fatalf("received %v: shared subscriptions work %v, brokerKinds says %v", got, delivered, k.sharedSubs)
			case !delivered:
				t.Logf("%s: grants %s but delivers nothing to it (a filter of that literal name)", k.name, shared)
			}
			return
		}
		select {
		case <-in:
		case <-timer.C:
			t.Fatalf("the marker never arrived; received %v", got)
		}
	}
}

// brokerWriteConfig writes the daemon's config: the e2e tests' gateway
// and station (so checkDelivery applies), two scanners, a small inflight
// window, signed rule sets and commands.
func brokerWriteConfig(t *testing.T, g *brokerGateway, brokerURL string, rulesPub, cmdPub ed25519.PublicKey) string {
	t.Helper()
	var scanners strings.Builder
	for i, l := range g.lines {
		fmt.Fprintf(&scanners, `
      - {id: h%d, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, i+1, l.Path())
	}
	yaml := fmt.Sprintf(`gateway: {id: gw-e2e, site: plant-t}
buffer:  {dir: %q}
mqtt:
  broker: %q
  topic_prefix: scangw/v1
  reconnect_min: 20ms
  reconnect_max: 300ms
  keepalive: 5s
  inflight: 8
  command_keys: [%q]
http:    {listen: %q}
log:     {level: info}
rules:   {keys: [%q]}
stations:
  - id: dock-1
    mode: receive
    scanners:%s
`, filepath.Join(g.dir, "buffer"), brokerURL, base64.StdEncoding.EncodeToString(cmdPub), g.httpAddr,
		base64.StdEncoding.EncodeToString(rulesPub), scanners.String())
	path := filepath.Join(g.dir, "scangw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := configs.Load(path); err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return path
}
