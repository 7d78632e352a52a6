package configs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestShippedFilesLoad is the promise that every shipped config keeps
// loading as features arrive (DESIGN.md, "Compatible").
func TestShippedFilesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %v, want at least example.yaml and full.yaml", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestExample(t *testing.T) {
	c, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Gateway: Gateway{ID: "gw-dock-01", Site: "plant-a"},
		Buffer:  Buffer{Dir: "/var/lib/scangw", MaxScans: 5_000_000, MaxBytes: 4 << 30, MinFree: 256 << 20, HighWater: 0.8, SeenRetention: Duration(400 * 24 * time.Hour)},
		MQTT: MQTT{
			Broker:         "tcp://127.0.0.1:1883",
			TopicPrefix:    "scangw/v1",
			ClientID:       "scangw-gw-dock-01",
			Inflight:       20,
			KeepAlive:      Duration(30 * time.Second),
			ConnectTimeout: Duration(10 * time.Second),
			WriteTimeout:   Duration(10 * time.Second),
			ReconnectMin:   Duration(500 * time.Millisecond),
			ReconnectMax:   Duration(60 * time.Second),
			MaxPayload:     64 << 10,
			Heartbeat:      Duration(30 * time.Second),
			MaxCommand:     16 << 10,
		},
		HTTP:  HTTP{Listen: "127.0.0.1:9754", Open: []string{"/metrics", "/healthz", "/readyz"}},
		Log:   Log{Level: "info", Format: "text"},
		EPCIS: EPCIS{EPCForm: "dl"},
		Stations: []Station{{
			ID:             "dock-3",
			Mode:           "receive",
			MinLength:      1,
			MaxLength:      4096,
			DocumentSignal: "good",
			Aggregation:    Aggregation{MaxChildren: 1000},
			Assign:         Assign{VerifyTimeout: Duration(30 * time.Second)},
			Scanners: []Scanner{{
				ID:         "handheld-1",
				Type:       "serial",
				Port:       "/dev/ttyACM0",
				Baud:       9600,
				Terminator: "\r\n",
				MaxFrame:   4096,
				Feedback:   Feedback{Good: "\x06", Bad: "\x15", Warn: "\x06"},
				Protocol:   "wedge",
				Layout:     "us",
				Gap:        Duration(300 * time.Millisecond),
				Framing:    "terminator",
			}},
		}},
	}
	assertConfig(t, c, &want)
}

