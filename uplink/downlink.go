package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"
	"unicode/utf8"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/station/wire"
)

var knownCodes = []string{
	wire.CodeTooLarge, wire.CodeBadJSON, wire.CodeUnsupportedVersion, wire.CodeMissingID, wire.CodeBadSignature,
	wire.CodeWrongTarget, wire.CodeExpired, wire.CodeReplayed, wire.CodeBusy,
	wire.CodeUnknownCommand, wire.CodeBadArgs, wire.CodeUnknownStation, wire.CodeUnsupported, wire.CodeNoAuditWindow,
	wire.CodeRetained, wire.CodeTimeout, wire.CodeFailed,
}

// maxCommandID bounds the correlation id echoed in replies.
const maxCommandID = 128

// MaxCommandValidity bounds how far ahead a command's "expires" may lie:
// commands are live (never retained, lost while the gateway is offline),
// so a short validity only has to cover delivery and clock skew, and a
// captured signed command is useless soon after.
const MaxCommandValidity = 15 * time.Minute

// commandClockSkew is how far the gateway's clock may trail the signer's
// before a command signed for the whole MaxCommandValidity looks too
// long-lived.
const commandClockSkew = time.Minute

// unexpiredKey is the state key under which the ids of commands with an
// expiry survive a restart.
const unexpiredKey = "uplink/unexpired-commands"

// maxUnexpired bounds the commands remembered against replay (each until
// its "expires"): 4,096 in 15 minutes is far above what a central system
// sends one gateway.
const maxUnexpired = 4096

// Command is one downlink command, decoded and checked (version,
// correlation id; signature, addressee and expiry when keys are
// configured).
type Command struct {
	// ID is the sender's correlation id, echoed in the reply.
	ID string
	// Cmd is one of the Cmd constants.
	Cmd string
	// Station is the station the command is for; "" for the gateway.
	Station string
	// Args is the command's "args" object as sent, or nil.
	Args json.RawMessage

	expires time.Time // zero when the command carries no "expires"
}

// downMsg is a downlink message handed from paho's router to the
// downlink goroutine.
type downMsg struct {
	topic    string
	payload  []byte
	retained bool
}

// inboxSize bounds the downlink queue. A command that finds it full is
// dropped (and counted): the router must never wait, and the central side
// retries a command that got no reply.
const inboxSize = 64

// enqueue runs on paho's router: it must not block.
func (u *Uplink) enqueue(m mqtt.Message) {
	select {
	case u.inbox <- downMsg{topic: m.Topic(), payload: m.Payload(), retained: m.Retained()}:
	default:
		u.m.downlinkDropped.Inc()
		u.log.Warn("downlink queue full; message dropped", "topic", m.Topic(), "bytes", len(m.Payload()))
	}
}

// downlink consumes the downlink queue until ctx ends. Run owns it, so a
// command that came in on one connection is answered on the next one if
// the first dropped meanwhile.
func (u *Uplink) downlink(ctx context.Context) {
	u.loadUnexpired()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-u.inbox:
			switch m.topic {
			case u.topics.Cmd:
				u.command(ctx, m)
			case u.topics.SiteRules, u.topics.GatewayRules:
				if u.cfg.Rules == nil {
					u.log.Debug("rules message ignored: no rules engine", "topic", m.topic, "bytes", len(m.payload))
					continue
				}
				if err := u.cfg.Rules(m.topic, m.payload); err != nil {
					u.refuseRules(m.topic, err)
				}
			}
		}
	}
}

// refuseRules tells the central side, on the reply topic, why a rule set
// from topic was refused: there is no command to answer, so the reply's id
// is "rules:<topic>" and its cmd "rules".
func (u *Uplink) refuseRules(topic string, err error) {
	code := wire.CodeFailed
	var we *wire.Error
	if errors.As(err, &we) {
		code = we.Code
	}
	id := "rules:" + topic
	if len(id) > maxCommandID {
		id = id[:maxCommandID]
	}
	r := failReply(id, "rules", code, "%v", err)
	payload, _ := u.event(wire.ReplyType, r)
	u.publishReply(payload)
}

// reply is the data of a reply event.
type reply = wire.Reply

