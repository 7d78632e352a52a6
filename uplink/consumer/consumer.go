package consumer

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
)

// Defaults of Config.
const (
	DefaultTopicPrefix = "scangw/v1"
	DefaultResendAfter = 10 * time.Second
	DefaultResendMax   = 10 * time.Minute
)

const (
	// commandTTL is how long a resend request stays valid: well inside
	// what a gateway accepts (uplink.MaxCommandValidity), and long past
	// its delivery.
	commandTTL = 5 * time.Minute
	// opTimeout bounds a connect, a subscribe and a publish.
	opTimeout = 10 * time.Second
	// reconnectMin and reconnectMax bound the wait between connection
	// attempts (doubling, with full jitter).
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 10 * time.Second
	keepAlive    = 30 * time.Second
)

// Config is what a Consumer needs. Broker, ClientID and OnEvent are
// required.
type Config struct {
	// Broker is the broker's URL: tcp:// or mqtt://, ssl://, tls:// or
	// mqtts://, ws:// or wss://.
	Broker string
	// ClientID names the session the broker keeps for the consumer: the
	// same id after a restart resumes it, with what was queued meanwhile.
	// Two consumers must not share one.
	ClientID string
	// CleanSession starts a new session at every connect and leaves none
	// on the broker: for a look at the live stream (scangw tail without
	// --client-id). What is published while it is away is not delivered.
	CleanSession       bool
	Username, Password string
	// TLS is used for ssl://, tls://, mqtts:// and wss:// brokers; nil
	// verifies the broker against the system's roots.
	TLS *tls.Config
	// TopicPrefix is the gateways' mqtt.topic_prefix (DefaultTopicPrefix).
	TopicPrefix string
	// Site and Gateway narrow the subscription to one site or gateway; ""
	// takes every one.
	Site, Gateway string
	// Shared makes the consumer a member of the shared subscription group
	// of this name ($share/<Shared>/…): the broker splits events among
	// the members, and no seq tracking is done (package comment).
	Shared string
	// SignKey signs resend requests for gaps; the gateways list its
	// public half in mqtt.command_keys. Without it no resend is asked.
	SignKey ed25519.PrivateKey
	// ResendAfter is how long a gap may stay open before its resend is
	// asked for (DefaultResendAfter); events merely reordered arrive
	// within it. Each further request waits twice as long, up to
	// ResendMax (DefaultResendMax).
	ResendAfter, ResendMax time.Duration

	// OnEvent gets every event once, in arrival order (resent events come
	// late). The broker has it acknowledged only after OnEvent returned.
	// It must return well within 30 s (the keepalive): the connection
	// waits for it. The callbacks are called one at a time and must not
	// call the Consumer's methods.
	OnEvent func(Event)
	// OnGap, if set, is told when a gap opens, is asked for, closes or
	// is given up.
	OnGap func(Gap)
	// OnEpoch, if set, is told when a gateway starts a new epoch.
	OnEpoch func(Epoch)
	// Log gets connection changes and what was refused; nil discards.
	Log *slog.Logger
}

// Event is a gateway's scan or station event, as it arrived.
type Event struct {
	Site, Gateway, Station string
	ID                     string
	Type                   string // wire.ScanType, wire.ContextType or wire.NoReadType
	Time                   time.Time
	Seq                    uint64
	Epoch                  string
	// Data is the event's data, for the struct of its type
	// (wire.ScanData, wire.ContextData, wire.NoReadData).
	Data json.RawMessage
	// Payload is the whole message, the CloudEvent as published.
	Payload []byte
}

// GapState is what happened to a Gap.
type GapState int

const (
	// GapOpen: a seq arrived past seqs that did not.
	GapOpen GapState = iota + 1
	// GapAsked: a resend request was sent for what is still missing.
	GapAsked
	// GapClosed: every seq of the gap arrived.
	GapClosed
	// GapLost: the gap is no longer asked for (Gap.Reason says why). Its
	// seqs are still delivered, once, should they arrive.
	GapLost
)

