package brokertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const (
	// natsReadyTimeout bounds a cluster's start: routes, a JetStream meta
	// leader, and the MQTT streams, which the first MQTT client of an
	// account creates (seconds in a cluster: replicated on every node).
	natsReadyTimeout = 60 * time.Second
	natsStopTimeout  = 15 * time.Second
)

// NATSCluster is a cluster of nats-server nodes run for one test, with
// JetStream and an MQTT listener on every node. An MQTT client may connect
// to any node: the sessions, retained messages and QoS 1 messages live in
// JetStream streams replicated on every node (mqtt.stream_replicas and
// consumer_replicas equal to the cluster size), so a node may die without
// losing what it acknowledged.
//
// As a [Broker] the cluster is all its nodes: URL is the first node's
// listener, Stop, Restart and Kill act on every node. Node gives one node,
// itself a Broker, to take down alone.
type NATSCluster struct {
	t     testing.TB
	bin   string
	nodes []*NATSNode
}

// NATSNode is one nats-server process of a NATSCluster.
type NATSNode struct {
	c    *NATSCluster
	name string
	dir  string
	// client, route, monitor and mqtt ports, fixed once the cluster runs.
	client, route, monitor, mqttPort int

	mu       sync.Mutex
	proc     *process // nil while stopped
	logStart int64    // where the current run's output begins
}

// Mosquitto is not alone.
var _, _ Broker = (*NATSCluster)(nil), (*NATSNode)(nil)

// StartNATSCluster starts a cluster of n nats-server nodes (3 makes every
// stream survive the loss of one node; 1 is a single server) on free
// loopback ports, waits until it has a JetStream meta leader, every node
// reports itself healthy and every node serves MQTT, and stops it when the
// test ends. A missing nats-server fails the test.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("brokertest: a NATS cluster of %d nodes", n)
	}
	bin, err := findBinary("nats-server", "nats-server", "/usr/sbin", "/usr/local/sbin")
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	c := &NATSCluster{t: t, bin: bin}
	dir := t.TempDir()
	for i := range n {
		nd := &NATSNode{c: c, name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		if err := os.Mkdir(nd.dir, 0o700); err != nil {
			t.Fatalf("brokertest: %v", err)
		}
		c.nodes = append(c.nodes, nd)
	}
	// After t.TempDir, so it runs first: no node may write into a
	// directory being removed.
	t.Cleanup(c.cleanup)

	started := time.Now()
	var lastErr error
	for range startAttempts {
		if lastErr = c.start(); lastErr == nil {
			break
		}
		for _, nd := range c.nodes {
			nd.mu.Lock()
			if nd.proc != nil {
				nd.proc.kill()
				nd.proc = nil
			}
			nd.mu.Unlock()
		}
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("brokertest: start a NATS cluster of %d: %v\n%s", n, lastErr, indent(tail(c.Log(), 8000)))
	}
	t.Logf("brokertest: NATS cluster of %d up in %v (MQTT on %s)", n, time.Since(started).Round(time.Millisecond), strings.Join(c.URLs(), ", "))
	return c
}

// start picks ports, writes the configs and runs every node until the
// cluster is ready.
func (c *NATSCluster) start() error {
	ports, err := freePorts(4 * len(c.nodes))
	if err != nil {
		return err
	}
	for i, nd := range c.nodes {
		nd.client, nd.route, nd.monitor, nd.mqttPort = ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(nd.confPath(), []byte(nd.config()), 0o600); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	for _, nd := range c.nodes {
		if err := nd.launch(); err != nil {
			return err
		}
	}
	return c.waitReady(c.nodes)
}

// waitReady waits until every node in nodes is healthy, sees a meta
// leader in a cluster of the full size, and serves MQTT.
func (c *NATSCluster) waitReady(nodes []*NATSNode) error {
	deadline := time.Now().Add(natsReadyTimeout)
	for _, nd := range nodes {
		if err := nd.waitHealthy(deadline); err != nil {
			return err
		}
	}
	for _, nd := range nodes {
		if err := nd.waitMQTT(deadline); err != nil {
			return err
		}
	}
	return nil
}

// URL returns the first node's MQTT URL.
func (c *NATSCluster) URL() string { return c.nodes[0].URL() }

// URLs returns every node's MQTT URL, in node order: a gateway's
// mqtt.brokers.
func (c *NATSCluster) URLs() []string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, nd.URL())
	}
	return urls
}

