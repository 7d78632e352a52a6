package uplink

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
)

// Message is one queued message.
type Message struct {
	// Pos is the message's queue position: the handle to Ack it by.
	Pos  uint64
	Time time.Time // when it was queued
	// Stream is where it goes (wire.Topics.Of).
	Stream  string
	Payload []byte
}

// Queue is what the uplink sends from: the durable buffer.
type Queue interface {
	// Peek returns up to max unacknowledged messages from queue position
	// from on, in order.
	Peek(from uint64, max int) ([]Message, error)
	// Ack marks the message at a queue position delivered. Acks may come
	// out of order (a poison message is skipped, not acked).
	Ack(pos uint64)
	// Appended is signalled after new messages were stored.
	Appended() <-chan struct{}
}

// Backlog is what heartbeats, the birth and the status command report of
// the queue.
type Backlog interface {
	Depth() int64
	Oldest() (time.Time, bool)
	// Epoch names the buffer's life; seq restarts with a new one.
	Epoch() string
	NextSeq() uint64
}

// Resender puts delivered events back in the queue (the resend command):
// those of epoch ("" for the current one) with from <= seq <= to (to 0:
// no upper bound). An error wrapping errors.ErrUnsupported means no
// delivered events are kept.
type Resender interface {
	Resend(ctx context.Context, epoch string, from, to uint64) (int, error)
}

// Stations is what the station commands and heartbeats need of the
// gateway's stations (station.Set). Errors a command caused are
// *wire.Error with the code to reply with.
type Stations interface {
	// Status reports station id, or every station when id is "".
	Status(id string) ([]wire.StationStatus, error)
	SetMode(ctx context.Context, id, mode string) (wire.StationStatus, error)
	SetContext(ctx context.Context, id string, c map[string]string) (wire.StationStatus, error)
}

// CommandFunc carries out a command another part registered
// (Config.Commands): station is the command's "station" ("" for none),
// args its raw args. An error that is a *wire.Error is answered with its
// code.
type CommandFunc func(ctx context.Context, station string, args json.RawMessage) (any, error)

// StateStore keeps small values durably.
type StateStore interface {
	// LoadState returns the value saved under key, or an error wrapping
	// fs.ErrNotExist when there is none.
	LoadState(key string) ([]byte, error)
	// SaveState stores value under key and returns once it is on disk.
	SaveState(key string, value []byte) error
}

// Config configures the uplink. Zero durations and sizes marked with a
// default get it.
type Config struct {
	// Broker is tcp://host:port (or mqtt://); ssl:// and mqtts:// use TLS.
	Broker string
	// Brokers, when not empty, are several addresses of one broker
	// cluster, used instead of Broker: a session stays on the address it
	// reached; a failed connection attempt, or a session that ended, moves
	// on to the next (round the list). Whatever was not acknowledged is
	// sent again, in order, on whichever broker the next session has.
	Brokers  []string
	ClientID string
	// Username and a password from at most one of Password, PasswordFile
	// (read at every connect, trailing newline dropped) and PasswordEnv
	// (an environment variable's name). The password is never logged.
	Username     string
	Password     string
	PasswordFile string
	PasswordEnv  string
	// TLS applies to ssl:// and mqtts:// brokers.
	TLS TLS

	Inflight       int // default 20
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	WriteTimeout   time.Duration
	ReconnectMin   time.Duration
	ReconnectMax   time.Duration

	// MaxPayload is the largest queued message published (default
	// 64 KiB); larger ones are held in the buffer (package comment,
	// "Poison messages").
	MaxPayload int
	// Heartbeat is the interval of heartbeats and of publish-permission
	// probes while publishing is not permitted (default 30s).
	Heartbeat time.Duration
	// ProbeTimeout bounds the wait for a probe to come back (default
	// WriteTimeout, or 10s).
	ProbeTimeout time.Duration

	// MaxCommand is the largest command accepted (default 16 KiB).
	MaxCommand int
	// CommandKeys, when not empty, are the Ed25519 keys one of which must
	// have signed every command.
	CommandKeys []ed25519.PublicKey
	// CommandTimeout bounds one station or resend command (default 10s).
	CommandTimeout time.Duration
	// State, when set, keeps the ids of commands with an expiry across
	// restarts (the buffer implements it); nil keeps them in memory only.
	State StateStore

	// TopicPrefix, Site and Gateway make the topics (wire.TopicsFor) and
	// the source of the uplink's own events.
	TopicPrefix, Site, Gateway string

	// Version and ConfigHash go into the birth.
	Version, ConfigHash string
	// Backlog, when set, reports the queue in births, heartbeats and the
	// status command; nil reports an empty queue of epoch "unknown".
	Backlog Backlog
	// ClockSynced reports whether the system clock can be trusted; nil
	// reports false.
	ClockSynced func() bool
	// Stations, when set, carries out status, set_mode and set_context,
	// and its stations are in every heartbeat; nil answers the station
	// commands with CodeUnsupported.
	Stations Stations
	// Assignments, when set, puts the serial schemes' counters and the
	// label printers in every heartbeat.
	Assignments interface {
		Schemes() []wire.SerialStatus
		Printers() []wire.PrinterStatus
	}
	// Commands carries out the commands of other parts, by name (one of
	// wire.Commands): the workflow's and the serial assigner's.
	Commands map[string]CommandFunc
	// Resender, when set, carries out resend; nil answers it with
	// CodeUnsupported.
	Resender Resender
	// Notices are the live notices to publish (station indicators); nil
	// makes a queue of the uplink's own.
	Notices *Notices
	// Rules, when set, gets every message from the rules topics (called
	// on the downlink goroutine, never on paho's); nil ignores them. An
	// error (a *wire.Error carries its code) is published on the reply
	// topic, with id "rules:<topic>", so the central side learns why a set
	// was refused.
	Rules func(topic string, payload []byte) error
}