func (s GapState) String() string {
	switch s {
	case GapOpen:
		return "open"
	case GapAsked:
		return "asked"
	case GapClosed:
		return "closed"
	case GapLost:
		return "lost"
	}
	return fmt.Sprintf("GapState(%d)", int(s))
}

// Gap is a run of a gateway's seqs that did not arrive when a later one
// did.
type Gap struct {
	Site, Gateway, Epoch string
	// From and To are the seqs missing when the gap opened (inclusive).
	From, To uint64
	// Missing is how many of them still are.
	Missing uint64
	State   GapState
	// Asks counts the resend requests sent for it.
	Asks   int
	Opened time.Time
	// Reason says why a lost gap is no longer asked for.
	Reason string
}

// Epoch reports that a gateway started a new epoch: its seq restarts at 1.
type Epoch struct {
	Site, Gateway string
	Epoch         string
	// Previous is the epoch it had before, as far as the consumer knows.
	Previous string
}

// Stats counts what a Consumer did.
type Stats struct {
	Events     uint64 // handed to OnEvent
	Duplicates uint64 // dropped
	Refused    uint64 // messages that were not events of the contract
	Resends    uint64 // resend requests published
	OpenGaps   int    // gaps still asked for or waited on
	LostGaps   int    // gaps given up and still on record
}

// Consumer reads the gateways' events from the broker.
type Consumer struct {
	cfg     Config
	log     *slog.Logger
	filters map[string]byte

	mu      sync.Mutex // guards tr, stats and the callbacks' calls
	tr      *tracker
	stats   Stats
	refusal refusalLog
}

// New checks cfg and returns a Consumer for it; nothing connects before
// Run.
func New(cfg Config) (*Consumer, error) {
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = DefaultTopicPrefix
	}
	if cfg.ResendAfter == 0 {
		cfg.ResendAfter = DefaultResendAfter
	}
	if cfg.ResendMax == 0 {
		cfg.ResendMax = max(DefaultResendMax, cfg.ResendAfter)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Consumer{cfg: cfg, log: cfg.Log}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	onGap, onEpoch := cfg.OnGap, cfg.OnEpoch
	if onGap == nil {
		onGap = func(Gap) {}
	}
	if onEpoch == nil {
		onEpoch = func(Epoch) {}
	}
	c.tr = newTracker(cfg.ResendAfter, cfg.ResendMax, cfg.SignKey != nil, onGap, onEpoch, c.log)
	c.filters = cfg.filters()
	return c, nil
}

// Validate reports every bad field of cfg, each by its name.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(cfg.Broker); err != nil || u.Host == "" {
		bad("Broker", "%q: want a URL such as tcp://broker:1883", cfg.Broker)
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			bad("Broker", "scheme %q: want tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Scheme)
		}
	}
	switch {
	case cfg.ClientID == "" && !cfg.CleanSession:
		bad("ClientID", "required: the broker keeps the consumer's session under it")
	case len(cfg.ClientID) > 65535 || !utf8.ValidString(cfg.ClientID):
		bad("ClientID", "want at most 65535 bytes of UTF-8")
	}
	p := cfg.TopicPrefix
	switch {
	case p == "":
		bad("TopicPrefix", "required")
	case strings.ContainsAny(p, "+#\x00") || !utf8.ValidString(p):
		bad("TopicPrefix", "%q: must be valid UTF-8 without the wildcards + and #", p)
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$"):
		bad("TopicPrefix", "%q: must not start or end with / nor start with $", p)
	}
	if cfg.Site != "" && !wire.ValidID(cfg.Site) {
		bad("Site", "%q: want 1 to 64 of [A-Za-z0-9._-]", cfg.Site)
	}
	if cfg.Gateway != "" && !wire.ValidID(cfg.Gateway) {
		bad("Gateway", "%q: want 1 to 64 of [A-Za-z0-9._-]", cfg.Gateway)
	}
	if cfg.Shared != "" && (strings.ContainsAny(cfg.Shared, "/+#\x00") || !utf8.ValidString(cfg.Shared)) {
		bad("Shared", "%q: a group name must not hold /, + or #", cfg.Shared)
	}
	if cfg.SignKey != nil && len(cfg.SignKey) != ed25519.PrivateKeySize {
		bad("SignKey", "%d bytes, want an Ed25519 private key (%d)", len(cfg.SignKey), ed25519.PrivateKeySize)
	}
	if cfg.SignKey != nil && cfg.Shared != "" {
		bad("SignKey", "a shared subscription member sees only part of each gateway's events, so it cannot tell which are missing")
	}
	if cfg.ResendAfter < 0 {
		bad("ResendAfter", "%v: must not be negative", cfg.ResendAfter)
	}
	if cfg.ResendMax < cfg.ResendAfter {
		bad("ResendMax", "%v: must not be below ResendAfter (%v)", cfg.ResendMax, cfg.ResendAfter)
	}
	if cfg.OnEvent == nil {
		bad("OnEvent", "required")
	}
	return errors.Join(errs...)
}