// Nodes returns the cluster's nodes.
func (c *NATSCluster) Nodes() []*NATSNode { return c.nodes }

// Node returns node i (from 0).
func (c *NATSCluster) Node(i int) *NATSNode { return c.nodes[i] }

// NodeOf returns the node whose MQTT URL is url, nil if none is.
func (c *NATSCluster) NodeOf(url string) *NATSNode {
	for _, nd := range c.nodes {
		if nd.URL() == url {
			return nd
		}
	}
	return nil
}

// Stop stops every node with SIGTERM and waits for them.
func (c *NATSCluster) Stop() {
	c.t.Helper()
	for _, nd := range c.nodes {
		nd.Stop()
	}
}

// Restart stops every node that runs, starts them all again on their
// ports and stores, and returns once the cluster is ready again.
func (c *NATSCluster) Restart() {
	c.t.Helper()
	c.Stop()
	stopped := time.Now()
	for _, nd := range c.nodes {
		if err := nd.launch(); err != nil {
			c.t.Fatalf("brokertest: restart %s: %v", nd.name, err)
		}
	}
	if err := c.waitReady(c.nodes); err != nil {
		c.t.Fatalf("brokertest: restart the NATS cluster: %v\n%s", err, indent(tail(c.Log(), 8000)))
	}
	c.t.Logf("brokertest: NATS cluster ready again %v after its restart", time.Since(stopped).Round(time.Millisecond))
}

// Kill kills every node with SIGKILL.
func (c *NATSCluster) Kill() {
	c.t.Helper()
	for _, nd := range c.nodes {
		nd.Kill()
	}
}

// Log returns every node's log, each under its name.
func (c *NATSCluster) Log() string {
	var b strings.Builder
	for _, nd := range c.nodes {
		fmt.Fprintf(&b, "--- nats-server %s ---\n%s\n", nd.name, nd.Log())
	}
	return b.String()
}

// ClientNode returns the node an MQTT client with this id is connected
// to, from the nodes' connection monitoring (connz), nil if none has it.
// Stopped nodes are left out.
func (c *NATSCluster) ClientNode(clientID string) *NATSNode {
	for _, nd := range c.nodes {
		if nd.running() && nd.HasClient(clientID) {
			return nd
		}
	}
	return nil
}

func (c *NATSCluster) cleanup() {
	for _, nd := range c.nodes {
		nd.mu.Lock()
		nd.stopLocked()
		nd.mu.Unlock()
	}
}

// Name returns the node's server name (n1, n2, ...).
func (nd *NATSNode) Name() string { return nd.name }

// URL returns the node's MQTT URL, tcp://127.0.0.1:port.
func (nd *NATSNode) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(nd.mqttPort) }

// MonitorURL returns the base URL of the node's HTTP monitoring
// (/varz, /jsz, /connz, /healthz).
func (nd *NATSNode) MonitorURL() string { return "http://127.0.0.1:" + strconv.Itoa(nd.monitor) }

func (nd *NATSNode) confPath() string { return filepath.Join(nd.dir, "nats.conf") }
func (nd *NATSNode) outPath() string  { return filepath.Join(nd.dir, "nats.log") }