// LogValue keeps the password out of any log line that prints a Config.
func (c Config) LogValue() slog.Value {
	pw := "none"
	switch {
	case c.PasswordFile != "":
		pw = "file " + c.PasswordFile
	case c.PasswordEnv != "":
		pw = "env " + c.PasswordEnv
	case c.Password != "":
		pw = "literal (redacted)"
	}
	return slog.GroupValue(
		slog.String("broker", strings.Join(c.brokerList(), " ")), slog.String("client_id", c.ClientID),
		slog.String("username", c.Username), slog.String("password", pw),
		slog.String("ca_file", c.TLS.CAFile), slog.String("cert_file", c.TLS.CertFile),
	)
}

// Uplink publishes a Queue to an MQTT broker and serves the downlink.
type Uplink struct {
	cfg      Config
	q        Queue
	log      *slog.Logger
	m        *metrics
	topics   wire.Topics
	source   string
	instance string
	started  time.Time
	ident    identity

	connected atomic.Bool
	permitted atomic.Int32 // 1 permitted, 0 not, -1 not known yet
	busy      atomic.Int64 // unix ns the pump's queue read began; 0 while it waits (Busy)

	// at indexes cfg.Brokers: the broker the next (or the current)
	// session uses.
	at atomic.Int32

	// configHash is the config in force (SetConfigHash); rebirth asks the
	// session to announce it.
	configHash atomic.Pointer[string]
	rebirth    chan struct{}

	resubscribe0, resubscribe1 time.Duration // bounds of resubscribe's wait

	mu     sync.Mutex
	client mqtt.Client // the connected session's, for replies; nil between sessions

	inbox  chan downMsg
	recent replyCache // downlink goroutine only
	// unexpired holds the ids of commands that carried "expires", until
	// then (downlink goroutine only).
	unexpired expiringIDs

	poisoned map[uint64]bool // positions reported; pump goroutine only (sessions never overlap)
	// publishers are the sessions' publisher goroutines, which may outlive
	// their session (see publisher); Run waits for them.
	publishers sync.WaitGroup
}