// TestFullShowsDefaults keeps full.yaml honest: its first station and the
// global keys must spell out exactly the defaults a minimal config gets.
func TestFullShowsDefaults(t *testing.T) {
	full, err := Load("full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	min, err := Parse([]byte(`
gateway: {id: gw-dock-01, site: plant-a}
stations:
  - id: dock-3
    scanners: [{id: handheld-1, port: /dev/ttyACM0}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := *full
	got.Stations = got.Stations[:1]
	assertConfig(t, &got, min)
	if len(full.Stations) != 2 {
		t.Errorf("full.yaml has %d stations, want 2", len(full.Stations))
	}
}

func TestExplicitEmpty(t *testing.T) {
	const base = `
gateway: {id: g, site: s}
stations:
  - id: st
    scanners:
      - {id: a, port: /dev/ttyS0, feedback: {good: "\x06", warn: ""}}
      - {id: b, port: /dev/ttyS1, feedback: {good: "\x06"}, terminator: ~}
`
	c, err := Parse([]byte(base + `http: {listen: ""}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Stations[0].Scanners[0], c.Stations[0].Scanners[1]
	if c.HTTP.Listen != "" {
		t.Errorf(`http.listen = %q, want "" (disabled)`, c.HTTP.Listen)
	}
	if a.Feedback.Warn != "" {
		t.Errorf(`explicit warn "" = %q, want ""`, a.Feedback.Warn)
	}
	if b.Feedback.Warn != "\x06" {
		t.Errorf("missing warn = %q, want good's %q", b.Feedback.Warn, "\x06")
	}
	if b.Terminator != "\r\n" {
		t.Errorf("null terminator = %q, want the default", b.Terminator)
	}

	c, err = Parse([]byte(base + "http: {listen: ~}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != defaultHTTPListen {
		t.Errorf("null http.listen = %q, want the default %q", c.HTTP.Listen, defaultHTTPListen)
	}
}

// minimal is the smallest valid config; bad cases below change one thing.
const minimal = `
gateway: {id: gw1, site: s1}
stations:
  - id: st1
    scanners:
      - {id: sc1, port: /dev/ttyACM0}
`

func TestMinimal(t *testing.T) {
	if _, err := Parse([]byte(minimal)); err != nil {
		t.Fatal(err)
	}
}

// TestSerialMatch covers the serial scanners found by match instead of
// port: vid (with or without pid, serial, interface) or path is enough.
func TestSerialMatch(t *testing.T) {
	for _, tc := range []struct{ name, scanner string }{
		{"vid and pid", "match: {vid: 0x0c2e, pid: 0x0b61}"},
		{"vid, pid and serial", "match: {vid: 0x0c2e, pid: 0x0b61, serial: A1}"},
		{"vid and interface", "match: {vid: 0x0403, interface: 1}"},
		{"path", `match: {path: "1-1.4:1.0"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(minimal, "port: /dev/ttyACM0", tc.scanner, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if sc := c.Stations[0].Scanners[0]; sc.Type != "serial" || sc.Port != "" {
				t.Errorf("type %q, port %q; want serial and no port", sc.Type, sc.Port)
			}
		})
	}
}

var badCases = []struct {
	name string
	yaml string
	// paths are exactly the problem paths reported, in order.
	paths []string
	// text must appear in the error, when set.
	text string
}{
	{
		name: "tcp scanner without connect or listen",
		yaml: minimal + `
  - id: tunnel
    scanners: [{id: r1, type: tcp}]
`,
		paths: []string{"stations[1].scanners[0].connect"},
		text:  "required (host:port of the reader)",
	},
	{
		name: "tcp scanner with both, a bad allow and a port",
		yaml: minimal + `
  - id: tunnel
    scanners: [{id: r1, type: tcp, connect: "10.0.0.5:2001", listen: ":2112", allow: [10.0.0.0/33], port: /dev/ttyACM1}]
`,
		paths: []string{"stations[1].scanners[0].listen", "stations[1].scanners[0].allow[0]", "stations[1].scanners[0].port"},
		text:  "give connect or listen, not both",
	},
	{
		name: "tcp addresses malformed",
		yaml: minimal + `
  - id: tunnel
    scanners:
      - {id: r1, type: tcp, connect: "10.0.0.5"}
      - {id: r2, type: tcp, listen: ":99999", idle_timeout: -1s}
`,
		paths: []string{"stations[1].scanners[0].connect", "stations[1].scanners[1].listen", "stations[1].scanners[1].idle_timeout"},
		text:  "must be host:port like 10.0.4.21:2001",
	},
	{
		name: "two tcp scanners on one listen address",
		yaml: minimal + `
  - id: tunnel
    scanners:
      - {id: r1, type: tcp, listen: ":2112"}
      - {id: r2, type: tcp, listen: "0.0.0.0:2112"}
      - {id: h1, port: /dev/ttyACM1, idle_timeout: 5s}
`,
		paths: []string{"stations[1].scanners[1].listen", "stations[1].scanners[2].idle_timeout"},
		text:  "port 2112 is already used by stations[1].scanners[0]",
	},
	{
		name: "framing options out of range",
		yaml: minimal + `
  - id: tunnel
    debounce: 2h
    scanners: [{id: r1, type: tcp, connect: "r1:2001", framing: stx, prefix: "12345678901234567", noread: ["NOREAD", ""], split: "123456789", debounce: -1s}]
`,
		paths: []string{"stations[1].debounce", "stations[1].scanners[0].framing", "stations[1].scanners[0].prefix",
			"stations[1].scanners[0].split", "stations[1].scanners[0].noread[1]", "stations[1].scanners[0].debounce"},
		text: "must be one of terminator, stx_etx",
	},
	{
		name: "no-read on a hid scanner",
		yaml: minimal + `
  - id: st2
    scanners: [{id: w1, type: hid, match: {vid: 0x0c2e, pid: 0x0b61}, noread: [NOREAD]}]
`,
		paths: []string{"stations[1].scanners[0].noread"},
		text:  "noread: is for serial and tcp scanners",
	},
	{
		name: "heartbeats and no-read feedback",
		yaml: minimal + `
  - id: st2
    scanners:
      - {id: w1, type: hid, match: {vid: 0x0c2e, pid: 0x0b61}, heartbeat: [HB], feedback: {noread: "x"}}
      - {id: r1, type: tcp, connect: "r1:2001", heartbeat: [HB, ""]}
`,
		paths: []string{"stations[1].scanners[0].heartbeat", "stations[1].scanners[0].feedback.noread", "stations[1].scanners[1].heartbeat[1]"},
		text:  "heartbeat: is for serial and tcp scanners",
	},
	{
		name:  "unknown key",
		yaml:  minimal + "mqtt: {brokr: tcp://x:1883}\n",
		paths: []string{"mqtt.brokr"},
		text:  "brokr: unknown key; want one of broker,",
	},
	{
		name:  "bad size unit",
		yaml:  minimal + "buffer: {max_bytes: 4 gigs}\n",
		paths: []string{"buffer.max_bytes"},
		text:  "invalid size",
	},
	{
		name:  "buffer limits out of range",
		yaml:  minimal + "buffer: {max_scans: -5, max_bytes: 1MiB, high_water: 1.5}\n",
		paths: []string{"buffer.max_scans", "buffer.max_bytes", "buffer.high_water"},
	},
	{
		name:  "audit window negative, seen retention too short",
		yaml:  minimal + "buffer: {audit_window: -1h, seen_retention: 10m}\n",
		paths: []string{"buffer.audit_window", "buffer.seen_retention"},
	},
	{
		name:  "rules keys not keys, unsigned with keys",
		yaml:  minimal + "rules: {keys: [\"not-base64!\", \"QUJD\"], allow_unsigned: true}\n",
		paths: []string{"rules.keys[0]", "rules.keys[1]", "rules.allow_unsigned"},
	},
	{
		name:  "high water not a number",
		yaml:  minimal + "buffer: {high_water: lots}\n",
		paths: []string{"buffer.high_water"},
		text:  "want a number",
	},
	{
		name:  "unknown top-level key",
		yaml:  minimal + "stations2: []\n",
		paths: []string{"stations2"},
	},
	{
		name:  "duplicate key",
		yaml:  minimal + "log: {level: info, level: debug}\n",
		paths: []string{"log.level"},
		text:  "duplicate key",
	},
	{
		name: "bad id charset",
		yaml: `
gateway: {id: gw/1, site: "plant a"}
stations:
  - id: "st#1"
    scanners: [{id: "sc+1", port: /dev/ttyACM0}]
`,
		paths: []string{"gateway.id", "gateway.site", "stations[0].id", "stations[0].scanners[0].id"},
		text:  "gateway.id: must match [A-Za-z0-9._-], 1 to 64 characters",
	},
	{
		name:  "id too long",
		yaml:  strings.Replace(minimal, "id: gw1", "id: "+strings.Repeat("g", 65), 1),
		paths: []string{"gateway.id"},
	},
	{
		name: "missing gateway",
		yaml: `
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`,
		paths: []string{"gateway.id", "gateway.site"},
		text:  "gateway.id: required",
	},
	{
		name:  "empty document",
		yaml:  "",
		paths: []string{"gateway.id", "gateway.site", "stations"},
	},
	{
		name: "duplicate station id",
		yaml: minimal + `
  - id: st1
    scanners: [{id: sc2, port: /dev/ttyACM1}]
`,
		paths: []string{"stations[1].id"},
		text:  "stations[1].id: duplicate of stations[0].id",
	},
	{
		name: "duplicate scanner id across stations",
		yaml: minimal + `
  - id: st2
    scanners: [{id: sc1, port: /dev/ttyACM1}]
`,
		paths: []string{"stations[1].scanners[0].id"},
		text:  "duplicate of stations[0].scanners[0].id",
	},
	{
		name: "two scanners share a port",
		yaml: minimal + `
  - id: st2
    scanners: [{id: sc2, port: /dev//ttyACM0}]
`,
		paths: []string{"stations[1].scanners[0].port"},
		text:  "already used by stations[0].scanners[0]",
	},
	{
		name:  "bad mode",
		yaml:  strings.Replace(minimal, "- id: st1", "- id: st1\n    mode: recieve", 1),
		paths: []string{"stations[0].mode"},
		text:  "must be one of receive, ship, return, transfer, count",
	},
	{
		name: "bad baud in second station",
		yaml: minimal + `
  - id: st2
    scanners: [{id: sc2, port: /dev/ttyACM1, baud: 9601}]
`,
		paths: []string{"stations[1].scanners[0].baud"},
		text:  "stations[1].scanners[0].baud: must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
	},
	{
		name:  "baud not a number",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, baud: fast", 1),
		paths: []string{"stations[0].scanners[0].baud"},
		text:  "(line 6)",
	},
	{
		name:  "relative port",
		yaml:  strings.Replace(minimal, "/dev/ttyACM0", "ttyACM0", 1),
		paths: []string{"stations[0].scanners[0].port"},
		text:  "absolute",
	},
	{
		name:  "missing port",
		yaml:  strings.Replace(minimal, ", port: /dev/ttyACM0", "", 1),
		paths: []string{"stations[0].scanners[0].port"},
		text:  "port: required",
	},
	{
		name:  "serial scanner with port and match",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, match: {vid: 0x0c2e, pid: 0x0b61}", 1),
		paths: []string{"stations[0].scanners[0].match"},
		text:  "give port or match, not both",
	},
	{
		name:  "serial scanner matched by serial number alone",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "match: {serial: A1}", 1),
		paths: []string{"stations[0].scanners[0].match"},
		text:  "needs match.vid (with match.pid) or match.path",
	},
	{
		name: "serial scanner match out of range",
		yaml: strings.Replace(minimal, "port: /dev/ttyACM0", "match: {vid: 0x10000, pid: -1, interface: 256}", 1),
		paths: []string{"stations[0].scanners[0].match.vid", "stations[0].scanners[0].match.pid",
			"stations[0].scanners[0].match.interface"},
	},
	{
		name:  "unknown scanner type",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, type: bluetooth", 1),
		paths: []string{"stations[0].scanners[0].type"},
		text:  "must be one of serial, hid",
	},
	{
		name:  "hid scanner with a port and no match",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, type: hid", 1),
		paths: []string{"stations[0].scanners[0].match", "stations[0].scanners[0].port"},
		text:  "needs match.vid",
	},
	{
		name: "hid scanner bad fields",
		yaml: strings.Replace(minimal, "port: /dev/ttyACM0",
			"type: hid, match: {vid: 0x1FFFF, pid: -1, interface: 300}, protocol: serial, layout: dvorak, gap: -1s", 1),
		paths: []string{"stations[0].scanners[0].match.vid", "stations[0].scanners[0].match.pid",
			"stations[0].scanners[0].match.interface", "stations[0].scanners[0].protocol",
			"stations[0].scanners[0].layout", "stations[0].scanners[0].gap"},
	},
	{
		name:  "empty terminator",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", `port: /dev/ttyACM0, terminator: ""`, 1),
		paths: []string{"stations[0].scanners[0].terminator"},
	},
	{
		name:  "terminator too long",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", `port: /dev/ttyACM0, terminator: "\r\n\r\n\r"`, 1),
		paths: []string{"stations[0].scanners[0].terminator"},
	},
	{
		name:  "feedback too long",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, feedback: {bad: "+strings.Repeat("x", 65)+"}", 1),
		paths: []string{"stations[0].scanners[0].feedback.bad"},
	},
	{
		name:  "bad broker scheme",
		yaml:  minimal + "mqtt: {broker: \"http://127.0.0.1:1883\"}\n",
		paths: []string{"mqtt.broker"},
		text:  "scheme must be one of tcp, mqtt, ssl, mqtts",
	},
	{
		name:  "broker without port",
		yaml:  minimal + "mqtt: {broker: \"tcp://broker.local\"}\n",
		paths: []string{"mqtt.broker"},
		text:  "port",
	},
	{
		name:  "broker without scheme",
		yaml:  minimal + "mqtt: {broker: \"127.0.0.1:1883\"}\n",
		paths: []string{"mqtt.broker"},
	},
	{
		name:  "topic prefix with wildcard",
		yaml:  minimal + "mqtt: {topic_prefix: \"scangw/#\"}\n",
		paths: []string{"mqtt.topic_prefix"},
		text:  "wildcards",
	},
	{
		name:  "topic prefix with trailing slash",
		yaml:  minimal + "mqtt: {topic_prefix: scangw/v1/}\n",
		paths: []string{"mqtt.topic_prefix"},
	},
	{
		name:  "client id charset",
		yaml:  minimal + "mqtt: {client_id: \"gw 1\"}\n",
		paths: []string{"mqtt.client_id"},
	},
	{
		name:  "negative inflight",
		yaml:  minimal + "mqtt: {inflight: -1}\n",
		paths: []string{"mqtt.inflight"},
		text:  "must be 1 to 1000",
	},
	{
		name:  "bad duration string",
		yaml:  minimal + "mqtt: {keepalive: 30 seconds}\n",
		paths: []string{"mqtt.keepalive"},
		text:  `invalid duration "30 seconds"`,
	},
	{
		name:  "duration without unit",
		yaml:  minimal + "mqtt: {connect_timeout: 10}\n",
		paths: []string{"mqtt.connect_timeout"},
	},
	{
		name:  "negative keepalive",
		yaml:  minimal + "mqtt: {keepalive: -5s}\n",
		paths: []string{"mqtt.keepalive"},
	},
	{
		name:  "reconnect max below min",
		yaml:  minimal + "mqtt: {reconnect_min: 5s, reconnect_max: 1s}\n",
		paths: []string{"mqtt.reconnect_max"},
		text:  "must be at least reconnect_min (5s)",
	},
	{
		name:  "password without username",
		yaml:  minimal + "mqtt: {password_file: /etc/scangw/mqtt-password}\n",
		paths: []string{"mqtt.username"},
		text:  "mqtt.username: required with password_file",
	},
	{
		name:  "two password sources",
		yaml:  minimal + "mqtt: {username: gw, password: secret, password_env: MQTT_PASSWORD}\n",
		paths: []string{"mqtt.password_env"},
		text:  "only one of password, password_file and password_env",
	},
	{
		name:  "bad password env name",
		yaml:  minimal + "mqtt: {username: gw, password_env: \"MQTT PASSWORD\"}\n",
		paths: []string{"mqtt.password_env"},
		text:  "environment variable name",
	},
	{
		name:  "username with NUL",
		yaml:  minimal + "mqtt: {username: \"g\\0w\"}\n",
		paths: []string{"mqtt.username"},
	},
	{
		name:  "tls with a tcp broker",
		yaml:  minimal + "mqtt: {broker: \"tcp://broker:1883\", tls: {ca_file: /etc/scangw/ca.pem}}\n",
		paths: []string{"mqtt.tls"},
		text:  "use ssl:// or mqtts://",
	},
	{
		name:  "client cert without key",
		yaml:  minimal + "mqtt: {broker: \"mqtts://broker:8883\", tls: {cert_file: /etc/scangw/gw.pem}}\n",
		paths: []string{"mqtt.tls.key_file"},
		text:  "required with cert_file",
	},
	{
		name:  "client key without cert",
		yaml:  minimal + "mqtt: {broker: \"ssl://broker:8883\", tls: {key_file: /etc/scangw/gw.key}}\n",
		paths: []string{"mqtt.tls.cert_file"},
	},
	{
		name:  "bad server name",
		yaml:  minimal + "mqtt: {broker: \"ssl://broker:8883\", tls: {server_name: \"broker one\"}}\n",
		paths: []string{"mqtt.tls.server_name"},
	},
	{
		name:  "unknown tls key",
		yaml:  minimal + "mqtt: {broker: \"ssl://broker:8883\", tls: {insecure_skip_verify: true}}\n",
		paths: []string{"mqtt.tls.insecure_skip_verify"},
		text:  "unknown key; want one of ca_file, cert_file, key_file, server_name",
	},
	{
		name:  "max payload out of range",
		yaml:  minimal + "mqtt: {max_payload: 100, max_command: 2MiB}\n",
		paths: []string{"mqtt.max_payload", "mqtt.max_command"},
		text:  "mqtt.max_payload: must be 1KiB to 128MiB",
	},
	{
		name:  "max payload not a size",
		yaml:  minimal + "mqtt: {max_payload: big}\n",
		paths: []string{"mqtt.max_payload"},
		text:  "invalid size",
	},
	{
		name:  "heartbeat too short",
		yaml:  minimal + "mqtt: {heartbeat: 100ms}\n",
		paths: []string{"mqtt.heartbeat"},
		text:  "must be 1s to 24h0m0s",
	},
	{
		name:  "bad command keys",
		yaml:  minimal + "mqtt: {command_keys: [\"not base64!\", \"AAAA\", \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"]}\n",
		paths: []string{"mqtt.command_keys[0]", "mqtt.command_keys[1]"},
		text:  "must be an Ed25519 public key in base64 (32 bytes)",
	},
	{
		name:  "command keys not a list",
		yaml:  minimal + "mqtt: {command_keys: \"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}\n",
		paths: []string{"mqtt.command_keys"},
		text:  "want a list",
	},
	{
		name:  "bad http listen",
		yaml:  minimal + "http: {listen: \"localhost\"}\n",
		paths: []string{"http.listen"},
	},
	{
		name:  "http port out of range",
		yaml:  minimal + "http: {listen: \":70000\"}\n",
		paths: []string{"http.listen"},
	},
	{
		name:  "bad log level and format",
		yaml:  minimal + "log: {level: verbose, format: xml}\n",
		paths: []string{"log.level", "log.format"},
		text:  "log.level: must be one of debug, info, warn, error",
	},
	{
		name:  "no stations",
		yaml:  "gateway: {id: gw1, site: s1}\nstations: []\n",
		paths: []string{"stations"},
		text:  "at least one station",
	},
	{
		name:  "stations not a list",
		yaml:  "gateway: {id: gw1, site: s1}\nstations: {id: st1}\n",
		paths: []string{"stations"},
		text:  "want a list",
	},
	{
		name:  "station without scanners",
		yaml:  "gateway: {id: gw1, site: s1}\nstations: [{id: st1}]\n",
		paths: []string{"stations[0].scanners"},
		text:  "at least one scanner",
	},
	{
		name:  "min length above max length",
		yaml:  strings.Replace(minimal, "- id: st1", "- id: st1\n    min_length: 20\n    max_length: 10", 1),
		paths: []string{"stations[0].max_length"},
		text:  "must be at least min_length (20)",
	},
	{
		name:  "max length too big",
		yaml:  strings.Replace(minimal, "- id: st1", "- id: st1\n    max_length: 100000", 1),
		paths: []string{"stations[0].max_length"},
	},
	{
		name:  "max frame too big",
		yaml:  strings.Replace(minimal, "port: /dev/ttyACM0", "port: /dev/ttyACM0, max_frame: 65537", 1),
		paths: []string{"stations[0].scanners[0].max_frame"},
		text:  "must be 16 to 65536",
	},
	{
		name:  "document not a mapping",
		yaml:  "- gateway\n",
		paths: []string{""},
	},
	{
		name: "many mistakes at once",
		yaml: `
gateway: {id: "gw 1"}
mqtt: {broker: "udp://x:1", inflight: 5000, keepalive: soon, reconnect_min: 2s, reconnect_max: 1s}
http: {listen: "nowhere"}
log: {level: loud}
stations:
  - id: st1
    mode: sell
    min_length: 0
    scanners:
      - {id: a, port: dev/ttyACM0, baud: 9601, terminator: ""}
      - {id: a, type: usb}
  - id: st1
    scanners: []
`,
		paths: []string{
			"mqtt.keepalive", // decode problems come first
			"gateway.id",
			"gateway.site",
			"mqtt.broker",
			"mqtt.inflight",
			"mqtt.reconnect_max",
			"http.listen",
			"log.level",
			"stations[0].mode",
			"stations[0].scanners[0].port",
			"stations[0].scanners[0].baud",
			"stations[0].scanners[0].terminator",
			"stations[0].scanners[1].id",
			"stations[0].scanners[1].type",
			"stations[1].id",
			"stations[1].scanners",
		},
	},
}