func (nd *NATSNode) config() string {
	var routes []string
	for _, o := range nd.c.nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.route))
	}
	replicas := len(nd.c.nodes)
	var b strings.Builder
	b.WriteString("# Generated by brokertest.\n")
	// MQTT needs a server name and JetStream: its sessions, retained
	// messages and QoS 1 messages are streams.
	fmt.Fprintf(&b, "server_name: %s\n", nd.name)
	fmt.Fprintf(&b, "listen: 127.0.0.1:%d\n", nd.client)
	fmt.Fprintf(&b, "http: 127.0.0.1:%d\n", nd.monitor)
	// Small limits: three nodes share one test machine, and JetStream
	// otherwise claims most of its memory and disk as its own.
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: 256MB\n  max_file_store: 2GB\n}\n", filepath.Join(nd.dir, "store"))
	if len(nd.c.nodes) > 1 {
		fmt.Fprintf(&b, "cluster {\n  name: brokertest\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", nd.route, strings.Join(routes, ", "))
	}
	// stream_replicas takes effect when the MQTT streams are created, on
	// the first MQTT connection of the account; consumer_replicas makes a
	// persistent session's subscriptions (durable consumers) replicated
	// too, so they also survive the loss of a node.
	fmt.Fprintf(&b, "mqtt {\n  listen: 127.0.0.1:%d\n  stream_replicas: %d\n  consumer_replicas: %d\n}\n", nd.mqttPort, replicas, replicas)
	return b.String()
}

// launch runs the node once, without waiting for it.
func (nd *NATSNode) launch() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.launchLocked()
}

func (nd *NATSNode) launchLocked() error {
	nd.logStart = fileSize(nd.outPath())
	p, err := launch(exec.Command(nd.c.bin, "-c", nd.confPath()), nd.outPath())
	if err != nil {
		return err
	}
	nd.proc = p
	return nil
}

// waitHealthy polls the node's monitoring until /healthz says its
// JetStream and streams are current and /jsz names a meta leader of the
// whole cluster. /healthz alone answers ok for a moment before JetStream
// is up.
//
// A node restarted after SIGKILL may keep failing /healthz for a long
// time (over a minute, nats-server 2.9.10) because a replica of a consumer
// that sees no traffic, such as another node's $MQTT_rmsgs_<node>, stays
// "not current" until something moves it; it serves MQTT meanwhile. So a
// consumer's lag does not hold up readiness here, the streams' does.
func (nd *NATSNode) waitHealthy(deadline time.Time) error {
	nd.mu.Lock()
	p, logStart := nd.proc, nd.logStart
	nd.mu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	var why string
	for {
		if p.exited() {
			if strings.Contains(fileFrom(nd.outPath(), logStart), "address already in use") {
				return fmt.Errorf("%s: %w", nd.name, errAddrInUse)
			}
			return fmt.Errorf("%s exited during start-up (%v)", nd.name, p.err)
		}
		why = nd.health(client)
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %s", nd.name, natsReadyTimeout, why)
		}
		time.Sleep(pollInterval) // polling the node's monitoring endpoint
	}
}

// health returns why the node is not ready yet, "" when it is.
func (nd *NATSNode) health(client *http.Client) string {
	var health struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	resp, err := client.Get(nd.MonitorURL() + "/healthz")
	if err != nil {
		return err.Error()
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	// The checks run in order, meta group, streams, consumers, and the
	// first to fail is the one reported.
	if err != nil || resp.StatusCode != http.StatusOK && !strings.HasPrefix(health.Error, "JetStream consumer ") {
		return fmt.Sprintf("/healthz: %s %s", resp.Status, health.Error)
	}
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
			Size   int    `json:"cluster_size"`
		} `json:"meta_cluster"`
	}
	if err := getJSON(client, nd.MonitorURL()+"/jsz", &jsz); err != nil {
		return err.Error()
	}
	switch {
	case len(nd.c.nodes) == 1:
		return "" // a single server has no meta group
	case jsz.Meta == nil || jsz.Meta.Leader == "":
		return "no JetStream meta leader yet"
	case jsz.Meta.Size != len(nd.c.nodes):
		return fmt.Sprintf("JetStream meta group of %d, want %d", jsz.Meta.Size, len(nd.c.nodes))
	}
	return ""
}

