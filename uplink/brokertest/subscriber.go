package brokertest

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

const (
	connectTimeout = 15 * time.Second
	// reconnectInterval caps paho's reconnect backoff (1 s doubling by
	// default), so a client is back soon after a restart.
	reconnectInterval = 100 * time.Millisecond
)

// Subscriber is mosquittotest's, which works with any Broker.
type Subscriber = mosquittotest.Subscriber

// Subscribe subscribes to filter on b (mosquittotest.Subscribe).
func Subscribe(t testing.TB, b Broker, clientID, filter string) *Subscriber {
	t.Helper()
	return mosquittotest.Subscribe(t, b, clientID, filter)
}

// Connect returns a paho client connected to b with a clean session and
// the given id, for a test's publishes; it disconnects when the test ends.
func Connect(t testing.TB, b Broker, clientID string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().
		AddBroker(b.URL()).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(reconnectInterval).
		SetConnectRetry(true).
		SetConnectRetryInterval(reconnectInterval).
		SetConnectTimeout(connectTimeout))
	t.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Connect(); !tok.WaitTimeout(connectTimeout) || tok.Error() != nil {
		t.Fatalf("brokertest: connect %q to %s: %v\n%s", clientID, b.URL(), tok.Error(), indent(tail(b.Log(), 6000)))
	}
	return c
}

// Publish publishes one message from c and waits for the broker's
// acknowledgement (PUBACK at QoS 1), failing the test if none comes.
func Publish(t testing.TB, c mqtt.Client, topic string, qos byte, retained bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(connectTimeout) {
		t.Fatalf("brokertest: publish to %s: no acknowledgement within %v", topic, connectTimeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("brokertest: publish to %s: %v", topic, err)
	}
}
