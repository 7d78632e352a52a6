// Package uplink owns the MQTT session to the central broker: it connects,
// announces the gateway, and publishes the durable queue in order, deleting
// a message only once the broker acknowledged it.
//
// # Why not paho's own reconnect and session
//
// paho.mqtt.golang can report a publish token as complete after a reconnect
// without the message having been delivered (paho issues #563, #458, PR
// #565). So every connection is a fresh client with CleanSession=true and
// AutoReconnect=false: a token can then only succeed on a PUBACK received on
// the connection its PUBLISH went out on, and every token of a lost
// connection fails. The uplink reconnects by itself, with backoff, and after
// each reconnect resends everything still in the queue from its oldest
// unacknowledged message. Delivery is at least once; consumers deduplicate
// by event id.
//
// # The window
//
// Up to Inflight QoS 1 publishes are outstanding at once (paho has no limit
// of its own). They complete in FIFO order in the collector, which acks each
// to the queue; a failed token ends the session, and the next one resends.
package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
)

// Queue is what the uplink needs from the durable buffer.
type Queue interface {
	// Peek returns up to max unacknowledged messages from queue position
	// from on, in order.
	Peek(from uint64, max int) ([]buffer.Entry, error)
	// Ack marks the message at a queue position delivered.
	Ack(pos uint64)
	// Appended is signalled after new messages were stored.
	Appended() <-chan struct{}
}

// Config configures the uplink.
type Config struct {
	Broker         string // tcp://host:port
	ClientID       string
	Inflight       int
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
	ReconnectMin   time.Duration
	ReconnectMax   time.Duration

	// StatusTopic gets the retained birth and will.
	StatusTopic string
	// Online makes the birth payload at each connect; Offline the will and
	// the clean-shutdown payload.
	Online, Offline func() []byte
}

// Uplink publishes a Queue to an MQTT broker.
type Uplink struct {
	cfg       Config
	q         Queue
	log       *slog.Logger
	m         *metrics
	connected atomic.Bool
}

// New makes an uplink; reg receives its metrics.
func New(cfg Config, q Queue, log *slog.Logger, reg prometheus.Registerer) *Uplink {
	if cfg.Inflight <= 0 {
		cfg.Inflight = 20
	}
	return &Uplink{cfg: cfg, q: q, log: log, m: newMetrics(reg)}
}

// Connected reports whether a session is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// Run keeps a session to the broker until ctx ends, reconnecting with
// exponential backoff and full jitter (so a broker restart does not meet a
// fleet of gateways in the same second). It returns nil when ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	failures := 0
	var lastWarn time.Time
	for {
		upFor, err := u.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// Only a session that stayed up resets the backoff: a broker that
		// accepts and then drops the gateway at once (an ACL, another
		// gateway with the same client id) must not be hammered.
		if upFor >= stableSession {
			failures = 0
		}
		failures++
		wait := backoff(u.cfg.ReconnectMin, u.cfg.ReconnectMax, failures)
		// One warning per outage, then a reminder every few minutes: a
		// broker down for hours must not flood the journal.
		if failures == 1 || time.Since(lastWarn) >= 5*time.Minute {
			u.log.Warn("mqtt session ended; reconnecting", "err", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
			lastWarn = time.Now()
		} else {
			u.log.Debug("mqtt reconnect failed", "err", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// stableSession is how long a session must last for the reconnect backoff
// to start again from its minimum.
const stableSession = 30 * time.Second

// backoff is "full jitter": uniform in [min, min(max, min·2^(n-1))].
func backoff(lo, hi time.Duration, n int) time.Duration {
	// Compare against hi shifted down: lo shifted up overflows once
	// lo·2^(n-1) passes 2^63 ns (lo above ~8.6 s by n = 31), and the
	// wrapped value could land anywhere below hi.
	ceil := hi
	if shift := max(n-1, 0); lo > 0 && shift < 63 && lo <= hi>>shift {
		ceil = lo << shift
	}
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo)
}

type inflight struct {
	pos  uint64 // queue position
	tok  mqtt.Token
	sent time.Time
}

// session runs one connection and reports how long it was up (0 if it
// never connected).
func (u *Uplink) session(ctx context.Context) (upFor time.Duration, err error) {
	lost := make(chan error, 1)
	opts := mqtt.NewClientOptions().
		AddBroker(u.cfg.Broker).
		SetClientID(u.cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetProtocolVersion(4). // MQTT 3.1.1 only: no silent 3.1 retry doubling each attempt
		SetKeepAlive(u.cfg.KeepAlive).
		SetPingTimeout(u.cfg.KeepAlive/2+time.Second).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.WriteTimeout).
		SetBinaryWill(u.cfg.StatusTopic, u.cfg.Offline(), 1, true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	if err := wait(ctx, c.Connect(), u.cfg.ConnectTimeout+time.Second); err != nil {
		u.m.connectFailures.Inc()
		c.Disconnect(0)
		return 0, fmt.Errorf("connect %s: %w", u.cfg.Broker, err)
	}
	defer c.Disconnect(250)
	if err := wait(ctx, c.Publish(u.cfg.StatusTopic, 1, true, u.cfg.Online()), u.cfg.WriteTimeout); err != nil {
		return 0, fmt.Errorf("publish birth: %w", err)
	}
	connected := time.Now()
	u.log.Info("mqtt connected", "broker", u.cfg.Broker, "client_id", u.cfg.ClientID)
	u.connected.Store(true)
	u.m.connected.Set(1)
	defer func() {
		u.connected.Store(false)
		u.m.connected.Set(0)
		u.m.inflight.Set(0)
	}()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-lost:
			cancel(fmt.Errorf("connection lost: %w", err))
		case <-sctx.Done():
		}
	}()

	slots := make(chan struct{}, u.cfg.Inflight)
	pending := make(chan inflight, u.cfg.Inflight)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		u.collect(sctx, cancel, slots, pending)
	}()
	err = u.pump(sctx, c, slots, pending)
	cancel(err)
	<-collected
	if ctx.Err() != nil {
		// A will is not sent on DISCONNECT: say offline ourselves.
		if c.IsConnected() {
			wait(context.Background(), c.Publish(u.cfg.StatusTopic, 1, true, u.cfg.Offline()), time.Second)
		}
		return time.Since(connected), nil
	}
	return time.Since(connected), context.Cause(sctx)
}

// pump publishes the queue in order, holding at most Inflight unacked.
func (u *Uplink) pump(ctx context.Context, c mqtt.Client, slots chan struct{}, pending chan<- inflight) error {
	var cursor uint64 // 0: from the oldest unacknowledged message
	for {
		batch, err := u.q.Peek(cursor, u.cfg.Inflight)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-u.q.Appended():
				continue
			}
		}
		for _, e := range batch {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			u.m.inflight.Set(float64(len(slots)))
			tok, err := publish(ctx, c, e)
			if err != nil {
				return err
			}
			pending <- inflight{pos: e.Pos, tok: tok, sent: time.Now()}
			cursor = e.Pos + 1
		}
	}
}