func failReply(id, cmd, code, format string, args ...any) *reply {
	return &reply{ID: id, Cmd: cmd, Error: &wire.Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// command checks, carries out and answers one command.
func (u *Uplink) command(ctx context.Context, m downMsg) {
	if len(m.payload) == 0 {
		// How an operator clears a command retained by mistake; there is
		// nothing to answer.
		u.log.Debug("empty message on the command topic ignored", "retained", m.retained)
		return
	}
	cmd, bad := u.decodeCommand(m.payload)
	// The broker sets the retain flag only on what it sends because of a
	// new subscription: a retained command that would run again at every
	// connect.
	if bad == nil && m.retained {
		bad = failReply(cmd.ID, cmd.Cmd, wire.CodeRetained, "a command must not be retained: it would run again on every connect")
	}
	if bad != nil {
		u.log.Warn("downlink command refused", "id", bad.ID, "cmd", bad.Cmd, "code", bad.Error.Code, "why", bad.Error.Message)
		u.answer(bad, "", false)
		return
	}
	// QoS 1 may deliver a command twice, and a sender may retry one whose
	// reply it missed: run each correlation id once, and answer a repeat
	// with the first reply.
	if prev, ok := u.recent.get(cmd.ID); ok {
		u.m.commands.WithLabelValues(cmdLabel(cmd.Cmd), "duplicate").Inc()
		u.publishReply(prev)
		return
	}
	// The replies above are a bounded cache; a command with an expiry (every
	// signed one) is also remembered until then, so a replayed copy never
	// runs again.
	if !cmd.expires.IsZero() {
		if bad := u.remember(cmd); bad != nil {
			u.log.Warn("downlink command refused", "id", bad.ID, "cmd", bad.Cmd, "code", bad.Error.Code, "why", bad.Error.Message)
			u.answer(bad, "", false)
			return
		}
	}
	r := u.execute(ctx, cmd)
	u.answer(r, cmd.ID, true)
}

// answer publishes r, counts it, and remembers it under id when keep.
func (u *Uplink) answer(r *reply, id string, keep bool) {
	result := "ok"
	r.OK = r.Error == nil
	if !r.OK {
		result = r.Error.Code
		if !slices.Contains(knownCodes, result) {
			result = "error"
		}
	}
	u.m.commands.WithLabelValues(cmdLabel(r.Cmd), result).Inc()
	payload, _ := u.event(wire.ReplyType, r)
	if keep {
		u.recent.put(id, payload)
	}
	u.publishReply(payload)
}

func cmdLabel(cmd string) string {
	if slices.Contains(knownCommands, cmd) {
		return cmd
	}
	return "unknown"
}

// publishReply sends a reply on the current connection, if any.
func (u *Uplink) publishReply(payload []byte) {
	c := u.currentClient()
	if c == nil {
		u.log.Warn("command reply dropped: not connected")
		return
	}
	if err := wait(context.Background(), c.Publish(u.topics.Reply, 1, false, payload), u.cfg.WriteTimeout); err != nil {
		u.log.Warn("command reply not delivered", "err", err)
	}
}

// execute carries out a checked command.
func (u *Uplink) execute(ctx context.Context, cmd Command) *reply {
	r := &reply{ID: cmd.ID, Cmd: cmd.Cmd}
	switch cmd.Cmd {
	case wire.CmdPing:
		r.Result = map[string]any{"instance": u.instance, "uptime_seconds": time.Since(u.started).Seconds()}
	case wire.CmdResyncRules:
		if u.cfg.Rules == nil {
			return failReply(cmd.ID, cmd.Cmd, wire.CodeUnsupported, "no rules engine on this gateway yet")
		}
		c := u.currentClient()
		if c == nil {
			return failReply(cmd.ID, cmd.Cmd, wire.CodeFailed, "not connected")
		}
		// Subscribing again to an existing subscription makes the broker
		// send the retained messages once more (MQTT 3.1.1, 3.8.4).
		topics := map[string]byte{u.topics.SiteRules: 1, u.topics.GatewayRules: 1}
		if err := wait(ctx, c.SubscribeMultiple(topics, nil), u.cfg.WriteTimeout); err != nil {
			return failReply(cmd.ID, cmd.Cmd, wire.CodeFailed, "subscribe to the rules topics: %v", err)
		}
		r.Result = map[string]any{"resubscribed": []string{u.topics.SiteRules, u.topics.GatewayRules}}
	default:
		cctx, cancel := context.WithTimeout(ctx, u.cfg.CommandTimeout)
		defer cancel()
		var res any
		var err error
		switch f, ok := u.cfg.Commands[cmd.Cmd]; {
		case ok:
			res, err = f(cctx, cmd.Station, cmd.Args)
		case cmd.Cmd == wire.CmdStatus, cmd.Cmd == wire.CmdSetMode, cmd.Cmd == wire.CmdSetContext, cmd.Cmd == wire.CmdResend:
			res, err = u.gatewayCommand(cctx, cmd)
		default:
			err = &wire.Error{Code: wire.CodeUnsupported, Message: "nothing on this gateway carries out " + cmd.Cmd}
		}
		var we *wire.Error
		switch {
		case err == nil:
			r.Result = res
		case errors.As(err, &we):
			return failReply(cmd.ID, cmd.Cmd, we.Code, "%s", we.Message)
		case errors.Is(err, context.DeadlineExceeded):
			return failReply(cmd.ID, cmd.Cmd, wire.CodeTimeout, "no answer within %v", u.cfg.CommandTimeout)
		default:
			return failReply(cmd.ID, cmd.Cmd, wire.CodeFailed, "%v", err)
		}
		u.log.Info("downlink command done", "id", cmd.ID, "cmd", cmd.Cmd, "station", cmd.Station)
	}
	return r
}

// decodeCommand parses and checks a command. On failure it returns the
// error reply, with as much of the id and cmd as could be read.
func (u *Uplink) decodeCommand(payload []byte) (Command, *reply) {
	var cmd Command
	if len(payload) > u.cfg.MaxCommand {
		cmd.ID, cmd.Cmd = headOf(payload)
		return cmd, failReply(cmd.ID, cmd.Cmd, wire.CodeTooLarge, "%d bytes, more than mqtt.max_command (%d)", len(payload), u.cfg.MaxCommand)
	}
	obj, err := parseObject(payload)
	if err != nil {
		return cmd, failReply("", "", wire.CodeBadJSON, "%v", err)
	}
	// Each field is read from the object by its exact key, the same object
	// the signature is checked over: encoding/json's case-insensitive
	// struct matching could otherwise run a field the signer never saw.
	id, ok := obj["id"].(string)
	c, _ := obj["cmd"].(string)
	cmd.Cmd = clip(c, 64)
	switch {
	case !ok || id == "":
		return cmd, failReply("", cmd.Cmd, wire.CodeMissingID, `"id" must be a non-empty string: the correlation id of the reply`)
	case len(id) > maxCommandID || !utf8.ValidString(id):
		return cmd, failReply("", cmd.Cmd, wire.CodeMissingID, `"id" must be valid UTF-8 of at most %d bytes`, maxCommandID)
	}
	cmd.ID = id
	if v, _ := obj["v"].(json.Number); v != "1" {
		return cmd, failReply(id, cmd.Cmd, wire.CodeUnsupportedVersion, `"v" is %s; this gateway speaks command version 1`, describe(obj["v"]))
	}
	keysRequired := len(u.cfg.CommandKeys) > 0
	if keysRequired {
		if err := verifyCommand(obj, u.cfg.CommandKeys); err != nil {
			return cmd, failReply(id, cmd.Cmd, wire.CodeBadSignature, "%v", err)
		}
	}
	if bad := u.checkAddress(obj, &cmd, keysRequired); bad != nil {
		return cmd, bad
	}
	if _, isString := obj["cmd"].(string); !isString {
		return cmd, failReply(id, cmd.Cmd, wire.CodeUnknownCommand, `"cmd" must be a string, one of %v`, knownCommands)
	}
	if !slices.Contains(knownCommands, c) {
		return cmd, failReply(id, cmd.Cmd, wire.CodeUnknownCommand, "unknown command %q; known: %v", cmd.Cmd, knownCommands)
	}
	if st, present := obj["station"]; present {
		s, ok := st.(string)
		if !ok || !wire.ValidID(s) {
			return cmd, failReply(id, cmd.Cmd, wire.CodeBadArgs, `"station" must be a station id ([A-Za-z0-9._-], 1 to 64 characters)`)
		}
		cmd.Station = s
	}
	if a, present := obj["args"]; present && a != nil {
		if _, ok := a.(map[string]any); !ok {
			return cmd, failReply(id, cmd.Cmd, wire.CodeBadArgs, `"args" must be an object`)
		}
		cmd.Args, _ = marshalCanonical(a)
	}
	return cmd, nil
}

// headOf reads the id and cmd of a command too large to take, if it can
// be done cheaply, so that the refusal still carries them.
func headOf(payload []byte) (id, cmd string) {
	if len(payload) > 1<<20 {
		return "", ""
	}
	var head struct {
		ID  any `json:"id"`
		Cmd any `json:"cmd"`
	}
	json.Unmarshal(payload, &head)
	id, _ = head.ID.(string)
	cmd, _ = head.Cmd.(string)
	return clip(id, maxCommandID), clip(cmd, 64)
}

// checkAddress holds a command to its "to" and "expires", and sets
// cmd.expires. A signature proves who sent a command, not for whom or
// when: a signed command (required) must name its gateway and expire soon,
// so that a copy taken off the broker cannot be replayed elsewhere or
// later. Unsigned commands may carry both, and are held to them.
func (u *Uplink) checkAddress(obj map[string]any, cmd *Command, required bool) *reply {
	self := u.cfg.Site + "/" + u.cfg.Gateway
	if to, present := obj["to"]; present || required {
		if s, _ := to.(string); s != self {
			return failReply(cmd.ID, cmd.Cmd, wire.CodeWrongTarget, `"to" is %s; this gateway is %q`, describe(to), self)
		}
	}
	exp, present := obj["expires"]
	if !present && !required {
		return nil
	}
	s, _ := exp.(string)
	t, err := time.Parse(time.RFC3339, s)
	now := time.Now()
	switch {
	case err != nil:
		return failReply(cmd.ID, cmd.Cmd, wire.CodeExpired, `"expires" is %s; want an RFC 3339 time at most %v ahead`, describe(exp), MaxCommandValidity)
	case !t.After(now):
		return failReply(cmd.ID, cmd.Cmd, wire.CodeExpired, "expired at %s; the gateway's clock says %s", s, now.UTC().Format(time.RFC3339))
	case t.Sub(now) > MaxCommandValidity+commandClockSkew:
		return failReply(cmd.ID, cmd.Cmd, wire.CodeExpired, "expires at %s, more than %v after the gateway's clock (%s)", s, MaxCommandValidity, now.UTC().Format(time.RFC3339))
	}
	cmd.expires = t
	return nil
}

// parseObject decodes exactly one JSON object, keeping numbers as written.
func parseObject(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not JSON: more than one value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object, got %s", describe(v))
	}
	return obj, nil
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "missing or null"
	case json.Number:
		return string(v)
	case string:
		return fmt.Sprintf("the string %q", clip(v, 32))
	case bool:
		return fmt.Sprint(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// CanonicalCommand returns the bytes a command's "sig" covers: the command
// object without "sig", re-encoded with its object keys sorted (by bytes),
// no insignificant white space, numbers exactly as written, and strings
// escaped as Go's encoding/json does with HTML escaping off (", \ and
// control characters; U+2028 and U+2029 as \u2028 and \u2029; invalid
// UTF-8 as U+FFFD). A signer builds the command, signs these bytes with
// Ed25519 and adds "sig" as standard base64 (SignCommand does all that).
func CanonicalCommand(payload []byte) ([]byte, error) {
	obj, err := parseObject(payload)
	if err != nil {
		return nil, err
	}
	delete(obj, "sig")
	return marshalCanonical(obj)
}

// SignCommand returns the command with "sig" set: an Ed25519 signature
// by key over CanonicalCommand(payload).
func SignCommand(payload []byte, key ed25519.PrivateKey) ([]byte, error) {
	obj, err := parseObject(payload)
	if err != nil {
		return nil, err
	}
	return signObject(obj, key)
}

// AddressCommand returns the command with "to" set to the gateway
// ("<site>/<gateway>") and "expires" to the time given, signed with key:
// what a gateway with command keys accepts until then.
func AddressCommand(payload []byte, to string, expires time.Time, key ed25519.PrivateKey) ([]byte, error) {
	obj, err := parseObject(payload)
	if err != nil {
		return nil, err
	}
	obj["to"], obj["expires"] = to, expires.UTC().Format(time.RFC3339)
	return signObject(obj, key)
}

func signObject(obj map[string]any, key ed25519.PrivateKey) ([]byte, error) {
	delete(obj, "sig")
	canon, err := marshalCanonical(obj)
	if err != nil {
		return nil, err
	}
	obj["sig"] = base64.StdEncoding.EncodeToString(ed25519.Sign(key, canon))
	return marshalCanonical(obj)
}

// marshalCanonical encodes v (from parseObject) canonically:
// encoding/json already sorts map keys and keeps json.Number verbatim.
func marshalCanonical(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// verifyCommand checks obj's "sig" against the keys.
func verifyCommand(obj map[string]any, keys []ed25519.PublicKey) error {
	s, ok := obj["sig"].(string)
	if !ok || s == "" {
		return errors.New(`unsigned: this gateway requires "sig", an Ed25519 signature (mqtt.command_keys)`)
	}
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New(`"sig" is not a base64 Ed25519 signature`)
	}
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "sig" {
			rest[k] = v
		}
	}
	canon, err := marshalCanonical(rest)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if ed25519.Verify(k, canon, sig) {
			return nil
		}
	}
	return errors.New("the signature does not verify with any key in mqtt.command_keys")
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// replyCache remembers the replies to the last commands by correlation id.
type replyCache struct {
	ids     []string // ring, oldest first once full
	next    int
	replies map[string][]byte
}

const replyCacheSize = 256

func (c *replyCache) get(id string) ([]byte, bool) {
	r, ok := c.replies[id]
	return r, ok
}

func (c *replyCache) put(id string, payload []byte) {
	if c.replies == nil {
		c.replies = map[string][]byte{}
		c.ids = make([]string, replyCacheSize)
	}
	if old := c.ids[c.next]; old != "" {
		delete(c.replies, old)
	}
	c.ids[c.next] = id
	c.next = (c.next + 1) % replyCacheSize
	c.replies[id] = payload
}

// expiringIDs remembers command ids until their expiry.
type expiringIDs map[string]time.Time

// admit records id until expires, or returns the reply that refuses it: a
// replay of an id still remembered, or too many remembered.
func (e *expiringIDs) admit(id string, expires, now time.Time) *reply {
	if *e == nil {
		*e = expiringIDs{}
	}
	if until, ok := (*e)[id]; ok && until.After(now) {
		return failReply(id, "", wire.CodeReplayed, "command %q already ran; it stays refused until it expires at %s", id, until.UTC().Format(time.RFC3339))
	}
	if len(*e) >= maxUnexpired {
		e.prune(now)
		if len(*e) >= maxUnexpired {
			return failReply(id, "", wire.CodeBusy, "more than %d unexpired commands remembered against replay; send fewer, or with a shorter expiry", maxUnexpired)
		}
	}
	(*e)[id] = expires
	return nil
}

// prune forgets the ids that expired by now.
func (e expiringIDs) prune(now time.Time) {
	for id, until := range e {
		if !until.After(now) {
			delete(e, id)
		}
	}
}

// remember records a command with an expiry against replay, durably when
// Config.State is set: the id is saved before the command runs, so a
// restart does not make a captured copy runnable again. It returns the
// reply that refuses the command instead.
func (u *Uplink) remember(cmd Command) *reply {
	now := time.Now()
	bad := u.unexpired.admit(cmd.ID, cmd.expires, now)
	if bad == nil && u.cfg.State != nil {
		u.unexpired.prune(now)
		b, _ := json.Marshal(u.unexpired)
		if err := u.cfg.State.SaveState(unexpiredKey, b); err != nil {
			delete(u.unexpired, cmd.ID)
			bad = failReply(cmd.ID, "", wire.CodeFailed, "cannot remember the command against replay, so it does not run: %v", err)
		}
	}
	if bad != nil {
		bad.Cmd = cmd.Cmd
	}
	return bad
}

// loadUnexpired restores the ids remembered before a restart.
func (u *Uplink) loadUnexpired() {
	if u.cfg.State == nil {
		return
	}
	b, err := u.cfg.State.LoadState(unexpiredKey)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = json.Unmarshal(b, &u.unexpired)
	}
	if err != nil {
		u.log.Error("commands remembered against replay could not be read; a command that ran before the restart may run again until it expires",
			"err", err)
	}
}
