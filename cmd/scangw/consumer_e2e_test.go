package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/consumer"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// lossyProxy sits between a gateway and the broker and loses exactly one
// scan: the first PUBLISH of the scan with seq drop. It loses it the way
// a broker does that acknowledges a message and then loses it (a crash
// between autosaves, a queue limit, an ACL's silent drop): it answers
// the gateway with a PUBACK and forwards nothing. The gateway, holding a
// PUBACK, deletes the scan from its queue and never sends it again by
// itself — unlike a PUBLISH merely dropped (the gateway would resend it
// after the missing PUBACK cut the session) or a lost PUBACK (the broker
// already has it). Only the central side can notice the hole in seq, and
// only a "resend" from the gateway's audit window fills it.
type lossyProxy struct {
	ln     net.Listener
	target string
	drop   uint64
	topic  string // the scans topic whose seq is watched
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   []net.Conn
	dropped int // PUBLISHes of seq drop swallowed
	seen    int // PUBLISHes of seq drop seen in all
	errs    []error
}

func startLossyProxy(t *testing.T, target, topic string, drop uint64) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, target: target, drop: drop, topic: topic}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *lossyProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *lossyProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *lossyProxy) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

func (p *lossyProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		broker, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			p.fail(fmt.Errorf("dial broker: %w", err))
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, broker)
		p.mu.Unlock()
		// Both directions write to the gateway: the broker's packets and
		// the fake PUBACK. Whole packets under one lock keep them apart.
		var toClient sync.Mutex
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer client.Close()
			defer broker.Close()
			p.up(client, broker, &toClient)
		}()
		go func() {
			defer p.wg.Done()
			defer client.Close()
			defer broker.Close()
			r := bufio.NewReader(broker)
			for {
				raw, err := readMQTTPacket(r)
				if err != nil {
					return
				}
				toClient.Lock()
				_, err = client.Write(raw)
				toClient.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

// up forwards gateway → broker, swallowing the one PUBLISH.
func (p *lossyProxy) up(client, broker net.Conn, toClient *sync.Mutex) {
	r := bufio.NewReader(client)
	for {
		raw, err := readMQTTPacket(r)
		if err != nil {
			return
		}
		// PUBLISH is type 3 (MQTT 3.1.1 section 2.2.1); QoS in bits 1-2.
		if raw[0]>>4 == 3 && (raw[0]>>1)&3 == 1 {
			topic, id, payload, err := splitPublish(raw)
			if err != nil {
				p.fail(err)
				return
			}
			var ev struct {
				Data struct{ Seq uint64 } `json:"data"`
			}
			if topic == p.topic && json.Unmarshal(payload, &ev) == nil && ev.Data.Seq == p.drop {
				p.mu.Lock()
				p.seen++
				swallow := p.dropped == 0
				if swallow {
					p.dropped++
				}
				p.mu.Unlock()
				if swallow {
					toClient.Lock()
					_, err := client.Write([]byte{4 << 4, 2, byte(id >> 8), byte(id)}) // PUBACK
					toClient.Unlock()
					if err != nil {
						return
					}
					continue
				}
			}
		}
		if _, err := broker.Write(raw); err != nil {
			return
		}
	}
}

// readMQTTPacket reads one MQTT control packet whole: the fixed header
// (a type byte, then the remaining length in up to four 7-bit groups,
// section 2.2.3) and what follows.
func readMQTTPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	raw := []byte{first}
	length, shift := 0, 0
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("malformed remaining length")
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
		length |= int(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			break
		}
	}
	head := len(raw)
	raw = append(raw, make([]byte, length)...)
	_, err = io.ReadFull(r, raw[head:])
	return raw, err
}

// splitPublish splits a QoS 1 PUBLISH (section 3.3) into topic, packet id
// and payload.
func splitPublish(raw []byte) (string, uint16, []byte, error) {
	i := 1
	for raw[i]&0x80 != 0 {
		i++
	}
	body := raw[i+1:]
	if len(body) < 2 {
		return "", 0, nil, errors.New("short PUBLISH")
	}
	n := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+n+2 {
		return "", 0, nil, errors.New("short PUBLISH topic or packet id")
	}
	return string(body[2 : 2+n]), binary.BigEndian.Uint16(body[2+n:]), body[2+n+2:], nil
}