// filters are the subscriptions: both buffered streams of every station,
// and, to track seq, the gateways' status (for their epoch) and replies
// (to resend requests).
func (cfg Config) filters() map[string]byte {
	site, gw := cfg.Site, cfg.Gateway
	if site == "" {
		site = "+"
	}
	if gw == "" {
		gw = "+"
	}
	t := wire.TopicsFor(cfg.TopicPrefix, site, gw)
	events := []string{t.Of(wire.ScanStream("#")), t.Of(wire.EventStream("#"))}
	f := map[string]byte{}
	if cfg.Shared != "" {
		for _, e := range events {
			f["$share/"+cfg.Shared+"/"+e] = 1
		}
		return f
	}
	for _, e := range append(events, t.Status, t.Reply) {
		f[e] = 1
	}
	return f
}

// Run connects, subscribes and hands events to OnEvent until ctx ends;
// it returns nil then. A broker that cannot be reached is retried (and
// logged) for as long as ctx lasts.
func (c *Consumer) Run(ctx context.Context) error {
	opts := mqtt.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(c.cfg.ClientID).
		SetCleanSession(c.cfg.CleanSession).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetTLSConfig(c.cfg.TLS).
		SetKeepAlive(keepAlive).
		SetConnectTimeout(opTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(reconnectMax).
		// One message at a time, in arrival order, acknowledged once
		// handled: seq tracking and OnEvent see the broker's order.
		SetOrderMatters(true).
		// A resumed session delivers what it queued before the SUBACK.
		SetDefaultPublishHandler(c.handle).
		SetOnConnectHandler(c.subscribe).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.log.Warn("consumer: connection lost; reconnecting", "broker", c.cfg.Broker, "err", err)
		})
	client := mqtt.NewClient(opts)
	if !c.connect(ctx, client) {
		return nil
	}
	defer client.Disconnect(250)

	if c.cfg.SignKey == nil {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(min(max(c.cfg.ResendAfter/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		c.mu.Lock()
		asks := c.tr.due(time.Now())
		c.mu.Unlock()
		// Published without the lock: paho's router, which takes it for
		// every message, must stay free to process the PUBACKs.
		for _, a := range asks {
			c.publishResend(ctx, client, a)
		}
	}
}

// connect makes the first connection, retrying with backoff; false means
// ctx ended first. Later reconnects are paho's.
func (c *Consumer) connect(ctx context.Context, client mqtt.Client) bool {
	wait := reconnectMin
	for {
		tok := client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			client.Disconnect(0)
			return false
		}
		if tok.Error() == nil {
			return true
		}
		c.log.Warn("consumer: cannot connect; retrying", "broker", c.cfg.Broker, "err", tok.Error(), "in", wait)
		t := time.NewTimer(rand.N(wait) + wait/2)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		wait = min(2*wait, reconnectMax)
	}
}

// subscribe runs on every connect (in a goroutine of paho's, so it may
// wait): a resumed session still has its subscriptions, but a broker
// that lost the session has not, and a new one needs them.
func (c *Consumer) subscribe(client mqtt.Client) {
	tok := client.SubscribeMultiple(c.filters, nil)
	if !tok.WaitTimeout(opTimeout) {
		c.log.Error("consumer: no SUBACK; events may not arrive until the next connect", "broker", c.cfg.Broker)
		return
	}
	if err := tok.Error(); err != nil {
		c.log.Error("consumer: subscribe failed", "broker", c.cfg.Broker, "err", err)
		return
	}
	for f, code := range tok.(*mqtt.SubscribeToken).Result() {
		// 0x80 is MQTT 3.1.1's failure code (section 3.9.3): an ACL, or
		// a broker without shared subscriptions.
		if code > 2 {
			c.log.Error("consumer: the broker refused a subscription", "filter", f, "code", code)
		}
	}
	c.log.Info("consumer: connected and subscribed", "broker", c.cfg.Broker, "client_id", c.cfg.ClientID, "clean_session", c.cfg.CleanSession)
}

// handle is paho's handler for every message.
func (c *Consumer) handle(_ mqtt.Client, msg mqtt.Message) {
	m, err := parse(c.cfg.TopicPrefix, msg.Topic(), msg.Payload())
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if err != nil {
		c.stats.Refused++
		c.refusal.note(c.log, msg.Topic(), err, now)
		return
	}
	switch m.kind {
	case kindStatus:
		if c.cfg.Shared == "" {
			c.tr.status(m.site, m.gateway, m.epoch, m.state, msg.Retained(), now)
		}
	case kindReply:
		c.tr.reply(m.reply, now)
	case kindEvent:
		if c.cfg.Shared == "" && !c.tr.event(&m.event, now) {
			c.stats.Duplicates++
			return
		}
		c.stats.Events++
		c.cfg.OnEvent(m.event)
	}
}

// resendCommand is the signed resend request a asks for, valid until
// expires.
func resendCommand(a ask, key ed25519.PrivateKey, expires time.Time) ([]byte, error) {
	cmd, err := json.Marshal(map[string]any{
		"v": 1, "id": a.id, "cmd": wire.CmdResend,
		"args": map[string]any{"from": a.from, "to": a.to, "epoch": a.epoch},
	})
	if err != nil {
		return nil, err
	}
	return uplink.AddressCommand(cmd, a.site+"/"+a.gateway, expires, key)
}

// publishResend signs and sends one resend request.
func (c *Consumer) publishResend(ctx context.Context, client mqtt.Client, a ask) {
	cmd, err := resendCommand(a, c.cfg.SignKey, time.Now().Add(commandTTL))
	if err != nil {
		c.log.Error("consumer: cannot sign a resend request", "err", err)
		return
	}
	tok := client.Publish(wire.TopicsFor(c.cfg.TopicPrefix, a.site, a.gateway).Cmd, 1, false, cmd)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return
	case <-time.After(opTimeout):
		c.log.Warn("consumer: resend request not acknowledged in time; it is asked again later", "gateway", a.site+"/"+a.gateway)
		return
	}
	if err := tok.Error(); err != nil {
		c.log.Warn("consumer: resend request not sent; it is asked again later", "gateway", a.site+"/"+a.gateway, "err", err)
		return
	}
	c.mu.Lock()
	c.stats.Resends++
	c.mu.Unlock()
	c.log.Info("consumer: asked for a resend", "gateway", a.site+"/"+a.gateway, "epoch", a.epoch, "from", a.from, "to", a.to, "id", a.id)
}

// Stats returns what the consumer did so far.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.OpenGaps, s.LostGaps = c.tr.counts()
	return s
}

// refusalLog logs refused messages without flooding: the first, then at
// most one line a minute with the count since.
type refusalLog struct {
	last    time.Time
	skipped int
}

func (r *refusalLog) note(log *slog.Logger, topic string, err error, now time.Time) {
	if !r.last.IsZero() && now.Sub(r.last) < time.Minute {
		r.skipped++
		return
	}
	log.Warn("consumer: refused a message that is not an event of the wire contract", "topic", topic, "err", err, "refused_since_last_line", r.skipped)
	r.last, r.skipped = now, 0
}
