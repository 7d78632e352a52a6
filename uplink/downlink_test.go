package uplink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// fakeStations is a working station set (station.Set without devices):
// mode, context, running and scanners per station, checked as the real
// set checks them. Errors a request caused are *wire.Error with their
// reply code. A request for station "slow" waits for its ctx to end.
type fakeStations struct {
	mu    sync.Mutex
	order []string
	byID  map[string]*wire.StationStatus
	calls int // SetMode and SetContext requests
	// release, when set, holds every request until it is closed or the
	// request's ctx ends.
	release chan struct{}
}

// newFakeStations makes running stations in mode receive, without
// scanners.
func newFakeStations(ids ...string) *fakeStations {
	f := &fakeStations{byID: map[string]*wire.StationStatus{}}
	for _, id := range ids {
		f.order = append(f.order, id)
		f.byID[id] = &wire.StationStatus{ID: id, Mode: "receive", Running: true, Scanners: []wire.ScannerStatus{}}
	}
	return f
}

// setScanners replaces what station id reports of its scanners.
func (f *fakeStations) setScanners(id string, scanners ...wire.ScannerStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[id].Scanners = append([]wire.ScannerStatus{}, scanners...)
}

// setRunning sets whether station id's pipeline is up.
func (f *fakeStations) setRunning(id string, running bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[id].Running = running
}

func (f *fakeStations) Status(id string) ([]wire.StationStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "" {
		st, err := f.getLocked(id)
		if err != nil {
			return nil, err
		}
		return []wire.StationStatus{cloneStatus(*st)}, nil
	}
	out := make([]wire.StationStatus, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, cloneStatus(*f.byID[id]))
	}
	return out, nil
}

func (f *fakeStations) SetMode(ctx context.Context, id, mode string) (wire.StationStatus, error) {
	return f.change(ctx, id, func(st *wire.StationStatus) error {
		if !slices.Contains(wire.Modes, mode) {
			return &wire.Error{Code: wire.CodeBadArgs, Message: fmt.Sprintf("unknown station mode %q: want one of %v", mode, wire.Modes)}
		}
		st.Mode = mode
		return nil
	})
}

func (f *fakeStations) SetContext(ctx context.Context, id string, c map[string]string) (wire.StationStatus, error) {
	return f.change(ctx, id, func(st *wire.StationStatus) error {
		for k := range c {
			if k == "" {
				return &wire.Error{Code: wire.CodeBadArgs, Message: "context not accepted: empty key"}
			}
		}
		st.Context = nil
		if len(c) > 0 {
			st.Context = maps.Clone(c)
		}
		return nil
	})
}

// change counts a request, holds it while release is set, and applies
// apply to station id unless it is refused.
func (f *fakeStations) change(ctx context.Context, id string, apply func(*wire.StationStatus) error) (wire.StationStatus, error) {
	f.mu.Lock()
	f.calls++
	release := f.release
	f.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return wire.StationStatus{}, ctx.Err()
		}
	}
	if id == "slow" {
		<-ctx.Done()
		return wire.StationStatus{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.getLocked(id)
	if err != nil {
		return wire.StationStatus{}, err
	}
	next := cloneStatus(*st)
	if err := apply(&next); err != nil {
		return wire.StationStatus{}, err
	}
	*st = next
	return cloneStatus(next), nil
}

func (f *fakeStations) getLocked(id string) (*wire.StationStatus, error) {
	st, ok := f.byID[id]
	if !ok {
		return nil, &wire.Error{Code: wire.CodeUnknownStation, Message: fmt.Sprintf("no station %q on this gateway", id)}
	}
	return st, nil
}

func cloneStatus(st wire.StationStatus) wire.StationStatus {
	st.Context = maps.Clone(st.Context)
	st.Scanners = slices.Clone(st.Scanners)
	return st
}

func (f *fakeStations) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeStations) mode(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id].Mode
}

// state is station id's mode and context, to compare before and after a
// request.
func (f *fakeStations) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(f.byID[id])
	return string(b)
}