// New makes an uplink; reg receives its metrics.
func New(cfg Config, q Queue, log *slog.Logger, reg prometheus.Registerer) *Uplink {
	if cfg.Inflight <= 0 {
		cfg.Inflight = 20
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 64 << 10
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 30 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = cfg.WriteTimeout
		if cfg.ProbeTimeout <= 0 {
			cfg.ProbeTimeout = 10 * time.Second
		}
	}
	if cfg.MaxCommand <= 0 {
		cfg.MaxCommand = 16 << 10
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 10 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	if cfg.Backlog == nil {
		cfg.Backlog = noBacklog{}
	}
	if cfg.ClockSynced == nil {
		cfg.ClockSynced = func() bool { return false }
	}
	if cfg.Notices == nil {
		cfg.Notices = NewNotices()
	}
	cfg.Brokers = cfg.brokerList()
	u := &Uplink{
		cfg:      cfg,
		q:        q,
		log:      log,
		m:        newMetrics(reg, cfg.Notices, cfg.Brokers),
		topics:   wire.TopicsFor(cfg.TopicPrefix, cfg.Site, cfg.Gateway),
		source:   wire.GatewaySource(cfg.Site, cfg.Gateway),
		instance: wire.NewID(),
		started:  time.Now(),
		inbox:    make(chan downMsg, inboxSize),
		poisoned: map[uint64]bool{},
		rebirth:  make(chan struct{}, 1),

		resubscribe0: resubscribeMin,
		resubscribe1: resubscribeMax,
	}
	u.configHash.Store(&cfg.ConfigHash)
	u.ident.instance = u.instance
	u.permitted.Store(-1)
	return u
}

// Connected reports whether a session is up.
func (u *Uplink) Connected() bool { return u.connected.Load() }

// PublishPermitted reports what the last permission probe found, and
// whether one has come back or timed out yet.
func (u *Uplink) PublishPermitted() (permitted, known bool) {
	p := u.permitted.Load()
	return p == 1, p >= 0
}

// DuplicateGateway reports whether another process announced itself as
// this gateway on its status topic.
func (u *Uplink) DuplicateGateway() bool { return u.ident.duplicate() }

// Instance returns this process's instance id, as the status and
// heartbeats carry it.
func (u *Uplink) Instance() string { return u.instance }

// Run keeps a session to the broker until ctx ends, reconnecting with
// exponential backoff at a random phase per outage (so a broker restart
// does not meet a fleet of gateways in the same second), and runs the
// downlink. It returns nil when ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer u.publishers.Wait()
	wg.Go(func() { u.downlink(ctx) })

	failures := 0
	var phase float64
	var lastWarn time.Time
	var lastReason string
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
		if failures == 1 {
			phase = rand.Float64() // one per outage: see backoff
		}
		wait := backoff(u.cfg.ReconnectMin, u.cfg.ReconnectMax, failures, phase)
		msg, reason, level, attrs := describeEnd(err)
		attrs = append(attrs, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
		// One line per outage and per new reason, then a reminder every
		// few minutes: a broker down for hours must not flood the journal.
		if failures == 1 || reason != lastReason || time.Since(lastWarn) >= 5*time.Minute {
			u.log.Log(ctx, level, msg, attrs...)
			lastWarn = time.Now()
		} else {
			u.log.Debug(msg, attrs...)
		}
		lastReason = reason
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// describeEnd turns a session's error into a log message, its reason,
// level and attributes.
func describeEnd(err error) (msg, reason string, level slog.Level, attrs []any) {
	var ce *connectError
	if errors.As(err, &ce) {
		level := slog.LevelWarn
		switch ce.reason {
		case ReasonTLSUnknownCA, ReasonTLSBadCertificate, ReasonTLSExpired, ReasonTLSHandshake, ReasonBadCredentials, ReasonLocal:
			// Waiting does not fix these: someone must act.
			level = slog.LevelError
		}
		return "mqtt connect failed; retrying", ce.reason, level, []any{"reason", ce.reason, "hint", ce.hint, "err", err}
	}
	reason = LostNetwork
	var se *sessionEnd
	if errors.As(err, &se) {
		reason = se.reason
	}
	return "mqtt session ended; reconnecting", reason, slog.LevelWarn, []any{"reason", reason, "err", err}
}

// peekBatch is how many queued messages the pump reads at a time.
const peekBatch = 256

// stableSession is how long a session must last for the reconnect backoff
// to start again from its minimum.
const stableSession = 30 * time.Second

// sessionEnd is why a session that was up ended.
type sessionEnd struct {
	reason string // a Lost constant
	err    error
}

func (e *sessionEnd) Error() string { return e.err.Error() }
func (e *sessionEnd) Unwrap() error { return e.err }

type inflight struct {
	pos  uint64 // queue position
	tok  mqtt.Token
	sent time.Time
}

// session runs one connection and reports how long it was up (0 if it
// never connected): connect, then set up (subscribe, birth), then publish
// until the connection or ctx ends.
func (u *Uplink) session(ctx context.Context) (upFor time.Duration, err error) {
	lost := make(chan error, 1)
	echo := make(chan string, 8) // event ids seen on the heartbeat topic
	c, err := u.connect(ctx, lost, echo)
	if err != nil {
		return 0, err
	}
	defer c.Disconnect(250)
	// Commands may arrive as soon as the subscription is granted (a
	// retained one at once): their replies need the client from now on.
	u.setClient(c)
	defer u.setClient(nil)

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	defer wg.Wait()                // after cancel (defers run last-in first-out)
	lostErr := make(chan error, 1) // the connection-lost handler's error, once seen
	wg.Go(func() {
		select {
		case err := <-lost:
			lostErr <- err
			cancel(&sessionEnd{lostReason(err), fmt.Errorf("connection lost: %w", err)})
		case <-sctx.Done():
		}
	})

	canProbe, refused, err := u.subscribe(sctx, c)
	if err != nil {
		return 0, u.ended(ctx, sctx, cancel, &sessionEnd{LostSetup, err}, lost, lostErr)
	}
	if len(refused) > 0 {
		wg.Go(func() { u.resubscribe(sctx, c, refused) })
	}
	if err := wait(sctx, c.Publish(u.topics.Status, 1, true, u.statusPayload(wire.Online)), u.cfg.WriteTimeout); err != nil {
		return 0, u.ended(ctx, sctx, cancel, &sessionEnd{LostSetup, fmt.Errorf("publish birth: %w", err)}, lost, lostErr)
	}
	connected := time.Now()
	u.log.Info("mqtt connected", "broker", redacted(u.Broker()), "client_id", u.cfg.ClientID, "instance", u.instance)
	u.connected.Store(true)
	u.m.connected.Set(1)
	u.m.broker.WithLabelValues(redacted(u.Broker())).Set(1)
	defer func() {
		u.connected.Store(false)
		u.m.broker.WithLabelValues(redacted(u.Broker())).Set(0)
		u.m.connected.Set(0)
		u.m.inflight.Set(0)
		// A cluster is one broker: a session lost on one node goes on on
		// the next, rather than waiting for a node that may be down.
		u.nextBroker()
	}()

	err = u.publish(sctx, cancel, &wg, c, canProbe, echo)
	cancel(err)
	wg.Wait()
	upFor = time.Since(connected)
	if ctx.Err() != nil {
		// A will is not sent on DISCONNECT: say offline ourselves.
		if c.IsConnected() {
			wait(context.Background(), c.Publish(u.topics.Status, 1, true, u.statusPayload(wire.Offline)), time.Second)
		}
		return upFor, nil
	}
	return upFor, u.ended(ctx, sctx, cancel, err, lost, lostErr)
}

// connect makes a paho client for one connection and connects it. lost
// gets the connection-lost handler's error; echo the ids of events seen
// on the heartbeat topic.
func (u *Uplink) connect(ctx context.Context, lost chan<- error, echo chan<- string) (mqtt.Client, error) {
	c, err := u.connectTo(ctx, u.Broker(), lost, echo)
	if err != nil {
		u.nextBroker()
	}
	return c, err
}

// nextBroker makes the next address of mqtt.brokers the one the next
// attempt uses.
func (u *Uplink) nextBroker() {
	if len(u.cfg.Brokers) > 1 {
		u.at.Store(int32((int(u.at.Load()) + 1) % len(u.cfg.Brokers)))
	}
}

func (c Config) brokerList() []string {
	if len(c.Brokers) > 0 {
		return c.Brokers
	}
	return []string{c.Broker}
}

// Broker is the broker the current session uses, or the next will.
func (u *Uplink) Broker() string { return u.cfg.Brokers[u.at.Load()] }

// redacted is a broker URL without its password, for logs and labels.
func redacted(broker string) string {
	if b, err := url.Parse(broker); err == nil {
		return b.Redacted()
	}
	return broker
}

func (u *Uplink) connectTo(ctx context.Context, broker string, lost chan<- error, echo chan<- string) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().
		AddBroker(broker).
		SetClientID(u.cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetProtocolVersion(4). // MQTT 3.1.1 only: no silent 3.1 retry doubling each attempt
		SetStore(noStore{}).   // the buffer is the store
		SetKeepAlive(u.cfg.KeepAlive).
		SetPingTimeout(u.cfg.KeepAlive/2+time.Second).
		SetConnectTimeout(u.cfg.ConnectTimeout).
		SetWriteTimeout(u.cfg.WriteTimeout).
		SetBinaryWill(u.topics.Status, u.statusPayload(wire.Offline), 1, true).
		// paho's router calls this for every message on our subscriptions;
		// route never blocks it.
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { u.route(m, echo) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	var st *dialState
	if u.cfg.Username != "" {
		pw, err := u.cfg.password()
		if err != nil {
			return nil, u.connectFailed(broker, &localError{ReasonLocal, err}, nil)
		}
		opts.SetUsername(u.cfg.Username).SetPassword(pw)
	}
	if isTLS(broker) {
		st = &dialState{}
		tc, err := u.tlsConfig(st, broker, time.Now())
		if err != nil {
			return nil, u.connectFailed(broker, err, st)
		}
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			return u.dialTLS(st, tc, uri.Host)
		})
	} else {
		opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			return u.dialTCP(uri.Host)
		})
	}
	c := mqtt.NewClient(opts)
	if err := wait(ctx, c.Connect(), u.cfg.ConnectTimeout+time.Second); err != nil {
		c.Disconnect(0)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, u.connectFailed(broker, err, st)
	}
	return c, nil
}

