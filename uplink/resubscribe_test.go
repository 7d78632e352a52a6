package uplink

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// subackProxy forwards TCP between the gateway and the broker and, in the
// first SUBACK of each connection, turns every grant into a refusal
// (0x80), as a NATS node that took a session over before its JetStream
// state recovered does.
type subackProxy struct {
	ln     net.Listener
	target string
}

func startSubackProxy(t *testing.T, target string) *subackProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &subackProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(b, c); b.Close() }()
			go func() {
				defer c.Close()
				r := bufio.NewReader(b)
				refused := false
				for {
					raw, body, err := readPacket(r)
					if err != nil {
						return
					}
					if raw[0]>>4 == 9 && !refused { // SUBACK: packet id, then a code per topic
						refused = true
						for i := 2; i < len(body); i++ {
							body[i] = 0x80
						}
					}
					if _, err := c.Write(raw); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *subackProxy) URL() string { return "tcp://" + p.ln.Addr().String() }

// TestRefusedSubscriptionAskedAgain: a broker that refuses the command
// subscription at connect (a NATS node still recovering in a cluster
// failover; here a proxy that rewrites the first SUBACK) is asked again
// during the session, and once it grants it, commands arrive without a
// reconnect.
func TestRefusedSubscriptionAskedAgain(t *testing.T) {
	// Read by New only; not parallel: package state.
	resubscribeMin, resubscribeMax = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { resubscribeMin, resubscribeMax = 5*time.Second, 5*time.Minute })
	br := mosquittotest.Start(t, mosquittotest.Options{})
	proxy := startSubackProxy(t, br.Addr())
	replies := mosquittotest.Subscribe(t, br, "sub-replies", "t/site1/gw1/reply")
	send := sender(t, br, "central")
	buf := newMemQueue()
	log, logs := captureLogger(t)
	u, reg, _ := runUplinkLog(t, testConfig(proxy.URL(), buf), buf, log)
	waitUntil(t, 10*time.Second, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), "broker refused a subscription") && strings.Contains(logs.String(), "t/site1/gw1/cmd")
	})
	waitUntil(t, 10*time.Second, "the subscription granted on asking again", func() bool {
		return strings.Contains(logs.String(), "broker granted a subscription it had refused")
	})
	send("t/site1/gw1/cmd", []byte(`{"v":1,"id":"c-after","cmd":"ping"}`), false)
	if r := nextReply(t, replies, 0); r.Data.ID != "c-after" || !r.Data.OK {
		t.Fatalf("reply %+v", r.Data)
	}
	if n := metricValue(t, reg, "scangw_mqtt_reconnects_total"); n != 0 || !u.Connected() {
		t.Fatalf("%v reconnects: the subscription must come back within the session", n)
	}
}