// publish hands one message to paho without letting a dying connection
// hold the session: paho's Publish can block for the whole write timeout
// on its outbound queue when the link drops under it, ignoring ctx, and the
// next session could not start until it returned. The abandoned call ends
// by itself within the write timeout; its token fails and is never acked.
func publish(ctx context.Context, c mqtt.Client, e buffer.Entry) (mqtt.Token, error) {
	done := make(chan mqtt.Token, 1)
	go func() { done <- c.Publish(e.Topic, 1, false, e.Payload) }()
	select {
	case tok := <-done:
		return tok, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// collect waits for the window's tokens in order and acks each delivered
// message. Any failure ends the session: what was not acked is resent on the
// next connection.
func (u *Uplink) collect(ctx context.Context, fail context.CancelCauseFunc, slots chan struct{}, pending <-chan inflight) {
	for {
		var f inflight
		select {
		case f = <-pending:
		case <-ctx.Done():
			return
		}
		select {
		case <-f.tok.Done():
		case <-ctx.Done():
			// paho fails every token of a lost or closed connection, so a
			// token still open here is never acked.
			return
		}
		if err := f.tok.Error(); err != nil {
			u.m.publishFailures.Inc()
			fail(fmt.Errorf("publish queue position %d: %w", f.pos, err))
			return
		}
		u.q.Ack(f.pos)
		u.m.published.Inc()
		u.m.latency.Observe(time.Since(f.sent).Seconds())
		<-slots
		u.m.inflight.Set(float64(len(slots)))
	}
}

// wait waits for a paho token, ctx, or the timeout.
func wait(ctx context.Context, t mqtt.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("timed out")
	}
}

type metrics struct {
	connected       prometheus.Gauge
	connectFailures prometheus.Counter
	published       prometheus.Counter
	publishFailures prometheus.Counter
	inflight        prometheus.Gauge
	latency         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_connected",
			Help: "1 while the MQTT session is up.",
		}),
		connectFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_connect_failures_total",
			Help: "Connection attempts that failed.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_published_total",
			Help: "Queued messages acknowledged by the broker (PUBACK) and deleted.",
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_publish_failures_total",
			Help: "Publishes that failed; each ends the session and is resent.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_inflight_messages",
			Help: "QoS 1 publishes sent and not yet acknowledged.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scangw_mqtt_publish_latency_seconds",
			Help:    "Time from PUBLISH sent to PUBACK received.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
	}
	reg.MustRegister(m.connected, m.connectFailures, m.published, m.publishFailures, m.inflight, m.latency)
	return m
}