// waitMQTT connects an MQTT client to the node until it gets a CONNACK:
// the first one of the cluster creates the MQTT streams, which takes
// seconds, and a test's own clients should not pay for it.
func (nd *NATSNode) waitMQTT(deadline time.Time) error {
	var err error
	for time.Now().Before(deadline) {
		c := mqtt.NewClient(mqtt.NewClientOptions().
			AddBroker(nd.URL()).
			SetClientID("brokertest-ready-" + nd.name).
			SetAutoReconnect(false).
			SetConnectTimeout(time.Until(deadline)))
		tok := c.Connect()
		if tok.WaitTimeout(time.Until(deadline)) && tok.Error() == nil {
			c.Disconnect(0)
			return nil
		}
		err = tok.Error()
		time.Sleep(pollInterval) // the listener may not be up yet
	}
	return fmt.Errorf("%s: no MQTT CONNACK within %v: %v", nd.name, natsReadyTimeout, err)
}

// HasClient reports whether an MQTT client with this id is connected to
// the node, from its connection monitoring.
func (nd *NATSNode) HasClient(clientID string) bool {
	var connz struct {
		Conns []struct {
			MQTTClient string `json:"mqtt_client"`
		} `json:"connections"`
	}
	u := nd.MonitorURL() + "/connz?mqtt_client=" + url.QueryEscape(clientID)
	if err := getJSON(&http.Client{Timeout: 2 * time.Second}, u, &connz); err != nil {
		return false
	}
	for _, cn := range connz.Conns {
		if cn.MQTTClient == clientID {
			return true
		}
	}
	return false
}

func getJSON(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (nd *NATSNode) running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc != nil && !nd.proc.exited()
}

// Stop stops the node with SIGTERM, which flushes its JetStream store, and
// waits for it to exit. It does nothing to a stopped node.
func (nd *NATSNode) Stop() {
	nd.c.t.Helper()
	nd.mu.Lock()
	defer nd.mu.Unlock()
	nd.stopLocked()
}

func (nd *NATSNode) stopLocked() {
	nd.c.t.Helper()
	p := nd.proc
	if p == nil {
		return
	}
	nd.proc = nil
	if p.exited() {
		nd.c.t.Errorf("brokertest: nats-server %s exited unexpectedly (%v)\n%s", nd.name, p.err, indent(tail(nd.Log(), 4000)))
		return
	}
	p.signal(syscall.SIGTERM)
	if !p.wait(natsStopTimeout) {
		p.kill()
		nd.c.t.Errorf("brokertest: nats-server %s ignored SIGTERM for %v and was killed\n%s", nd.name, natsStopTimeout, indent(tail(nd.Log(), 4000)))
	}
}

// Restart starts the node again on its ports and store, stopping it first
// if it runs, and returns once it is back in the cluster: healthy, current
// with the meta leader and serving MQTT.
func (nd *NATSNode) Restart() {
	nd.c.t.Helper()
	began := time.Now()
	nd.Stop()
	deadline := time.Now().Add(restartBindTimeout)
	for {
		err := nd.launch()
		if err == nil {
			err = nd.c.waitReady([]*NATSNode{nd})
		}
		if err == nil {
			break
		}
		nd.mu.Lock()
		if nd.proc != nil {
			nd.proc.kill()
			nd.proc = nil
		}
		nd.mu.Unlock()
		// Clients know these ports: wait for whoever took one to let go.
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			nd.c.t.Fatalf("brokertest: restart nats-server %s: %v\n%s", nd.name, err, indent(tail(nd.c.Log(), 8000)))
		}
		time.Sleep(pollInterval) // waiting for the port to be free
	}
	nd.c.t.Logf("brokertest: nats-server %s restarted in %v", nd.name, time.Since(began).Round(time.Millisecond))
}

// Kill kills the node with SIGKILL and waits for it to exit; its store
// stays for Restart. The others go on without it.
func (nd *NATSNode) Kill() {
	nd.c.t.Helper()
	nd.mu.Lock()
	defer nd.mu.Unlock()
	p := nd.proc
	if p == nil {
		return
	}
	nd.proc = nil
	if p.exited() {
		nd.c.t.Errorf("brokertest: nats-server %s exited unexpectedly (%v)\n%s", nd.name, p.err, indent(tail(nd.Log(), 4000)))
		return
	}
	p.kill()
}

// Log returns the node's log across its runs.
func (nd *NATSNode) Log() string { return readFile(nd.outPath()) }
