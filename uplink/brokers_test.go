package uplink

import (
	"net"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// TestBrokersFailover gives the uplink three addresses of "one cluster":
// the first refuses connections, so it goes on to the second; when that
// one stops, to the third, where everything the second did not
// acknowledge is sent again, in order. Each subscriber sees a gap-free
// run; together they hold every scan.
func TestBrokersFailover(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused

	b1 := mosquittotest.Start(t, mosquittotest.Options{})
	b2 := mosquittotest.Start(t, mosquittotest.Options{})
	s1 := mosquittotest.Subscribe(t, b1, "sub-1", scanFilter)
	s2 := mosquittotest.Subscribe(t, b2, "sub-2", scanFilter)
	buf := newMemQueue()
	q := &checkedQueue{testQueue: buf}
	cfg := testConfig("", buf)
	cfg.Brokers = []string{dead, b1.URL(), b2.URL()}
	u, reg, stop := runUplink(t, cfg, q)
	defer stop()

	waitUntil(t, 10*time.Second, "connected past the dead address", u.Connected)
	if u.Broker() != b1.URL() {
		t.Fatalf("on %s, want the second address %s", u.Broker(), b1.URL())
	}
	if v := metricValue(t, reg, "scangw_mqtt_broker", "url", b1.URL()); v != 1 {
		t.Fatalf("scangw_mqtt_broker{url=%s} = %v", b1.URL(), v)
	}
	mustAppend(t, buf, 500)
	var first arrivals
	first.waitAll(t, s1, 500, deliveryTimeout)
	first.check(t, 500)

	b1.Stop()
	mustAppend(t, buf, 500) // queued while it moves on
	waitUntil(t, 20*time.Second, "connected to the third address", func() bool { return u.Connected() && u.Broker() == b2.URL() })
	// The third broker gets everything not acknowledged by the second:
	// the 500 new scans at least, from the oldest unacknowledged on.
	var second arrivals
	s2.WaitFor(deliveryTimeout, "the scans queued during the switch", func(ms []mosquittotest.Message) bool {
		second.fold(ms)
		return len(second.seen) > 0 && second.seen[1000]
	})
	lo := second.first[0]
	for i, seq := range second.first {
		if seq != lo+uint64(i) {
			t.Fatalf("after the switch, first arrival #%d is seq %d: not in order from %d", i, seq, lo)
		}
	}
	if lo > 501 {
		t.Fatalf("the third broker's run starts at seq %d: scans %d..%d were acknowledged by nobody", lo, 501, lo-1)
	}
	drained(t, buf, 10*time.Second)
	q.verify(t, 1000)
	if v := metricValue(t, reg, "scangw_mqtt_broker", "url", b1.URL()); v != 0 {
		t.Errorf("the stopped broker still marked in use: %v", v)
	}
}
