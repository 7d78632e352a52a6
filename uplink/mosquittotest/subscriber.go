package mosquittotest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const (
	connectTimeout   = 15 * time.Second
	subscribeTimeout = 15 * time.Second
	// reconnectInterval caps paho's reconnect backoff (1 s doubling by
	// default), so a subscriber is back soon after a restart.
	reconnectInterval = 100 * time.Millisecond
)

// Message is one message a Subscriber received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	// QoS is the QoS it was delivered at: the lower of the publisher's
	// and the subscription's (1).
	QoS byte
}

// Source is a broker a Subscriber connects to: its MQTT address, and its
// log for failure messages. *Broker is one; uplink/brokertest's are too.
type Source interface {
	URL() string
	Log() string
}

// Subscriber collects, in arrival order, every message a persistent QoS 1
// subscription receives, from Mosquitto or any other broker (Source).
type Subscriber struct {
	t      testing.TB
	broker Source
	id     string
	filter string
	client mqtt.Client

	mu         sync.Mutex
	msgs       []Message     // append-only: elements are never modified
	changed    chan struct{} // closed and replaced on every change below
	subscribed int           // SUBACKs granted, one per (re)connect
	connLost   int
	lastErr    error
	closed     bool
}

// Subscribe connects a paho client to b with the fixed clientID and clean
// session off, subscribes it to filter at QoS 1 and returns once the broker
// has granted the subscription. The client reconnects by itself when the
// broker goes away and subscribes again on every connect; the broker keeps
// its session (and what it queued meanwhile) if it keeps sessions across a
// restart, which is what the tests check. A new SUBSCRIBE makes a broker
// resend retained messages, so those may arrive again after a reconnect.
// Messages queued for the session may arrive before the SUBACK; they are
// collected too. The client disconnects when the test ends, or at Close.
func Subscribe(t testing.TB, b Source, clientID, filter string) *Subscriber {
	t.Helper()
	s := &Subscriber{t: t, broker: b, id: clientID, filter: filter, changed: make(chan struct{})}
	opts := mqtt.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(clientID).
		SetCleanSession(false).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(reconnectInterval).
		// A broker may refuse connections for a while, e.g. a NATS
		// cluster electing new stream leaders after losing a node.
		SetConnectRetry(true).
		SetConnectRetryInterval(reconnectInterval).
		SetConnectTimeout(connectTimeout).
		// Deliver to the handler one at a time in arrival order; the
		// handler only appends, so it never holds up the connection.
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.onMessage).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(s.onConnectionLost)
	s.client = mqtt.NewClient(opts)
	t.Cleanup(s.Close)

	tok := s.client.Connect()
	if !tok.WaitTimeout(connectTimeout) {
		t.Fatalf("subscriber %q: connect to %s: no CONNACK within %v\n%s", clientID, b.URL(), connectTimeout, s.brokerReport())
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("subscriber %q: connect to %s: %v\n%s", clientID, b.URL(), err, s.brokerReport())
	}
	// Return only once subscribed, so the test's first publish is not lost.
	s.waitSubscribed(1, subscribeTimeout)
	return s
}

// Close disconnects the client cleanly. With clean session off the broker
// keeps the session: a later Subscribe with the same client id resumes it
// and gets what was published meanwhile.
func (s *Subscriber) Close() {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		s.client.Disconnect(250)
	}
}