// publish runs a connected session's work until it ends: the permission
// probe, then heartbeats, live notices, and the queue through a window of
// Inflight (pump → publisher → collect). It returns why it ended.
func (u *Uplink) publish(ctx context.Context, cancel context.CancelCauseFunc, wg *sync.WaitGroup, c mqtt.Client, canProbe bool, echo <-chan string) error {
	if canProbe {
		if err := u.awaitPermission(ctx, c, echo); err != nil {
			return err
		}
	} else {
		u.log.Warn("cannot check that the broker lets the gateway publish: it refused the subscription to the heartbeat topic; publishing anyway",
			"topic", u.topics.Heartbeat)
	}
	wg.Go(func() { u.heartbeats(ctx, c) })
	wg.Go(func() { u.notifier(ctx, c) })
	slots := make(chan struct{}, u.cfg.Inflight)
	pending := make(chan inflight, u.cfg.Inflight)
	send := make(chan Message, u.cfg.Inflight)
	wg.Go(func() { u.collect(ctx, cancel, slots, pending) })
	// Not in wg: see publisher. Run waits for it before it returns.
	u.publishers.Go(func() { publisher(ctx, c, u.topics, send, pending) })
	return u.pump(ctx, slots, send)
}

// ended ends a session that had connected with err, and says why, as a
// *sessionEnd counted in the reconnect metric (nil when ctx ended).
func (u *Uplink) ended(ctx, sctx context.Context, cancel context.CancelCauseFunc, err error, lost <-chan error, lostErr <-chan error) error {
	cancel(err)
	cause := context.Cause(sctx)
	if ctx.Err() != nil {
		return nil
	}
	var se *sessionEnd
	if !errors.As(cause, &se) {
		se = &sessionEnd{LostSetup, cause}
	}
	// paho fails the tokens of a lost connection before it calls the
	// connection-lost handler, so a failed token may be the first to
	// tell; the handler's error says why (keepalive or network).
	if (se.reason == LostSetup || se.reason == LostPublish) && strings.Contains(se.err.Error(), "connection lost") {
		timer := time.NewTimer(time.Second)
		select {
		case err := <-lostErr:
			se = &sessionEnd{lostReason(err), se.err}
		case err := <-lost:
			se = &sessionEnd{lostReason(err), se.err}
		case <-timer.C:
			se = &sessionEnd{LostNetwork, se.err}
		}
		timer.Stop()
	}
	u.m.reconnects.WithLabelValues(se.reason).Inc()
	return se
}

