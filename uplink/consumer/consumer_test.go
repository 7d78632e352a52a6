package consumer

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
)

func TestValidate(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	ok := Config{Broker: "tcp://127.0.0.1:1883", ClientID: "central-1", OnEvent: func(Event) {}}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // fields named in the error; none: valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"signed", func(c *Config) { c.SignKey = key }, nil},
		{"shared", func(c *Config) { c.Shared = "central" }, nil},
		{"clean session without id", func(c *Config) { c.ClientID, c.CleanSession = "", true }, nil},
		{"every field bad", func(c *Config) {
			*c = Config{Broker: "http://x", TopicPrefix: "a/#", Site: "plant a", Gateway: "gw/1", Shared: "a/b",
				SignKey: key[:10], ResendAfter: -time.Second, ResendMax: -2 * time.Second}
		}, []string{"Broker", "ClientID", "TopicPrefix", "Site", "Gateway", "Shared", "SignKey", "SignKey", "ResendAfter", "ResendMax", "OnEvent"}},
		{"no host", func(c *Config) { c.Broker = "tcp://" }, []string{"Broker"}},
		{"prefix ends with /", func(c *Config) { c.TopicPrefix = "scangw/" }, []string{"TopicPrefix"}},
		{"shared and signed", func(c *Config) { c.Shared, c.SignKey = "g", key }, []string{"SignKey"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			_, err := New(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("error does not name %s:\n%v", f, err)
				}
			}
		})
	}
}

func TestFilters(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{TopicPrefix: "scangw/v1"}, []string{"scangw/v1/+/+/scans/#", "scangw/v1/+/+/events/#", "scangw/v1/+/+/status", "scangw/v1/+/+/reply"}},
		{Config{TopicPrefix: "p", Site: "plant-a", Gateway: "gw-1"}, []string{"p/plant-a/gw-1/scans/#", "p/plant-a/gw-1/events/#", "p/plant-a/gw-1/status", "p/plant-a/gw-1/reply"}},
		{Config{TopicPrefix: "p", Site: "plant-a", Shared: "central"}, []string{"$share/central/p/plant-a/+/scans/#", "$share/central/p/plant-a/+/events/#"}},
	} {
		got := tc.cfg.filters()
		if len(got) != len(tc.want) {
			t.Errorf("%+v: filters %v, want %v", tc.cfg, got, tc.want)
		}
		for _, f := range tc.want {
			if got[f] != 1 {
				t.Errorf("%+v: filters %v lack %s at QoS 1", tc.cfg, got, f)
			}
		}
	}
}

// newFed is a Consumer fed by hand through its paho handler.
func newFed(t *testing.T, shared string) (*Consumer, *[]Event, *[]Gap) {
	var events []Event
	var gaps []Gap
	c, err := New(Config{
		Broker: "tcp://127.0.0.1:1", ClientID: "central-test", Shared: shared,
		OnEvent: func(e Event) { events = append(events, e) },
		OnGap:   func(g Gap) { gaps = append(gaps, g) },
		Log:     slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, &events, &gaps
}

// TestHandle runs messages through the handler paho calls: events are
// decoded and delivered once each, duplicates (the same payload again,
// as a gateway's resend sends it) dropped, and what is not an event of
// the contract refused and counted.
func TestHandle(t *testing.T) {
	c, events, gaps := newFed(t, "")
	topic := "scangw/v1/plant-a/gw-1/scans/dock-1"
	msgs := [][]byte{
		encodeScan(t, "plant-a", "gw-1", "dock-1", 1, "e1", "A-1"),
		encodeScan(t, "plant-a", "gw-1", "dock-1", 3, "e1", "A-3"),
	}
	dup := msgs[0]
	for _, m := range [][]byte{msgs[0], msgs[1], dup, []byte(`{"specversion":"1.0"}`), []byte("not json")} {
		c.handle(nil, fakeMessage{topic: topic, payload: m})
	}
	c.handle(nil, fakeMessage{topic: "scangw/v1/plant-a/gw-1/indicator/dock-1", payload: msgs[0]})
	if len(*events) != 2 || (*events)[0].Seq != 1 || (*events)[1].Seq != 3 {
		t.Fatalf("delivered %+v, want seqs 1 and 3", *events)
	}
	e := (*events)[1]
	var d wire.ScanData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Raw != "A-3" || e.Site != "plant-a" || e.Gateway != "gw-1" || e.Station != "dock-1" ||
		e.Type != wire.ScanType || !e.Time.Equal(t0) || e.Epoch != "e1" || !bytes.Equal(e.Payload, msgs[1]) {
		t.Errorf("event %+v (data %+v, %v)", e, d, err)
	}
	if len(*gaps) != 1 || (*gaps)[0].From != 2 || (*gaps)[0].To != 2 {
		t.Errorf("gaps %+v, want 2-2", *gaps)
	}
	st := c.Stats()
	if st.Events != 2 || st.Duplicates != 1 || st.Refused != 3 || st.OpenGaps != 1 {
		t.Errorf("stats %+v, want 2 events, 1 duplicate, 3 refused, 1 gap open", st)
	}
}

// TestSharedPassesEverything: a member of a shared subscription cannot
// know what other members got, so it delivers every event and reports no
// gap.
func TestSharedPassesEverything(t *testing.T) {
	c, events, gaps := newFed(t, "central")
	topic := "scangw/v1/plant-a/gw-1/scans/dock-1"
	one := encodeScan(t, "plant-a", "gw-1", "dock-1", 1, "e1", "A-1")
	for _, m := range [][]byte{one, encodeScan(t, "plant-a", "gw-1", "dock-1", 5, "e1", "A-5"), one} {
		c.handle(nil, fakeMessage{topic: topic, payload: m})
	}
	if len(*events) != 3 || len(*gaps) != 0 {
		t.Fatalf("%d events, gaps %+v; want all 3 delivered and no gap", len(*events), *gaps)
	}
}

// TestResendCommand: the request is what a gateway with the key's public
// half in mqtt.command_keys accepts: a resend of the range and epoch,
// addressed to it, dated, and signed over the canonical form.
func TestResendCommand(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	expires := t0.Add(commandTTL)
	b, err := resendCommand(ask{id: "resend-1", site: "plant-a", gateway: "gw-1", epoch: "e1", from: 3, to: 9}, key, expires)
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		V       int    `json:"v"`
		ID      string `json:"id"`
		Cmd     string `json:"cmd"`
		To      string `json:"to"`
		Expires string `json:"expires"`
		Sig     string `json:"sig"`
		Args    struct {
			From, To uint64
			Epoch    string
		} `json:"args"`
	}
	if err := json.Unmarshal(b, &cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.V != 1 || cmd.ID != "resend-1" || cmd.Cmd != wire.CmdResend || cmd.To != "plant-a/gw-1" || cmd.Expires != expires.Format(time.RFC3339) ||
		cmd.Args.From != 3 || cmd.Args.To != 9 || cmd.Args.Epoch != "e1" {
		t.Fatalf("command %s", b)
	}
	canon, err := uplink.CanonicalCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(cmd.Sig)
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), canon, sig) {
		t.Fatalf("signature does not verify over %s", canon)
	}
}

