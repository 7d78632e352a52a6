package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

func ruleSet(version int, site string) []byte {
	return fmt.Appendf(nil, `{"schema":1,"version":%d,"issued":"2026-11-01T00:00:00Z","scope":"site","site":%q,
 "deny":[{"serial":"SN-STOLEN-77","reason":"stolen","message":"reported stolen"}]}`, version, site)
}

// TestRuleSetsThroughBroker offers rule sets on the retained site rules
// topic — unsigned, forged, good, then older — and checks that only the
// good one takes effect, that the others are refused with their reason,
// and that a scan it denies gets the bad byte.
func TestRuleSetsThroughBroker(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	httpAddr := freeAddr(t)
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-rules, site: plant-r}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms}
http:    {listen: %q}
log:     {level: warn}
rules:   {keys: [%q]}
stations:
  - id: dock-1
    scanners: [{id: h1, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}]
`, t.TempDir(), broker.URL(), httpAddr, base64.StdEncoding.EncodeToString(pub), line.Path())))
	if err != nil {
		t.Fatal(err)
	}
	replies := mosquittotest.Subscribe(t, broker, "central-replies", "scangw/v1/plant-r/gw-rules/reply")
	startDaemon(t, cfg)

	pubc := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("central-rules"))
	if tok := pubc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pubc.Disconnect(100)
	topic := "scangw/v1/plant-r/rules"
	offer := func(env []byte) {
		t.Helper()
		if tok := pubc.Publish(topic, 1, true, env); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitMetric := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if strings.Contains(httpGet(t, "http://"+httpAddr+"/metrics"), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("metric %s never appeared", want)
			}
			time.Sleep(20 * time.Millisecond) // polling the metrics endpoint
		}
	}
	signed := func(payload []byte, key ed25519.PrivateKey) []byte {
		env, err := rules.Sign(payload, key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	unsigned, err := rules.Unsigned(ruleSet(5, "plant-r"))
	if err != nil {
		t.Fatal(err)
	}
	// Before any set: a stolen serial is plain text and accepted.
	if b, err := line.Send(context.Background(), "SN-STOLEN-77", "\r\n", 20*time.Second); err != nil || b != 0x06 {
		t.Fatalf("before rules: %#x %v", b, err)
	}
	offer(unsigned)
	waitMetric(`scangw_rules_loads_total{result="unsigned",source="mqtt"} 1`)
	offer(signed(ruleSet(6, "plant-r"), forger))
	waitMetric(`scangw_rules_loads_total{result="bad_signature",source="mqtt"} 1`)
	offer(signed(ruleSet(7, "plant-q"), priv))
	waitMetric(`scangw_rules_loads_total{result="wrong_target",source="mqtt"} 1`)
	offer(signed(ruleSet(8, "plant-r"), priv))
	waitMetric(`scangw_rules_loads_total{result="ok",source="mqtt"} 1`)
	offer(signed(ruleSet(3, "plant-r"), priv))
	waitMetric(`scangw_rules_loads_total{result="not_newer",source="mqtt"} 1`)

	// Each refusal was also answered on the reply topic, with its reason.
	wantCodes := []string{"unsigned", "bad_signature", "wrong_target", "not_newer"}
	replies.WaitFor(20*time.Second, "a reply per refused rule set", func(ms []mosquittotest.Message) bool { return len(ms) >= len(wantCodes) })
	for i, m := range replies.Messages()[:len(wantCodes)] {
		if err := schema.CheckMessage(wire.TopicsFor("scangw/v1", "plant-r", "gw-rules"), m.Topic, m.Payload); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		var r struct {
			Data struct {
				ID    string `json:"id"`
				OK    bool   `json:"ok"`
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"data"`
		}
		json.Unmarshal(m.Payload, &r)
		if r.Data.OK || r.Data.Error.Code != wantCodes[i] || r.Data.ID != "rules:"+topic {
			t.Fatalf("reply %d: %s, want error %s", i, m.Payload, wantCodes[i])
		}
	}

	// Set 8 is in force: the stolen serial is now refused, others pass.
	if b, err := line.Send(context.Background(), "SN-STOLEN-77", "\r\n", 20*time.Second); err != nil || b != 0x15 {
		t.Fatalf("stolen serial under set 8: %#x %v, want NAK", b, err)
	}
	if b, err := line.Send(context.Background(), "SN-FINE-01", "\r\n", 20*time.Second); err != nil || b != 0x06 {
		t.Fatalf("other serial under set 8: %#x %v, want ACK", b, err)
	}
}