// connectFailed counts and wraps a failed connection attempt.
func (u *Uplink) connectFailed(broker string, err error, st *dialState) error {
	ce := classifyConnect(fmt.Errorf("connect %s: %w", redacted(broker), err), st)
	u.m.connectFailures.WithLabelValues(ce.reason).Inc()
	return ce
}

func (u *Uplink) setClient(c mqtt.Client) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.client = c
}

func (u *Uplink) currentClient() mqtt.Client {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.client
}

// subscribe subscribes to the gateway's downlink topics, its own status
// (duplicate detection) and heartbeat (the probe). It reports whether the
// heartbeat subscription was granted, without which there is no probe.
func (u *Uplink) subscribe(ctx context.Context, c mqtt.Client) (canProbe bool, refused map[string]byte, err error) {
	t := u.topics
	// Commands and rule sets at QoS 1; the gateway's own status and
	// heartbeat (seen only to spot a duplicate gateway and to probe that
	// publishing is permitted) at QoS 0, which costs a broker less: NATS
	// makes a JetStream consumer for every QoS 1 subscription.
	filters := map[string]byte{t.Status: 0, t.Heartbeat: 0, t.Cmd: 1, t.SiteRules: 1, t.GatewayRules: 1}
	granted, err := u.subscribeTo(ctx, c, filters)
	if err != nil {
		return false, nil, err
	}
	refused = map[string]byte{}
	for topic, qos := range filters {
		// 0x80 is the MQTT 3.1.1 SUBACK failure code (section 3.9.3).
		if code, ok := granted[topic]; !ok || code > 2 {
			u.log.Warn("broker refused a subscription (an ACL, or a cluster node still recovering); asking again in the background",
				"topic", topic, "suback", code)
			refused[topic] = qos
			continue
		}
		if topic == t.Heartbeat {
			canProbe = true
		}
	}
	return canProbe, refused, nil
}