// fakeResender is a Resender over an audit window of delivered seqs of
// one epoch; without a window (kept nil) it fails as the buffer does
// when it keeps none.
type fakeResender struct {
	mu    sync.Mutex
	epoch string
	kept  []uint64 // delivered seqs in the window; nil: no window
	calls int
}

func (f *fakeResender) Resend(ctx context.Context, epoch string, from, to uint64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.kept == nil {
		return 0, fmt.Errorf("no audit window is kept: %w", errors.ErrUnsupported)
	}
	if epoch != "" && epoch != f.epoch {
		return 0, nil
	}
	n := 0
	for _, seq := range f.kept {
		if seq >= from && (to == 0 || seq <= to) {
			n++
		}
	}
	return n, nil
}

func (f *fakeResender) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// rulesLog records what Config.Rules got.
type rulesLog struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
}

func (r *rulesLog) rules(topic string, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, topic+" "+string(payload))
	return nil
}

func (r *rulesLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// sender publishes to the broker as the central side does.
func sender(t testing.TB, br *mosquittotest.Broker, id string) func(topic string, payload []byte, retained bool) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect sender: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return func(topic string, payload []byte, retained bool) {
		t.Helper()
		if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s: %v", topic, tok.Error())
		}
	}
}

// replyEvent is a reply as the central side reads it.
type replyEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		ID    string `json:"id"`
		Cmd   string `json:"cmd"`
		OK    bool   `json:"ok"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	} `json:"data"`
}

// nextReply waits for the reply after the first n and holds it to the
// wire contract (topic, type, schema).
func nextReply(t testing.TB, sub *mosquittotest.Subscriber, n int) replyEvent {
	t.Helper()
	sub.WaitCount(n+1, 10*time.Second)
	m := sub.Messages()[n]
	if err := checkContract(m.Topic, m.Payload); err != nil {
		t.Fatalf("reply %s: %v", m.Payload, err)
	}
	var r replyEvent
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCommands sends commands through a real broker, good and bad, and
// checks each reply on the reply topic: the correlation id, ok or the
// error code, and that a refused command changed nothing.
func TestCommands(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	send := sender(t, br, "central")
	// Retained rule sets, there before the gateway connects.
	send("t/site1/rules", []byte(`{"rules":"site"}`), true)
	send("t/site1/gw1/rules", []byte(`{"rules":"gw1"}`), true)
	replies := mosquittotest.Subscribe(t, br, "sub-replies", "t/site1/gw1/reply")
	const cmdTopic = "t/site1/gw1/cmd"
	// A command retained by mistake would run at every connect.
	send(cmdTopic, []byte(`{"v":1,"id":"c-retained","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`), true)
	buf := newMemQueue()
	cfg := testConfig(br.URL(), buf)
	cfg.MaxCommand = 1024
	cfg.CommandTimeout = 300 * time.Millisecond
	stations := newFakeStations("dock-3")
	resender := &fakeResender{epoch: buf.Epoch()} // keeps no audit window
	var rules rulesLog
	cfg.Stations, cfg.Resender, cfg.Rules = stations, resender, rules.rules
	// calls counts what reached the stations or the resender.
	calls := func() int { return stations.ncalls() + resender.ncalls() }
	u, reg, _ := runUplink(t, cfg, buf)
	waitUntil(t, 10*time.Second, "both retained rule sets handed to Rules", func() bool { return rules.count() == 2 })
	if r := nextReply(t, replies, 0); r.Data.ID != "c-retained" || r.Data.OK || r.Data.Error.Code != wire.CodeRetained || calls() != 0 {
		t.Errorf("reply to a retained command %+v, want error %s and nothing done", r.Data, wire.CodeRetained)
	}
	send(cmdTopic, nil, true) // clears it; no reply

	n := 1 // replies so far
	for _, tc := range []struct {
		name    string
		payload string
		id      string // want in the reply
		code    string // "" for ok
		check   func(t *testing.T, r replyEvent)
	}{
		{name: "ping", payload: `{"v":1,"id":"c-ping","cmd":"ping"}`, id: "c-ping", check: func(t *testing.T, r replyEvent) {
			if !strings.Contains(string(r.Data.Result), u.Instance()) {
				t.Errorf("ping result %s lacks the instance %s", r.Data.Result, u.Instance())
			}
		}},
		{name: "unknown command", payload: `{"v":1,"id":"c-unknown","cmd":"reboot"}`, id: "c-unknown", code: wire.CodeUnknownCommand},
		{name: "no command", payload: `{"v":1,"id":"c-nocmd"}`, id: "c-nocmd", code: wire.CodeUnknownCommand},
		{name: "bad JSON", payload: `{"v":1,"id":"c-bad",`, id: "", code: wire.CodeBadJSON},
		{name: "not an object", payload: `["ping"]`, id: "", code: wire.CodeBadJSON},
		{name: "two values", payload: `{"v":1,"id":"a","cmd":"ping"} {}`, id: "", code: wire.CodeBadJSON},
		{name: "oversize", payload: `{"v":1,"id":"c-big","cmd":"set_context","station":"dock-3","args":{"order":"` + strings.Repeat("x", 2000) + `"}}`,
			id: "c-big", code: wire.CodeTooLarge},
		{name: "missing id", payload: `{"v":1,"cmd":"ping"}`, id: "", code: wire.CodeMissingID},
		{name: "id not a string", payload: `{"v":1,"id":7,"cmd":"ping"}`, id: "", code: wire.CodeMissingID},
		{name: "unknown version", payload: `{"v":2,"id":"c-v2","cmd":"ping"}`, id: "c-v2", code: wire.CodeUnsupportedVersion},
		{name: "no version", payload: `{"id":"c-v0","cmd":"ping"}`, id: "c-v0", code: wire.CodeUnsupportedVersion},
		// Unsigned commands need neither "to" nor "expires", but are held
		// to them when they carry them.
		{name: "for another gateway", payload: `{"v":1,"id":"c-gw2","to":"site1/gw2","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`,
			id: "c-gw2", code: wire.CodeWrongTarget},
		{name: "expired", payload: `{"v":1,"id":"c-old","expires":"2020-01-01T00:00:00Z","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`,
			id: "c-old", code: wire.CodeExpired},
		{name: "unknown station", payload: `{"v":1,"id":"c-nost","cmd":"set_mode","station":"dock-9","args":{"mode":"ship"}}`,
			id: "c-nost", code: wire.CodeUnknownStation},
		{name: "bad station id", payload: `{"v":1,"id":"c-badst","cmd":"set_mode","station":"dock/3","args":{"mode":"ship"}}`,
			id: "c-badst", code: wire.CodeBadArgs},
		{name: "args not an object", payload: `{"v":1,"id":"c-badargs","cmd":"set_mode","station":"dock-3","args":"ship"}`,
			id: "c-badargs", code: wire.CodeBadArgs},
		{name: "set mode", payload: `{"v":1,"id":"c-mode","cmd":"set_mode","station":"dock-3","args":{"mode":"ship"}}`, id: "c-mode",
			check: func(t *testing.T, r replyEvent) {
				if stations.mode("dock-3") != "ship" {
					t.Errorf("mode of dock-3 = %q after set_mode, want ship", stations.mode("dock-3"))
				}
			}},
		{name: "status", payload: `{"v":1,"id":"c-status","cmd":"status"}`, id: "c-status", check: func(t *testing.T, r replyEvent) {
			want := `{"epoch":"` + buf.Epoch() + `","backlog":0,"next_seq":1,"stations":[{"id":"dock-3","mode":"ship","running":true,"scanners":[]}]}`
			if string(r.Data.Result) != want {
				t.Errorf("status result %s, want %s", r.Data.Result, want)
			}
		}},
		{name: "station status", payload: `{"v":1,"id":"c-ststatus","cmd":"status","station":"dock-3"}`, id: "c-ststatus", check: func(t *testing.T, r replyEvent) {
			if want := `{"id":"dock-3","mode":"ship","running":true,"scanners":[]}`; string(r.Data.Result) != want {
				t.Errorf("station status result %s, want %s", r.Data.Result, want)
			}
		}},
		{name: "station too slow", payload: `{"v":1,"id":"c-slow","cmd":"set_context","station":"slow","args":{}}`, id: "c-slow", code: wire.CodeTimeout},
		{name: "resend", payload: `{"v":1,"id":"c-resend","cmd":"resend","args":{"from":10}}`, id: "c-resend", code: wire.CodeNoAuditWindow},
		{name: "resend with an unknown arg", payload: `{"v":1,"id":"c-resend-args","cmd":"resend","args":{"from_seq":10}}`, id: "c-resend-args", code: wire.CodeBadArgs},
		{name: "resync rules", payload: `{"v":1,"id":"c-resync","cmd":"resync_rules"}`, id: "c-resync", check: func(t *testing.T, r replyEvent) {
			waitUntil(t, 10*time.Second, "the retained rule sets again", func() bool { return rules.count() == 4 })
		}},
		{name: "repeated id", payload: `{"v":1,"id":"c-ping","cmd":"ping"}`, id: "c-ping", check: func(t *testing.T, r replyEvent) {
			first := nextReply(t, replies, 1)
			if r.ID != first.ID {
				t.Errorf("repeated command got reply event %s, want the first reply %s again", r.ID, first.ID)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls()
			state := stations.state("dock-3")
			send(cmdTopic, []byte(tc.payload), false)
			r := nextReply(t, replies, n)
			n++
			if r.Type != wire.ReplyType || r.Data.ID != tc.id {
				t.Fatalf("reply %+v, want type %s for id %q", r, wire.ReplyType, tc.id)
			}
			switch {
			case tc.code == "" && (!r.Data.OK || r.Data.Error != nil):
				t.Errorf("reply %+v, want ok", r.Data)
			case tc.code != "" && (r.Data.OK || r.Data.Error == nil || r.Data.Error.Code != tc.code || r.Data.Error.Message == ""):
				t.Errorf("reply %+v (error %+v), want error %s with a message", r.Data, r.Data.Error, tc.code)
			}
			if tc.code != "" && tc.code != wire.CodeUnknownStation && tc.code != wire.CodeTimeout && tc.code != wire.CodeNoAuditWindow {
				if calls() != before {
					t.Errorf("a refused command reached the stations or the resender")
				}
			}
			if tc.code != "" && stations.state("dock-3") != state {
				t.Errorf("a refused command changed dock-3 from %s to %s", state, stations.state("dock-3"))
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	for _, c := range []struct {
		cmd, result string
		want        float64
	}{
		{"ping", "ok", 1}, {"ping", "duplicate", 1}, {"unknown", "unknown_command", 2}, {"unknown", "bad_json", 3},
		{"set_context", "too_large", 1}, {"set_mode", "unknown_station", 1}, {"set_mode", "ok", 1},
		{"resend", "no_audit_window", 1}, {"resend", "bad_args", 1}, {"set_mode", "retained", 1}, {"set_context", "timeout", 1},
		{"status", "ok", 2},
	} {
		if got := metricValue(t, reg, "scangw_mqtt_commands_total", "cmd", c.cmd, "result", c.result); got != c.want {
			t.Errorf(`scangw_mqtt_commands_total{cmd=%q,result=%q} = %v, want %v`, c.cmd, c.result, got, c.want)
		}
	}
}

// TestSignedCommands requires commands to be signed, addressed to this
// gateway and about to expire: such a command runs; an unsigned, forged or
// altered one gets bad_signature, one for another gateway wrong_target,
// one expired, too long-lived or without an expiry expired.
func TestSignedCommands(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	br := mosquittotest.Start(t, mosquittotest.Options{})
	send := sender(t, br, "central")
	replies := mosquittotest.Subscribe(t, br, "sub-replies", "t/site1/gw1/reply")
	buf := newMemQueue()
	cfg := testConfig(br.URL(), buf)
	cfg.CommandKeys = []ed25519.PublicKey{pub}
	stations := newFakeStations("dock-3")
	cfg.Stations = stations
	u, _, _ := runUplink(t, cfg, buf)
	waitUntil(t, 10*time.Second, "connected", u.Connected)

	sign := func(payload string, key ed25519.PrivateKey) string {
		b, err := SignCommand([]byte(payload), key)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	soon := at(5 * time.Minute)
	// addressed adds "to" and "expires" to a command object.
	addressed := func(to, expires, rest string) string {
		return fmt.Sprintf(`{"to":%q,"expires":%q,%s`, to, expires, strings.TrimPrefix(rest, "{"))
	}
	// The canonical form, written out by hand: a signer in any language
	// must produce exactly these bytes.
	canon := `{"args":{"mode":"ship"},"cmd":"set_mode","expires":"` + soon + `","id":"s-hand","station":"dock-3","to":"site1/gw1","v":1}`
	got, err := CanonicalCommand([]byte(`{ "v": 1, "to": "site1/gw1", "station": "dock-3", "id": "s-hand", "cmd": "set_mode", "args": { "mode": "ship" }, "expires": "` + soon + `", "sig": "x" }`))
	if err != nil || string(got) != canon {
		t.Fatalf("CanonicalCommand = %s, %v; want %s", got, err, canon)
	}
	handSig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(canon)))
	signedPing := sign(addressed("site1/gw1", soon, `{"v":1,"id":"s-ping","cmd":"ping"}`), priv)

	for i, tc := range []struct {
		name, payload, id, code string
	}{
		{"signed", signedPing, "s-ping", ""},
		{"signed by hand, other key order and spacing",
			`{"sig": "` + handSig + `", "cmd": "set_mode", "v": 1, "expires": "` + soon + `", "id": "s-hand", "station": "dock-3", "args": {"mode": "ship"}, "to": "site1/gw1"}`, "s-hand", ""},
		{"unsigned", addressed("site1/gw1", soon, `{"v":1,"id":"s-unsigned","cmd":"ping"}`), "s-unsigned", wire.CodeBadSignature},
		{"signed by another key", sign(addressed("site1/gw1", soon, `{"v":1,"id":"s-forged","cmd":"ping"}`), other), "s-forged", wire.CodeBadSignature},
		{"altered after signing", strings.Replace(sign(addressed("site1/gw1", soon, `{"v":1,"id":"s-altered","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`), priv),
			`"count"`, `"return"`, 1), "s-altered", wire.CodeBadSignature},
		{"field added after signing", strings.Replace(signedPing, `"id":"s-ping"`, `"id":"s-added","station":"dock-3"`, 1), "s-added", wire.CodeBadSignature},
		{"signature not base64", `{"v":1,"id":"s-garbage","cmd":"ping","sig":"!!"}`, "s-garbage", wire.CodeBadSignature},
		{"signed for another gateway", sign(addressed("site1/gw2", soon, `{"v":1,"id":"s-gw2","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`), priv), "s-gw2", wire.CodeWrongTarget},
		{"signed without to", sign(`{"v":1,"id":"s-noto","expires":"`+soon+`","cmd":"ping"}`, priv), "s-noto", wire.CodeWrongTarget},
		{"signed, expired", sign(addressed("site1/gw1", at(-time.Minute), `{"v":1,"id":"s-old","cmd":"set_mode","station":"dock-3","args":{"mode":"count"}}`), priv), "s-old", wire.CodeExpired},
		{"signed, valid for too long", sign(addressed("site1/gw1", at(time.Hour), `{"v":1,"id":"s-long","cmd":"ping"}`), priv), "s-long", wire.CodeExpired},
		{"signed, expiry not a time", sign(addressed("site1/gw1", "tomorrow", `{"v":1,"id":"s-when","cmd":"ping"}`), priv), "s-when", wire.CodeExpired},
		{"signed without expires", sign(`{"v":1,"id":"s-noexp","to":"site1/gw1","cmd":"ping"}`, priv), "s-noexp", wire.CodeExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := stations.state("dock-3")
			send("t/site1/gw1/cmd", []byte(tc.payload), false)
			r := nextReply(t, replies, i)
			if r.Data.ID != tc.id {
				t.Fatalf("reply for id %q, want %q", r.Data.ID, tc.id)
			}
			switch {
			case tc.code == "" && !r.Data.OK:
				t.Errorf("reply %+v (error %+v), want ok", r.Data, r.Data.Error)
			case tc.code != "" && (r.Data.OK || r.Data.Error.Code != tc.code):
				t.Errorf("reply %+v (error %+v), want error %s", r.Data, r.Data.Error, tc.code)
			}
			if tc.code != "" && stations.state("dock-3") != state {
				t.Errorf("a refused command changed dock-3 from %s to %s", state, stations.state("dock-3"))
			}
		})
	}
	if stations.mode("dock-3") != "ship" {
		t.Errorf("mode %q, want ship from the hand-signed command", stations.mode("dock-3"))
	}
}

// TestSignedCommandReplay replays a signed command after its first reply
// left the reply cache, and again after the gateway restarted: both times
// it is refused as replayed and does not run again. A gateway that cannot
// save the id does not run the command.
func TestSignedCommandReplay(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stations := newFakeStations("dock-3")
	log, logs := captureLogger(t)
	// start is the gateway starting: a new Uplink on the same state.
	start := func(state StateStore) (*Uplink, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		u := New(Config{CommandKeys: []ed25519.PublicKey{pub}, Stations: stations, State: state, TopicPrefix: "t", Site: "site1", Gateway: "gw1"},
			nil, log, reg)
		u.loadUnexpired() // as Run's downlink does first
		return u, reg
	}
	run := func(u *Uplink, payload string) {
		b, err := SignCommand([]byte(payload), priv)
		if err != nil {
			t.Fatal(err)
		}
		u.command(context.Background(), downMsg{topic: u.topics.Cmd, payload: b})
	}
	exp := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	setMode := func(id string) string {
		return `{"v":1,"to":"site1/gw1","expires":"` + exp + `","id":"` + id + `","cmd":"set_mode","station":"dock-3","args":{"mode":"ship"}}`
	}
	replayed := func(reg prometheus.Gatherer) float64 {
		return metricValue(t, reg, "scangw_mqtt_commands_total", "cmd", "set_mode", "result", wire.CodeReplayed)
	}

	// The real buffer: the point is that the ids survive a restart on
	// disk, and that its "nothing saved yet" reads as none.
	buf := openBuffer(t)
	u, reg := start(buf)
	if strings.Contains(logs.String(), "could not be read") {
		t.Errorf("a fresh buffer's missing state was logged as unreadable:\n%s", logs)
	}
	run(u, setMode("m1"))
	for i := range replyCacheSize {
		run(u, fmt.Sprintf(`{"v":1,"to":"site1/gw1","expires":%q,"id":"p%d","cmd":"ping"}`, exp, i))
	}
	run(u, setMode("m1"))
	if n := stations.ncalls(); n != 1 || replayed(reg) != 1 {
		t.Errorf("the station set ran %d times and %v replays were refused, want once and 1", n, replayed(reg))
	}

	u, reg = start(buf)
	run(u, setMode("m1"))
	if n := stations.ncalls(); n != 1 || replayed(reg) != 1 {
		t.Errorf("after a restart: the station set ran %d times and %v replays were refused, want once and 1", n, replayed(reg))
	}

	u, reg = start(failingState{})
	run(u, setMode("m2"))
	if n := stations.ncalls(); n != 1 || metricValue(t, reg, "scangw_mqtt_commands_total", "cmd", "set_mode", "result", wire.CodeFailed) != 1 {
		t.Errorf("with the id unsaved: the station set ran %d times, want once (not for m2), and m2 answered failed", n)
	}

	var ids expiringIDs
	now := time.Now()
	if r := ids.admit("a", now.Add(time.Minute), now); r != nil {
		t.Fatalf("first admit: %+v", r.Error)
	}
	if r := ids.admit("a", now.Add(time.Minute), now.Add(59*time.Second)); r == nil || r.Error.Code != wire.CodeReplayed {
		t.Errorf("admit within the expiry = %+v, want replayed", r)
	}
	if r := ids.admit("a", now.Add(2*time.Minute), now.Add(time.Minute)); r != nil {
		t.Errorf("admit once the first expired = %+v, want admitted", r.Error)
	}
	for i := range maxUnexpired - 1 {
		if r := ids.admit(fmt.Sprint(i), now.Add(time.Minute), now); r != nil {
			t.Fatalf("admit %d: %+v", i, r.Error)
		}
	}
	if r := ids.admit("full", now.Add(time.Minute), now); r == nil || r.Error.Code != wire.CodeBusy {
		t.Errorf("admit past the bound = %+v, want busy", r)
	}
	if r := ids.admit("full", now.Add(2*time.Minute), now.Add(90*time.Second)); r != nil {
		t.Errorf("admit past the bound once the others expired = %+v, want admitted", r.Error)
	}
}

// TestDownlinkNeverBlocksRouter holds the stations: meanwhile scans keep
// flowing and the connection stays up, a flood of commands overflows the
// bounded queue (counted, never waited for), and once released the held
// command is answered.
func TestDownlinkNeverBlocksRouter(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	send := sender(t, br, "central")
	replies := mosquittotest.Subscribe(t, br, "sub-replies", "t/site1/gw1/reply")
	scans := mosquittotest.Subscribe(t, br, "sub-scans", scanFilter)
	buf := newMemQueue()
	cfg := testConfig(br.URL(), buf)
	cfg.KeepAlive = time.Second // a blocked router would miss PINGRESPs
	cfg.CommandTimeout = time.Minute
	stations := newFakeStations("dock-3")
	stations.release = make(chan struct{})
	cfg.Stations = stations
	u, reg, _ := runUplink(t, cfg, buf)
	waitUntil(t, 10*time.Second, "connected", u.Connected)

	send("t/site1/gw1/cmd", []byte(`{"v":1,"id":"held","cmd":"set_mode","station":"dock-3","args":{"mode":"ship"}}`), false)
	waitUntil(t, 10*time.Second, "the stations to be asked", func() bool { return stations.ncalls() == 1 })
	for i := range inboxSize + 20 {
		send("t/site1/gw1/cmd", fmt.Appendf(nil, `{"v":1,"id":"flood-%d","cmd":"ping"}`, i), false)
	}
	waitUntil(t, 10*time.Second, "dropped downlink messages", func() bool {
		return metricValue(t, reg, "scangw_mqtt_downlink_dropped_total") > 0
	})
	mustAppend(t, buf, 100)
	var got arrivals
	got.waitAll(t, scans, 100, deliveryTimeout)
	// Three keepalive periods with the stations still held.
	start := time.Now()
	waitUntil(t, 10*time.Second, "3s", func() bool { return time.Since(start) > 3*cfg.KeepAlive })
	if n := metricValue(t, reg, "scangw_mqtt_reconnects_total"); n != 0 || !u.Connected() {
		t.Fatalf("%v reconnects while the stations were held, connected %v; want none", n, u.Connected())
	}

	close(stations.release)
	replies.WaitFor(10*time.Second, "the held command's reply", func(msgs []mosquittotest.Message) bool {
		return slices.ContainsFunc(msgs, func(m mosquittotest.Message) bool { return strings.Contains(string(m.Payload), `"id":"held"`) })
	})
	dropped := int(metricValue(t, reg, "scangw_mqtt_downlink_dropped_total"))
	replies.WaitCount(1+inboxSize+20-dropped, 10*time.Second)
}

// failingState is a StateStore whose disk fails.
type failingState struct{}

func (failingState) LoadState(key string) ([]byte, error) {
	return nil, fmt.Errorf("no state %s: %w", key, fs.ErrNotExist)
}

func (failingState) SaveState(string, []byte) error { return errors.New("disk full") }