// TestConsumerRepairsGapThroughResend: a message lost after the broker's
// acknowledgement is noticed by the consumer, asked for with a signed
// resend, sent again by the gateway from its audit window, and the gap
// closes: every seq reaches OnEvent exactly once.
func TestConsumerRepairsGapThroughResend(t *testing.T) {
	const (
		n    = 10
		drop = 3
	)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	topics := wire.TopicsFor("scangw/v1", "plant-t", "gw-e2e")
	scanTopic := topics.Of(wire.ScanStream("dock-1"))
	// Independent witnesses on the broker: what reached it, the commands,
	// the gateway's replies.
	atBroker := mosquittotest.Subscribe(t, broker, "witness-scans", scanTopic)
	cmds := mosquittotest.Subscribe(t, broker, "witness-cmd", topics.Cmd)
	replies := mosquittotest.Subscribe(t, broker, "witness-reply", topics.Reply)
	proxy := startLossyProxy(t, broker.Addr(), scanTopic, drop)

	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []consumer.Event
	var gaps []consumer.Gap
	c, err := consumer.New(consumer.Config{
		Broker: broker.URL(), ClientID: "central-e2e", SignKey: priv,
		// A second request would need the first's reply to take twice
		// this long; the test expects one.
		ResendAfter: time.Second,
		OnEvent: func(e consumer.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		},
		OnGap: func(g consumer.Gap) {
			mu.Lock()
			defer mu.Unlock()
			gaps = append(gaps, g)
			t.Logf("gap %d-%d %s (asks %d)", g.From, g.To, g.State, g.Asks)
		},
		Log: slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	// The consumer has subscribed once it refuses a message on its
	// topics; until then the gateway must not start.
	prober := newTailGateway(t, broker)
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Refused == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the consumer never subscribed")
		}
		prober.publish("scangw/v1/probe/gw/status", []byte("not an event"))
		time.Sleep(20 * time.Millisecond) // polling for the consumer's subscription
	}

	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-e2e, site: plant-t}
buffer:  {dir: %q, audit_window: 1h}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms, keepalive: 5s, command_keys: [%q]}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: dock-1
    mode: receive
    scanners:
      - {id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}
`, t.TempDir(), proxy.URL(), base64.StdEncoding.EncodeToString(pub), freeAddr(t), line.Path())))
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg)
	typeScans(t, line, "R", n, func(string) {})

	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(events)
		closed := slices.ContainsFunc(gaps, func(g consumer.Gap) bool { return g.State == consumer.GapClosed })
		mu.Unlock()
		if got >= n && closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d events, gaps %+v; consumer %+v", got, gaps, c.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling the consumer's progress
	}
	stop()

	proxy.mu.Lock()
	for _, err := range proxy.errs {
		t.Errorf("proxy: %v", err)
	}
	if proxy.dropped != 1 || proxy.seen != 2 {
		t.Errorf("the proxy saw seq %d %d times and dropped it %d times, want 2 and 1 (the original and the resend)", drop, proxy.seen, proxy.dropped)
	}
	proxy.mu.Unlock()

	mu.Lock()
	defer mu.Unlock()
	// Every seq once, the lost one after the one that showed its loss
	// (how much later depends on how fast the scans were typed).
	var seqs []uint64
	ids := map[string]bool{}
	for _, e := range events {
		seqs = append(seqs, e.Seq)
		ids[e.ID] = true
	}
	if !isPermutation(seqs, n) || len(ids) != n || slices.Index(seqs, drop) < slices.Index(seqs, drop+1) {
		t.Errorf("OnEvent got seqs %v (%d ids), want 1..%d each once, %d after %d", seqs, len(ids), n, drop, drop+1)
	}
	var states []string
	for _, g := range gaps {
		if g.From != drop || g.To != drop {
			t.Errorf("gap %+v, want %d-%d", g, drop, drop)
		}
		states = append(states, g.State.String())
	}
	if !slices.Equal(states, []string{"open", "asked", "closed"}) {
		t.Errorf("gap went %v, want open, asked, closed", states)
	}
	st := c.Stats()
	if st.Resends != 1 || cmds.Count() != 1 || st.OpenGaps != 0 || st.LostGaps != 0 {
		t.Errorf("consumer %+v, %d commands on the broker; want one resend and no gap left", st, cmds.Count())
	}
	var reply struct {
		Data struct {
			OK     bool
			Result struct{ Requeued int }
		}
	}
	replies.WaitCount(1, 10*time.Second)
	if err := json.Unmarshal(replies.Messages()[0].Payload, &reply); err != nil || !reply.Data.OK || reply.Data.Result.Requeued != 1 {
		t.Errorf("gateway replied %s, want ok with requeued 1", replies.Messages()[0].Payload)
	}
	// The broker itself had seq 3 only after the command: the gap was
	// real, and the gateway repaired it only when asked.
	var atCmd int
	for i, m := range atBroker.Messages() {
		var ev struct{ Data struct{ Seq uint64 } }
		json.Unmarshal(m.Payload, &ev)
		if ev.Data.Seq == drop {
			atCmd = i
		}
	}
	if n3 := countSeq(atBroker.Messages(), drop); n3 != 1 || atCmd < drop {
		t.Errorf("the broker got seq %d %d times, as message %d; want once, after %d and the ones past it", drop, n3, atCmd+1, drop-1)
	}
}

// isPermutation reports whether seqs holds 1..n, each once.
func isPermutation(seqs []uint64, n int) bool {
	s := slices.Sorted(slices.Values(seqs))
	for i, v := range s {
		if v != uint64(i+1) {
			return false
		}
	}
	return len(s) == n
}

func countSeq(msgs []mosquittotest.Message, seq uint64) int {
	k := 0
	for _, m := range msgs {
		var ev struct{ Data struct{ Seq uint64 } }
		if json.Unmarshal(m.Payload, &ev) == nil && ev.Data.Seq == seq {
			k++
		}
	}
	return k
}