func (u *Uplink) subscribeTo(ctx context.Context, c mqtt.Client, filters map[string]byte) (map[string]byte, error) {
	tok := c.SubscribeMultiple(filters, nil)
	if err := wait(ctx, tok, u.cfg.WriteTimeout); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return tok.(*mqtt.SubscribeToken).Result(), nil
}

// Bounds of the wait between asking again for refused subscriptions (a
// variable for the tests; New reads it).
var (
	resubscribeMin = 5 * time.Second
	resubscribeMax = 5 * time.Minute
)

// resubscribe asks again for the subscriptions the broker refused, until
// it grants them or the session ends: a cluster node that took the
// session over before its state recovered refuses some at first (NATS
// cannot make their JetStream consumers yet), and without them commands
// and rule sets would not arrive until the next reconnect.
func (u *Uplink) resubscribe(ctx context.Context, c mqtt.Client, refused map[string]byte) {
	every := u.resubscribe0
	for len(refused) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		granted, err := u.subscribeTo(ctx, c, refused)
		if err != nil {
			continue // the session is ending, or the broker is slow: ask again
		}
		for topic := range refused {
			if code, ok := granted[topic]; ok && code <= 2 {
				u.log.Info("broker granted a subscription it had refused", "topic", topic)
				delete(refused, topic)
			}
		}
		every = min(2*every, u.resubscribe1)
	}
}

// route dispatches one incoming message. It runs on paho's router and
// must not block.
func (u *Uplink) route(m mqtt.Message, echo chan<- string) {
	switch m.Topic() {
	case u.topics.Status:
		if st, log := u.ident.observe(m.Payload()); st != nil {
			u.m.duplicate.Set(1)
			if log {
				u.log.Error("another process announces itself as this gateway: two gateways share gateway.id (they take each other's session over)",
					"other_instance", st.Data.Instance, "other_state", st.Data.State, "other_version", st.Data.Version,
					"other_start_time", st.Data.StartTime, "instance", u.instance, "client_id", u.cfg.ClientID)
			}
		}
	case u.topics.Heartbeat:
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Payload(), &ev) == nil && ev.ID != "" {
			select {
			case echo <- ev.ID:
			default:
			}
		}
	case u.topics.Cmd, u.topics.SiteRules, u.topics.GatewayRules:
		u.enqueue(m)
	}
}