func TestParse(t *testing.T) {
	scan := encodeScan(t, "plant-a", "gw-1", "dock-1", 7, "e1", "A-7")
	status := `{"specversion":"1.0","id":"s1","source":"scangw://plant-a/gw-1","type":"io.scangw.status.v1","time":"2026-11-27T06:00:00Z","datacontenttype":"application/json","data":{"state":"online","epoch":"e2","instance":"i"}}`
	replyOK := `{"specversion":"1.0","id":"r1","source":"scangw://plant-a/gw-1","type":"io.scangw.reply.v1","time":"2026-11-27T06:00:00Z","datacontenttype":"application/json","data":{"id":"resend-1","cmd":"resend","ok":true,"result":{"requeued":4}}}`
	replyErr := `{"specversion":"1.0","id":"r2","source":"scangw://plant-a/gw-1","type":"io.scangw.reply.v1","time":"2026-11-27T06:00:00Z","datacontenttype":"application/json","data":{"id":"resend-2","cmd":"resend","ok":false,"error":{"code":"no_audit_window","message":"m"}}}`
	base := "scangw/v1/plant-a/gw-1/"
	for _, tc := range []struct {
		name, topic, payload string
		want                 string // "" for a refusal
	}{
		{"scan", base + "scans/dock-1", string(scan), "event 7 e1 dock-1"},
		{"status", base + "status", status, "status online e2"},
		{"reply ok", base + "reply", replyOK, "reply resend-1 true 4"},
		{"reply error", base + "reply", replyErr, "reply resend-2 false -1 no_audit_window"},
		{"scan on events", base + "events/dock-1", string(scan), ""},
		{"scan of another station", base + "scans/dock-2", string(scan), ""},
		{"other prefix", "other/plant-a/gw-1/scans/dock-1", string(scan), ""},
		{"indicator", base + "indicator/dock-1", string(scan), ""},
		{"deep topic", base + "scans/dock-1/x", string(scan), ""},
		{"no seq", base + "scans/dock-1", strings.Replace(string(scan), `"seq":7,`, "", 1), ""},
		{"seq 0", base + "scans/dock-1", strings.Replace(string(scan), `"seq":7`, `"seq":0`, 1), ""},
		{"seq negative", base + "scans/dock-1", strings.Replace(string(scan), `"seq":7`, `"seq":-7`, 1), ""},
		{"no epoch", base + "scans/dock-1", strings.Replace(string(scan), `"epoch":"e1"`, `"epoch":""`, 1), ""},
		{"bad time", base + "scans/dock-1", strings.Replace(string(scan), `"time":"2026`, `"time":"x2026`, 1), ""},
		{"spec 0.3", base + "scans/dock-1", strings.Replace(string(scan), `"1.0"`, `"0.3"`, 1), ""},
		{"trailing garbage", base + "scans/dock-1", string(scan) + "x", ""},
		{"new field", base + "scans/dock-1", strings.Replace(string(scan), `"seq":7`, `"seq":7,"weight_kg":1.5`, 1), "event 7 e1 dock-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parse(testPrefix, tc.topic, []byte(tc.payload))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(m); got != tc.want {
				t.Fatalf("parsed as %q, want %q", got, tc.want)
			}
		})
	}
}

func describe(m message) string {
	switch m.kind {
	case kindEvent:
		return "event " + itoa(m.event.Seq) + " " + m.event.Epoch + " " + m.event.Station
	case kindStatus:
		return "status " + m.state + " " + m.epoch
	case kindReply:
		s := "reply " + m.reply.id + " " + map[bool]string{true: "true", false: "false"}[m.reply.ok]
		if m.reply.requeued < 0 {
			s += " -1"
		} else {
			s += " " + itoa(uint64(m.reply.requeued))
		}
		if m.reply.code != "" {
			s += " " + m.reply.code
		}
		return s
	}
	return "?"
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