// onConnect subscribes on every connect. It runs in its own goroutine, so
// it may wait for the SUBACK.
func (s *Subscriber) onConnect(c mqtt.Client) {
	tok := c.Subscribe(s.filter, 1, nil)
	var err error
	switch {
	case !tok.WaitTimeout(subscribeTimeout):
		err = fmt.Errorf("subscribe %q: no SUBACK within %v", s.filter, subscribeTimeout)
	case tok.Error() != nil:
		err = fmt.Errorf("subscribe %q: %w", s.filter, tok.Error())
	default:
		// 0x80 is the MQTT 3.1.1 SUBACK failure code (section 3.9.3).
		if code := tok.(*mqtt.SubscribeToken).Result()[s.filter]; code > 2 {
			err = fmt.Errorf("subscribe %q: broker refused it (SUBACK code %#x)", s.filter, code)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// Usually the broker went away again; the next connect retries.
		s.lastErr = err
	} else {
		s.subscribed++
	}
	s.notifyLocked()
}

func (s *Subscriber) onConnectionLost(_ mqtt.Client, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connLost++
	s.lastErr = fmt.Errorf("connection lost: %w", err)
	s.notifyLocked()
}

func (s *Subscriber) onMessage(_ mqtt.Client, m mqtt.Message) {
	msg := Message{Topic: m.Topic(), Payload: bytes.Clone(m.Payload()), Retained: m.Retained(), QoS: m.Qos()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg)
	s.notifyLocked()
}

func (s *Subscriber) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Messages returns a copy of the messages received so far.
func (s *Subscriber) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count returns how many messages have been received so far.
func (s *Subscriber) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitFor waits until pred holds for the messages received so far, checking
// again on each new message, and fails the test with a summary once timeout
// passes. what names the condition in that message. pred must not modify or
// keep the slice it is given.
func (s *Subscriber) WaitFor(timeout time.Duration, what string, pred func([]Message) bool) {
	s.t.Helper()
	if !s.Await(timeout, pred) {
		s.t.Fatalf("subscriber %q: timed out after %v waiting for %s\n%s", s.id, timeout, what, s.Summary())
	}
}

// Await is WaitFor that reports whether pred came to hold instead of
// failing the test: for a subtest, which must not fail the test that
// made the subscriber, and for a test that expects a message not to come.
func (s *Subscriber) Await(timeout time.Duration, pred func([]Message) bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		msgs, changed := s.snapshot()
		if pred(msgs) {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			msgs, _ := s.snapshot()
			return pred(msgs)
		}
	}
}

// WaitCount waits until at least n messages have been received.
func (s *Subscriber) WaitCount(n int, timeout time.Duration) {
	s.t.Helper()
	s.WaitFor(timeout, fmt.Sprintf("%d messages", n), func(m []Message) bool { return len(m) >= n })
}

// waitSubscribed waits until the broker has granted n subscriptions, that
// is, the client has (re)subscribed after n connects.
func (s *Subscriber) waitSubscribed(n int, timeout time.Duration) {
	s.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		done, changed := s.subscribed >= n, s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			s.t.Fatalf("subscriber %q: timed out after %v waiting for subscription %d to %q\n%s", s.id, timeout, n, s.filter, s.Summary())
		}
	}
}

// snapshot returns the messages so far without copying them: msgs is
// append-only, so elements below the current length never change, and the
// capped capacity keeps a caller's append from touching the shared array.
func (s *Subscriber) snapshot() ([]Message, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.msgs)
	return s.msgs[:n:n], s.changed
}

// Summary describes the subscriber, what it received and its broker, for
// the failure message of a test that waited with Await.
func (s *Subscriber) Summary() string {
	s.mu.Lock()
	msgs := s.msgs[:len(s.msgs):len(s.msgs)]
	subscribed, connLost, lastErr := s.subscribed, s.connLost, s.lastErr
	s.mu.Unlock()

	var b strings.Builder
	fmt.Fprintf(&b, "received %d messages; subscribed %d times; lost the connection %d times; connected now: %v; last error: %v\n",
		len(msgs), subscribed, connLost, s.client.IsConnectionOpen(), lastErr)
	const show = 3
	for i, m := range msgs {
		if i == show && len(msgs) > 2*show {
			fmt.Fprintf(&b, "\t... %d more ...\n", len(msgs)-2*show)
		}
		if i >= show && i < len(msgs)-show {
			continue
		}
		fmt.Fprintf(&b, "\t#%d %s retained=%v %q\n", i, m.Topic, m.Retained, abbreviate(m.Payload, 80))
	}
	b.WriteString(s.brokerReport())
	return b.String()
}

func (s *Subscriber) brokerReport() string {
	if b, ok := s.broker.(*Broker); ok {
		return fmt.Sprintf("broker on %s is %s; log:\n%s", b.Addr(), b.state(), b.logReport())
	}
	log := s.broker.Log()
	if len(log) > 6000 {
		log = "..." + log[len(log)-6000:]
	}
	return fmt.Sprintf("broker %s; log (end):\n%s", s.broker.URL(), log)
}

func abbreviate(p []byte, n int) string {
	if len(p) <= n {
		return string(p)
	}
	return string(p[:n]) + "..."
}
