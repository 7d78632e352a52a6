package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// tailOutput collects what tail writes, safe to read while it runs.
type tailOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *tailOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *tailOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitOutput polls o until it holds want (tail gives no other sign).
func waitOutput(t *testing.T, o *tailOutput, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(o.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v in:\n%s", want, timeout, o.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the output
	}
}

// tailGateway publishes as a gateway would.
type tailGateway struct {
	t      *testing.T
	c      mqtt.Client
	topics wire.Topics
}

func newTailGateway(t *testing.T, b *mosquittotest.Broker) *tailGateway {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("fake-gw").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return &tailGateway{t: t, c: c, topics: wire.TopicsFor("scangw/v1", "plant-t", "gw-t")}
}

func (g *tailGateway) publish(topic string, payload []byte) {
	g.t.Helper()
	if tok := g.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("publish: %v", tok.Error())
	}
}

// publishUntil publishes payload until shown holds. tail gives no sign
// that it subscribed; the same event again is harmless, as tail drops
// duplicates.
func (g *tailGateway) publishUntil(topic string, payload []byte, shown func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !shown() {
		if time.Now().After(deadline) {
			g.t.Fatal("tail never showed the first event")
		}
		g.publish(topic, payload)
		time.Sleep(20 * time.Millisecond) // polling for tail's subscription
	}
}