func TestParseBad(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want problems at %q; got %+v", tc.paths, c)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %q (%T) is not a *ValidationError", err, err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.Path)
				if !strings.Contains(err.Error(), p.String()) {
					t.Errorf("Error() lacks %q", p.String())
				}
			}
			if !slices.Equal(got, tc.paths) {
				t.Errorf("problem paths = %q, want %q\nerror:\n%v", got, tc.paths, err)
			}
			if tc.text != "" && !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error lacks %q:\n%v", tc.text, err)
			}
		})
	}
}

// TestParseNotYAML covers what never becomes a *ValidationError: input
// that is not one YAML document.
func TestParseNotYAML(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, text string
	}{
		{"syntax", "gateway: {id: gw1\n", "yaml:"},
		{"tab indent", "gateway:\n\tid: gw1\n", "yaml:"},
		{"two documents", minimal + "---\n" + minimal, "one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error = %v, want one containing %q", err, tc.text)
			}
		})
	}
}

func TestMergeKeys(t *testing.T) {
	c, err := Parse([]byte(`
gateway: {id: gw1, site: s1}
scanner-defaults: &scanner {type: serial, baud: 115200, terminator: "\r"}
stations: []
`))
	// Anchors must live under a known key; this documents that they cannot
	// float at the top level.
	if err == nil || !strings.Contains(err.Error(), "scanner-defaults: unknown key") {
		t.Fatalf("got %v, %v", c, err)
	}

	c, err = Parse([]byte(`
gateway: {id: gw1, site: s1}
stations:
  - id: st1
    scanners:
      - &first {id: sc1, port: /dev/ttyACM0, baud: 115200, terminator: "\r"}
      - {<<: *first, id: sc2, port: /dev/ttyACM1}
`))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.Stations[0].Scanners[1]
	if sc.ID != "sc2" || sc.Port != "/dev/ttyACM1" || sc.Baud != 115200 || sc.Terminator != "\r" {
		t.Errorf("merged scanner = %+v", sc)
	}

	_, err = Parse([]byte(`
gateway: {id: gw1, site: s1}
stations:
  - id: st1
    scanners:
      - &first {id: sc1, port: /dev/ttyACM0}
      - {<<: *first, id: sc2, port: /dev/ttyACM1, bud: 1}
`))
	if err == nil || !strings.Contains(err.Error(), "stations[0].scanners[1].bud: unknown key") {
		t.Errorf("error = %v, want the unknown key named by path", err)
	}
}

func TestLoadErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(missing)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+missing+": ") {
		t.Errorf("Load(missing) = %v, want it to start with the path", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want errors.Is(err, os.ErrNotExist)", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(minimal+"log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load(bad) = %v, want a *ValidationError", err)
	}
	if want := "config " + bad + ": log.level: must be one of"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(bad) = %q, want prefix %q", err, want)
	}
}

// TestValidateHandBuilt checks Validate on its own, without Parse: the zero
// Config names every key that lacks a value.
func TestValidateHandBuilt(t *testing.T) {
	var c Config
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate() = %v, want a *ValidationError", err)
	}
	var got []string
	for _, p := range ve.Problems {
		got = append(got, p.Path)
	}
	want := []string{
		"gateway.id", "gateway.site", "buffer.dir", "buffer.max_scans", "buffer.max_bytes",
		"buffer.seen_retention", "buffer.high_water", "mqtt.broker", "mqtt.topic_prefix",
		"mqtt.inflight", "mqtt.keepalive", "mqtt.connect_timeout", "mqtt.write_timeout",
		"mqtt.reconnect_min", "mqtt.reconnect_max", "mqtt.max_payload", "mqtt.heartbeat", "mqtt.max_command",
		"log.level", "log.format", "stations", "epcis.epc_form",
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths = %q\nwant %q", got, want)
	}

	c2, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Validate(); err != nil {
		t.Errorf("Validate of a parsed config = %v", err)
	}
}

