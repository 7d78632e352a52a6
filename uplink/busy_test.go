package uplink

import (
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// holdingQueue is a queue whose Peek can be made to block, like a buffer
// read that never returns.
type holdingQueue struct {
	testQueue
	mu      sync.Mutex
	hold    chan struct{} // non-nil: the next Peek blocks until it is closed
	holding chan struct{} // closed once a Peek blocks
}

func (q *holdingQueue) Peek(from uint64, max int) ([]Message, error) {
	q.mu.Lock()
	hold, holding := q.hold, q.holding
	q.hold = nil
	q.mu.Unlock()
	if hold != nil {
		close(holding)
		<-hold
	}
	return q.testQueue.Peek(from, max)
}

// holdNext makes the next Peek block; it returns a channel closed once it
// does, and the function that lets it go on.
func (q *holdingQueue) holdNext() (holding <-chan struct{}, release func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	hold := make(chan struct{})
	q.hold, q.holding = hold, make(chan struct{})
	return q.holding, sync.OnceFunc(func() { close(hold) })
}

// TestBusyOnlyWhileReadingTheQueue: an idle uplink, and one whose window
// is full because the broker stopped answering, are not busy; a queue
// read that does not return is, with one time for as long as it lasts.
func TestBusyOnlyWhileReadingTheQueue(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	buf := newMemQueue()
	q := &holdingQueue{testQueue: buf}
	cfg := testConfig(br.URL(), buf)
	cfg.Inflight = 5
	u, reg, _ := runUplink(t, cfg, q)
	waitUntil(t, 10*time.Second, "connected", u.Connected)
	mustAppend(t, buf, 3)
	drained(t, buf, 10*time.Second)
	waitUntil(t, 5*time.Second, "Busy to be zero with nothing to send", func() bool { return u.Busy().IsZero() })

	// A frozen broker: the window fills and the pump waits for PUBACKs.
	br.Pause()
	mustAppend(t, buf, 2*cfg.Inflight)
	waitUntil(t, 10*time.Second, "the window to fill", func() bool {
		return metricValue(t, reg, "scangw_mqtt_inflight_messages") == float64(cfg.Inflight)
	})
	if b := u.Busy(); !b.IsZero() {
		t.Fatalf("Busy = %v while the window waits for the broker, want zero: an outage is no wedge", b)
	}
	br.Resume()
	drained(t, buf, 20*time.Second)

	holding, release := q.holdNext()
	defer release()
	mustAppend(t, buf, 1)
	<-holding
	first := u.Busy()
	if first.IsZero() {
		t.Fatal("Busy is zero while a queue read is in progress")
	}
	if again := u.Busy(); !again.Equal(first) {
		t.Fatalf("Busy moved from %v to %v within one read", first, again)
	}
	release()
	drained(t, buf, 10*time.Second)
	waitUntil(t, 5*time.Second, "Busy to be zero after the read", func() bool { return u.Busy().IsZero() })
}