// scan is the scan event of seq, the same bytes each time it is asked
// for (as a gateway resends it).
func (g *tailGateway) scan(seq uint64, raw string, verdict string, reasons ...wire.Reason) []byte {
	g.t.Helper()
	if reasons == nil {
		reasons = []wire.Reason{}
	}
	b, err := wire.Event{
		ID: "0193-" + raw, Source: wire.StationSource("plant-t", "gw-t", "dock-1"), Type: wire.ScanType,
		Time: time.Date(2026, 11, 27, 6, 33, 50, 110_000_000, time.UTC),
		Data: &wire.ScanData{Seq: seq, Epoch: "ep-1", Station: "dock-1", Mode: "receive", Scanner: "h1", Raw: raw, Verdict: verdict, Reasons: reasons},
	}.Encode()
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

// startTail runs tail with args until the test stops it; stop returns
// its error.
func startTail(t *testing.T, args ...string) (out, errs *tailOutput, stop func() error) {
	out, errs = &tailOutput{}, &tailOutput{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tailCmd(ctx, out, errs, args) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return out, errs, stop
}

// TestTail: tail prints each event once, in arrival order, as a line or
// as the JSON that arrived; warns of a gap on stderr and of its closing;
// and ends cleanly with a summary when its context ends (SIGINT).
func TestTail(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	gw := newTailGateway(t, b)
	scanTopic := gw.topics.Of(wire.ScanStream("dock-1"))
	out, errs, stop := startTail(t, "--broker", b.URL(), "--site", "plant-t")
	jsonOut, _, stopJSON := startTail(t, "--broker", b.URL(), "--json", "--resend-after", "1h")

	first := gw.scan(1, "A-1", wire.Accepted)
	gw.publishUntil(scanTopic, first, func() bool {
		return strings.Contains(out.String(), "#1 ") && strings.Contains(jsonOut.String(), `"seq":1,`)
	})
	gw.publish(scanTopic, gw.scan(2, "A-2\x1b[2J", wire.Rejected, wire.Reason{Code: "gs1.bad_check_digit", Message: "m"}))
	gw.publish(scanTopic, first)
	gw.publish(scanTopic, gw.scan(4, "A-4", wire.Accepted))
	waitOutput(t, errs, "GAP plant-t/gw-t epoch ep-1 seq 3-3: 1 missing", 10*time.Second)
	gw.publish(scanTopic, gw.scan(3, "A-3", wire.Accepted))
	ctxEvent, _ := wire.Event{ID: "c-5", Source: wire.StationSource("plant-t", "gw-t", "dock-1"), Type: wire.ContextType, Time: time.Date(2026, 11, 27, 6, 34, 0, 0, time.UTC),
		Data: &wire.ContextData{Seq: 5, Epoch: "ep-1", Station: "dock-1", Mode: "ship", Context: map[string]string{"order": "PO 7"}}}.Encode()
	gw.publish(gw.topics.Of(wire.EventStream("dock-1")), ctxEvent)
	// Another site's gateway is not for the first tail.
	other := wire.TopicsFor("scangw/v1", "plant-u", "gw-t").Of(wire.ScanStream("dock-1"))
	gw.publish(other, bytes.ReplaceAll(gw.scan(9, "U-9", wire.Accepted), []byte("plant-t"), []byte("plant-u")))
	waitOutput(t, jsonOut, `"seq":9`, 10*time.Second)
	waitOutput(t, out, "#5 ", 10*time.Second)

	if err := stop(); err != nil {
		t.Fatalf("tail: %v", err)
	}
	want := []string{
		`2026-11-27T06:33:50.110Z plant-t/gw-t/dock-1 #1 accepted "A-1"`,
		`2026-11-27T06:33:50.110Z plant-t/gw-t/dock-1 #2 rejected "A-2\x1b[2J" [gs1.bad_check_digit]`,
		`2026-11-27T06:33:50.110Z plant-t/gw-t/dock-1 #4 accepted "A-4"`,
		`2026-11-27T06:33:50.110Z plant-t/gw-t/dock-1 #3 accepted "A-3"`,
		`2026-11-27T06:34:00.000Z plant-t/gw-t/dock-1 #5 context mode=ship order="PO 7"`,
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tail printed:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
	for _, w := range []string{"gap plant-t/gw-t epoch ep-1 seq 3-3 closed after", "(0 resend requests)", "no --key",
		"5 events, ", "0 gaps open, 0 lost"} {
		if !strings.Contains(errs.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs.String())
		}
	}

	if err := stopJSON(); err != nil {
		t.Fatalf("tail --json: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(jsonOut.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("tail --json printed %d lines, want 6 (5 events and another site's):\n%s", len(lines), jsonOut.String())
	}
	for i, seq := range []string{"1", "2", "4", "3", "5", "9"} {
		var ev struct {
			Type string
			Data struct{ Seq json.Number }
		}
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil || string(ev.Data.Seq) != seq {
			t.Errorf("tail --json line %d: %s (%v), want seq %s", i, lines[i], err, seq)
		}
	}
}

// TestTailAsksForResend: with --key, a gap still open after
// --resend-after is asked for with a resend command the gateway can
// verify, addressed to it, for what is missing.
func TestTailAsksForResend(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.Options{})
	gw := newTailGateway(t, b)
	cmds := mosquittotest.Subscribe(t, b, "fake-gw-cmd", gw.topics.Cmd)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600)
	out, errs, stop := startTail(t, "--broker", b.URL(), "--key", keyFile, "--resend-after", "50ms", "--client-id", "tail-test")

	scanTopic := gw.topics.Of(wire.ScanStream("dock-1"))
	gw.publishUntil(scanTopic, gw.scan(1, "A-1", wire.Accepted), func() bool { return strings.Contains(out.String(), "#1 ") })
	gw.publish(scanTopic, gw.scan(4, "A-4", wire.Accepted))
	cmds.WaitCount(1, 10*time.Second)
	m := cmds.Messages()[0]
	canon, err := uplink.CanonicalCommand(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		ID, Cmd, To, Sig string
		Args             struct {
			From, To uint64
			Epoch    string
		}
	}
	json.Unmarshal(m.Payload, &cmd)
	sig, _ := base64.StdEncoding.DecodeString(cmd.Sig)
	if !ed25519.Verify(pub, canon, sig) || cmd.Cmd != wire.CmdResend || cmd.To != "plant-t/gw-t" || cmd.Args.From != 2 || cmd.Args.To != 3 || cmd.Args.Epoch != "ep-1" {
		t.Fatalf("command %s: want a resend of 2-3 in ep-1 for plant-t/gw-t, signed by the key", m.Payload)
	}
	// The gateway's reply and the events it sent again.
	reply, _ := wire.Event{ID: "r-1", Source: wire.GatewaySource("plant-t", "gw-t"), Type: wire.ReplyType, Time: time.Now(),
		Data: &wire.Reply{ID: cmd.ID, Cmd: wire.CmdResend, OK: true, Result: map[string]int{"requeued": 2}}}.Encode()
	gw.publish(gw.topics.Reply, reply)
	gw.publish(scanTopic, gw.scan(2, "A-2", wire.Accepted))
	gw.publish(scanTopic, gw.scan(3, "A-3", wire.Accepted))
	waitOutput(t, errs, "seq 2-3 closed after", 10*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"asked the gateway to resend (request 1, 2 missing)", "command key " + base64.StdEncoding.EncodeToString(pub), "4 events, "} {
		if !strings.Contains(errs.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs.String())
		}
	}
	// Whether a second request left before the reply came depends on the
	// machine's speed (the consumer's tests pin that down); each one
	// announced went out.
	if asked := strings.Count(errs.String(), "asked the gateway to resend"); cmds.Count() != asked {
		t.Errorf("%d resend commands on the broker, %d announced", cmds.Count(), asked)
	}
}

// TestTailFlags: a command line tail cannot take is a usage error (exit
// 2); a bad value names its flag.
func TestTailFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{}, true, "usage: scangw tail"},
		{[]string{"--broker", "tcp://x:1", "--bogus"}, true, "usage: scangw tail"},
		{[]string{"--broker", "tcp://x:1", "extra"}, true, "usage: scangw tail"},
		{[]string{"--broker", "http://x"}, false, "--broker: scheme"},
		{[]string{"--broker", "tcp://x:1", "--site", "a b"}, false, "--site:"},
		{[]string{"--broker", "tcp://x:1", "--prefix", "a/#"}, false, "--prefix:"},
		{[]string{"--broker", "tcp://x:1", "--key", "/nonexistent/key"}, false, "--key /nonexistent/key"},
		{[]string{"--broker", "tcp://x:1", "--ca-file", "/nonexistent/ca"}, false, "--ca-file"},
	} {
		err := tailCmd(context.Background(), &bytes.Buffer{}, &bytes.Buffer{}, tc.args)
		var ue usageError
		if err == nil || errors.As(err, &ue) != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tail %v: %v; want a usage error %v saying %q", tc.args, err, tc.usage, tc.want)
		}
	}
	bin := buildScangw(t)
	for _, args := range [][]string{{"tail"}, {"tail", "--bogus"}} {
		out, errs, code := runExit(t, bin, args...)
		if code != 2 || out != "" || !strings.Contains(errs, "usage: scangw tail") {
			t.Errorf("scangw %v: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, out, errs)
		}
	}
}