// awaitPermission publishes a heartbeat as a probe and waits for it to
// come back through the subscription, repeating every heartbeat interval
// until one does (a late echo of an earlier probe counts too: a slow
// broker is not a denying one). It returns nil once publishing is
// permitted, or the session's end.
func (u *Uplink) awaitPermission(ctx context.Context, c mqtt.Client, echo <-chan string) error {
	var sent []string // the last probes' ids
	var lastLog time.Time
	for {
		payload, id := u.heartbeat()
		if err := wait(ctx, c.Publish(u.topics.Heartbeat, 1, false, payload), u.cfg.WriteTimeout); err != nil {
			return &sessionEnd{LostPublish, fmt.Errorf("publish probe: %w", err)}
		}
		sent = append(sent[max(len(sent)-15, 0):], id)
		back := u.waitEcho(ctx, echo, sent, u.cfg.ProbeTimeout)
		if !back && ctx.Err() == nil {
			u.permitted.Store(0)
			u.m.permitted.Set(0)
			if lastLog.IsZero() || time.Since(lastLog) >= 5*time.Minute {
				u.log.Error("the broker does not let the gateway publish: the probe on its heartbeat topic did not come back; holding the queue (nothing is sent, nothing deleted) and probing again",
					"topic", u.topics.Heartbeat, "timeout", u.cfg.ProbeTimeout, "retry_in", u.cfg.Heartbeat,
					"hint", "grant the gateway's user read and write on its own topics (ACL)")
				lastLog = time.Now()
			}
			back = u.waitEcho(ctx, echo, sent, u.cfg.Heartbeat)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if back {
			if u.permitted.Swap(1) == 0 {
				u.log.Info("the broker lets the gateway publish again; sending the queue", "topic", u.topics.Heartbeat)
			}
			u.m.permitted.Set(1)
			return nil
		}
	}
}

// waitEcho waits up to timeout for one of the probes' event ids to come
// back.
func (u *Uplink) waitEcho(ctx context.Context, echo <-chan string, ids []string, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case got := <-echo:
			if slices.Contains(ids, got) {
				return true
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// heartbeats publishes a heartbeat every interval until ctx ends. They go
// at QoS 0: a lost one is replaced by the next.
func (u *Uplink) heartbeats(ctx context.Context, c mqtt.Client) {
	t := time.NewTicker(u.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-u.rebirth:
			// A reload changed the config: the retained status says
			// which one runs now, and a heartbeat follows at once.
			if err := wait(ctx, c.Publish(u.topics.Status, 1, true, u.statusPayload(wire.Online)), u.cfg.WriteTimeout); err != nil && ctx.Err() == nil {
				u.log.Warn("status not republished after a reload", "err", err)
			}
		}
		payload, _ := u.heartbeat()
		if err := wait(ctx, c.Publish(u.topics.Heartbeat, 0, false, payload), u.cfg.WriteTimeout); err != nil && ctx.Err() == nil {
			u.log.Debug("heartbeat not sent", "err", err)
		}
	}
}

// pump publishes the queue in order, holding at most Inflight unacked.
func (u *Uplink) pump(ctx context.Context, slots chan struct{}, send chan<- Message) error {
	var cursor uint64 // 0: from the oldest unacknowledged message
	for {
		// Read ahead more than the window: one Badger iterator per few
		// hundred messages instead of per window keeps a drain cheap.
		u.busy.Store(time.Now().UnixNano())
		batch, err := u.q.Peek(cursor, max(u.cfg.Inflight, peekBatch))
		u.busy.Store(0)
		if err != nil {
			return &sessionEnd{LostQueue, err}
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
			cursor = e.Pos + 1
			if len(e.Payload) > u.cfg.MaxPayload {
				u.poison(e)
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			u.m.inflight.Set(float64(len(slots)))
			select {
			case send <- e:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
}

// publisher hands the pump's messages to paho, in order. It runs apart from
// the pump and outside the session's wait group because paho's Publish can
// block for the whole write timeout on its outbound queue when the link
// drops under it, ignoring ctx: the next session must not wait for it. An
// abandoned call ends by itself within the write timeout; its token fails
// and is never acked. Run waits for every publisher before it returns.
func publisher(ctx context.Context, c mqtt.Client, topics wire.Topics, send <-chan Message, pending chan<- inflight) {
	for {
		var e Message
		select {
		case e = <-send:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return // both were ready: the session is over
		}
		tok := c.Publish(topics.Of(e.Stream), 1, false, e.Payload)
		select {
		case pending <- inflight{pos: e.Pos, tok: tok, sent: time.Now()}:
		case <-ctx.Done():
			return
		}
	}
}

// poison reports a queued message too large to publish, once per process.
func (u *Uplink) poison(e Message) {
	if u.poisoned[e.Pos] {
		return
	}
	u.poisoned[e.Pos] = true
	u.m.poison.Inc()
	u.log.Error("queued message larger than mqtt.max_payload: held in the buffer, not published; the messages after it are sent",
		"queue_position", e.Pos, "topic", u.topics.Of(e.Stream), "bytes", len(e.Payload), "max_payload", u.cfg.MaxPayload,
		"appended", e.Time, "hint", "inspect it with `scangw buffer peek`; raising mqtt.max_payload sends it")
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
			fail(&sessionEnd{LostPublish, fmt.Errorf("publish queue position %d: %w", f.pos, err)})
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
		return errTimedOut
	}
}
