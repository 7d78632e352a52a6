package uplink

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// MQTT 3.1.1 control packet types (section 2.2.1).
const (
	packetPublish = 3
	packetPuback  = 4
)

// readPacket reads one MQTT control packet: the fixed header (type and
// flags, then the remaining length as a varint of up to four bytes,
// section 2.2.3) and the rest. It returns the raw bytes and the part after
// the fixed header.
func readPacket(r *bufio.Reader) (raw, body []byte, err error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, nil, err
	}
	raw = append(raw, first)
	var length, shift int
	for i := 0; ; i++ {
		if i == 4 {
			return nil, nil, errors.New("malformed remaining length")
		}
		b, err := r.ReadByte()
		if err != nil {
			return nil, nil, err
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
	if _, err := io.ReadFull(r, raw[head:]); err != nil {
		return nil, nil, err
	}
	return raw, raw[head:], nil
}

// parsePublish splits a PUBLISH packet (section 3.3) into topic, packet id
// (0 at QoS 0) and payload.
func parsePublish(first byte, body []byte) (topic string, id uint16, payload []byte, err error) {
	if len(body) < 2 {
		return "", 0, nil, errors.New("short PUBLISH")
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	if len(rest) < n {
		return "", 0, nil, errors.New("short PUBLISH topic")
	}
	topic, rest = string(rest[:n]), rest[n:]
	if qos := (first >> 1) & 3; qos > 0 {
		if len(rest) < 2 {
			return "", 0, nil, errors.New("PUBLISH without packet id")
		}
		id, rest = binary.BigEndian.Uint16(rest), rest[2:]
	}
	return topic, id, rest, nil
}

// cutProxy forwards TCP between the gateway and the broker, reading just
// enough MQTT to follow scan PUBLISHes and their PUBACKs. On every
// cutEvery-th scan PUBACK from the broker it closes both sides instead of
// forwarding it: the broker has the message, the gateway never learns so.
type cutProxy struct {
	ln       net.Listener
	target   string
	cutEvery int
	wg       sync.WaitGroup

	mu          sync.Mutex
	conns       map[*proxyConn]bool
	accepted    int
	scanPubacks int             // scan PUBACKs the broker sent
	cuts        int             // connections cut instead of forwarding one
	maxInflight int             // most scan PUBLISHes outstanding on one connection
	pubacked    map[uint64]bool // seqs whose PUBACK was passed to the gateway
	lastCut     time.Time
	maxGap      time.Duration // longest time from a cut to the gateway's next connection
	errs        []error
}

func startCutProxy(t testing.TB, target string, cutEvery int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cutEvery: cutEvery, conns: map[*proxyConn]bool{}, pubacked: map[uint64]bool{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's address in paho's form.
func (p *cutProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cutProxy) acceptLoop() {
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
		c := &proxyConn{p: p, client: client, broker: broker, outstanding: map[uint16]uint64{}}
		p.mu.Lock()
		p.conns[c] = true
		p.accepted++
		if !p.lastCut.IsZero() {
			p.maxGap = max(p.maxGap, time.Since(p.lastCut))
			p.lastCut = time.Time{}
		}
		p.mu.Unlock()
		p.wg.Add(2)
		go c.up()
		go c.down()
	}
}

func (p *cutProxy) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// wasPubacked reports whether a PUBACK for seq reached the gateway.
func (p *cutProxy) wasPubacked(seq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pubacked[seq]
}

type proxyConn struct {
	p              *cutProxy
	client, broker net.Conn
	closeOnce      sync.Once
	// outstanding maps packet ids of scan PUBLISHes forwarded to the
	// broker and not yet PUBACKed to their seq; guarded by p.mu.
	outstanding map[uint16]uint64
}

func (c *proxyConn) close() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.broker.Close()
	})
}