func TestHash(t *testing.T) {
	a, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := a.Hash()
	if len(h) != 12 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("Hash() = %q, want 12 hex digits", h)
	}
	if b.Hash() != h {
		t.Errorf("two loads hash %q and %q", h, b.Hash())
	}

	// Spelling the defaults out is the same config.
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(append(data, "log: {level: info}\n"...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() != h {
		t.Errorf("explicit default changed the hash: %q, want %q", c.Hash(), h)
	}

	for name, change := range map[string]func(*Config){
		"baud":      func(c *Config) { c.Stations[0].Scanners[0].Baud = 115200 },
		"keepalive": func(c *Config) { c.MQTT.KeepAlive = Duration(31 * time.Second) },
		"feedback":  func(c *Config) { c.Stations[0].Scanners[0].Feedback.Bad = "" },
		"listen":    func(c *Config) { c.HTTP.Listen = "" },
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load("example.yaml")
			if err != nil {
				t.Fatal(err)
			}
			change(c)
			if c.Hash() == h {
				t.Errorf("hash did not change")
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: `"5s"`, want: 5 * time.Second},
		{in: "0", want: 0},
		{in: "~", want: 0},
		{in: "5", err: "line 1: invalid duration"},
		{in: "[1s]", err: "line 1: want a duration"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tc.in), &d)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || d.D() != tc.want {
				t.Fatalf("got %v, %v; want %v", d, err, tc.want)
			}
			out, err := yaml.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.TrimSpace(string(out)), tc.want.String(); got != want {
				t.Errorf("marshalled %q, want %q", got, want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.yaml", "full.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	for _, tc := range badCases {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) && len(ve.Problems) == 0 {
				t.Fatalf("empty *ValidationError for %q", data)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
		// What a gateway runs, marshalled back, must load as the same
		// config: Hash depends on it.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		if c2.Hash() != c.Hash() {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}

// assertConfig compares two configs field by field through their YAML
// form, so that a failure shows the differing keys.
func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("config differs\ngot:\n%s\nwant:\n%s", g, w)
	}
}

// TestMQTTSecurity loads the security keys together and checks what the
// uplink gets from them.
func TestMQTTSecurity(t *testing.T) {
	c, err := Parse([]byte(minimal + `
mqtt:
  broker: "mqtts://broker.example:8883"
  username: gw1
  password_env: SCANGW_MQTT_PASSWORD
  tls: {ca_file: /etc/scangw/ca.pem, cert_file: /etc/scangw/gw1.pem, key_file: /etc/scangw/gw1.key, server_name: mqtt.internal}
  max_payload: 32KiB
  heartbeat: 1m
  max_command: 4KiB
  command_keys: ["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"]
`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.MQTT
	if m.TLS.ServerName != "mqtt.internal" || m.PasswordEnv != "SCANGW_MQTT_PASSWORD" || m.MaxPayload != 32<<10 ||
		m.Heartbeat.D() != time.Minute || m.MaxCommand != 4<<10 {
		t.Errorf("mqtt = %+v", m)
	}
	keys := m.CommandPublicKeys()
	if len(keys) != 2 || len(keys[0]) != 32 || !keys[0].Equal(keys[1]) {
		t.Errorf("CommandPublicKeys() = %x, want the same 32-byte key twice (padded and unpadded base64)", keys)
	}
}

func TestHTTPTokenRequiredBeyondLoopback(t *testing.T) {
	base := "gateway: {id: gw, site: s}\nstations: [{id: st, scanners: [{id: a, port: /dev/ttyACM0}]}]\n"
	for _, tc := range []struct {
		http string
		want string // "" = loads
	}{
		{`http: {listen: "127.0.0.1:9754"}`, ""},
		{`http: {listen: "[::1]:9754"}`, ""},
		{`http: {listen: "localhost:9754"}`, ""},
		{`http: {listen: "0.0.0.0:9754"}`, "http.token: required"},
		{`http: {listen: ":9754"}`, "http.token: required"},
		{`http: {listen: "192.168.1.10:9754"}`, "http.token: required"},
		{`http: {listen: ":9754", token: "0123456789abcdef"}`, ""},
		{`http: {listen: ":9754", token_file: /etc/scangw/token}`, ""},
		{`http: {listen: ":9754", token: "short"}`, "http.token: must be at least 16"},
		{`http: {listen: ":9754", token: "0123456789abcdef", token_file: /x}`, "http.token_file: give token or token_file"},
		{`http: {open: [/metrics, /status]}`, "http.open[1]: must be one of"},
	} {
		c, err := Parse([]byte(base + tc.http))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.http, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", tc.http, err, tc.want)
		case tc.want == "" && c.HTTP.Guarded() != !strings.Contains(tc.http, "127.0.0.1") && !strings.Contains(tc.http, "::1") && !strings.Contains(tc.http, "localhost"):
			t.Errorf("%s: Guarded = %v", tc.http, c.HTTP.Guarded())
		}
	}
	c, err := Parse([]byte(base))
	if err != nil || !slices.Equal(c.HTTP.Open, []string{"/metrics", "/healthz", "/readyz"}) {
		t.Fatalf("default open = %v, %v", c.HTTP.Open, err)
	}
	c, err = Parse([]byte(base + "http: {open: []}"))
	if err != nil || c.HTTP.Open == nil || len(c.HTTP.Open) != 0 {
		t.Fatalf("open: [] = %#v, %v; want an empty list that guards everything", c.HTTP.Open, err)
	}
}