// up forwards gateway → broker, noting each scan PUBLISH before the broker
// can answer it.
func (c *proxyConn) up() {
	defer c.p.wg.Done()
	defer c.close()
	r := bufio.NewReader(c.client)
	for {
		raw, body, err := readPacket(r)
		if err != nil {
			return
		}
		if raw[0]>>4 == packetPublish {
			topic, id, payload, err := parsePublish(raw[0], body)
			if err != nil {
				c.p.fail(err)
				return
			}
			if topic == scanTopic && id != 0 {
				seq, err := seqOf(payload)
				if err != nil {
					c.p.fail(err)
					return
				}
				c.p.mu.Lock()
				c.outstanding[id] = seq
				c.p.maxInflight = max(c.p.maxInflight, len(c.outstanding))
				c.p.mu.Unlock()
			}
		}
		if _, err := c.broker.Write(raw); err != nil {
			return
		}
	}
}

// down forwards broker → gateway, cutting the link in place of every
// cutEvery-th scan PUBACK.
func (c *proxyConn) down() {
	defer c.p.wg.Done()
	defer c.close()
	r := bufio.NewReader(c.broker)
	for {
		raw, body, err := readPacket(r)
		if err != nil {
			return
		}
		if raw[0]>>4 == packetPuback && len(body) == 2 {
			id := binary.BigEndian.Uint16(body)
			c.p.mu.Lock()
			seq, scan := c.outstanding[id]
			if scan {
				delete(c.outstanding, id)
				c.p.scanPubacks++
				if c.p.scanPubacks%c.p.cutEvery == 0 {
					c.p.cuts++
					c.p.lastCut = time.Now()
					c.p.mu.Unlock()
					return // closes both sides; this PUBACK is never sent
				}
				// Recorded before it is sent, so the gateway cannot ack
				// seq before the proxy knows.
				c.p.pubacked[seq] = true
			}
			c.p.mu.Unlock()
		}
		if _, err := c.client.Write(raw); err != nil {
			return
		}
	}
}

// TestLinkCutBeforePuback cuts the connection many times between a PUBLISH
// reaching the broker and its PUBACK reaching the gateway. The gateway must
// delete only what a PUBACK reached it for, resend the rest, and so deliver
// every scan in order; meanwhile it keeps more than one publish in flight.
// It runs on the real buffer: delete-on-PUBACK is the buffer's contract
// with the uplink.
func TestLinkCutBeforePuback(t *testing.T) {
	t.Parallel()
	const (
		backlog, live = 1000, 1000
		cutEvery      = 53
		minCuts       = 10
	)
	br := mosquittotest.Start(t, mosquittotest.Options{})
	// The subscriber talks to the broker directly: only the gateway's
	// link is cut.
	sub := mosquittotest.Subscribe(t, br, "sub-cut", scanFilter)
	proxy := startCutProxy(t, br.Addr(), cutEvery)
	buf := openBuffer(t)
	mustAppend(t, buf, backlog)

	q := &checkedQueue{testQueue: buf, check: func(seq uint64) error {
		if !proxy.wasPubacked(seq) {
			return fmt.Errorf("Ack(%d) without a PUBACK for it reaching the gateway", seq)
		}
		return nil
	}}
	cfg := testConfig(proxy.URL(), buf)
	cfg.Inflight = 20
	_, reg, stop := runUplink(t, cfg, q)
	mustAppend(t, buf, live)

	var got arrivals
	got.waitAll(t, sub, backlog+live, deliveryTimeout)
	got.check(t, backlog+live)
	drained(t, buf, 10*time.Second)
	stop()
	q.verify(t, backlog+live)

	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	for _, err := range proxy.errs {
		t.Errorf("proxy: %v", err)
	}
	t.Logf("%d connections, %d scan PUBACKs, %d cut, longest cut to reconnect %v; max %d scans in flight; %d duplicate deliveries, %d duplicate acks, %v publish failures",
		proxy.accepted, proxy.scanPubacks, proxy.cuts, proxy.maxGap.Round(time.Millisecond), proxy.maxInflight, got.dups, q.dupAcks,
		metricValue(t, reg, "scangw_mqtt_publish_failures_total"))
	if proxy.cuts < minCuts {
		t.Errorf("only %d cuts, want at least %d", proxy.cuts, minCuts)
	}
	if proxy.maxInflight <= 1 || proxy.maxInflight > cfg.Inflight {
		t.Errorf("at most %d scans were in flight at once, want 2..%d (Inflight)", proxy.maxInflight, cfg.Inflight)
	}
	if got.dups == 0 {
		t.Error("no duplicates: the broker had every cut message, so the resend should have delivered it again")
	}
}
