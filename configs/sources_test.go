package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes the main file and its fragments (name → text) and
// returns the main file's path.
func writeConfig(t *testing.T, main string, fragments map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, confDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range fragments {
		if err := os.WriteFile(filepath.Join(dir, confDir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "scangw.yaml")
	if err := os.WriteFile(p, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfD merges fragments in name order: mappings by key, lists whole;
// files that are not fragments are left alone.
func TestConfD(t *testing.T) {
	p := writeConfig(t, `
gateway: {id: gw1, site: s1}
mqtt: {broker: "tcp://broker.site:1883", inflight: 5}
log: {level: debug}
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`, map[string]string{
		"20-stations.yaml": `
stations:
  - id: dock-7
    mode: ship
    scanners: [{id: h1, port: /dev/ttyACM1}, {id: h2, port: /dev/ttyACM2}]
`,
		"10-mqtt.yaml":     "mqtt: {inflight: 50, keepalive: 10s}\n",
		"30-log.yaml":      "log: {level: warn}\n",
		".40-tmp.yaml":     "log: {level: error}\n",
		"50-old.yaml.bak":  "log: {level: error}\n",
		"60-notes.txt":     "not yaml at all: [",
		"70-empty.yaml":    "",
		"80-comment.yaml":  "# nothing here yet\n",
		"90-gateway.yaml":  "gateway: {site: s2}\n",
		"91-stations.yaml": "",
	})
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.Broker != "tcp://broker.site:1883" || c.MQTT.Inflight != 50 || c.MQTT.KeepAlive.D().String() != "10s" {
		t.Errorf("mqtt not merged by key: %+v", c.MQTT)
	}
	if c.Log.Level != "warn" {
		t.Errorf("log.level %q: want the last fragment's, not a dot file's or a .bak's", c.Log.Level)
	}
	if c.Gateway.ID != "gw1" || c.Gateway.Site != "s2" {
		t.Errorf("gateway %+v", c.Gateway)
	}
	if len(c.Stations) != 1 || c.Stations[0].ID != "dock-7" || len(c.Stations[0].Scanners) != 2 {
		t.Errorf("stations not replaced whole: %+v", c.Stations)
	}
	files, err := Files(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if got := strings.Join(names, " "); got != "scangw.yaml 10-mqtt.yaml 20-stations.yaml 30-log.yaml 70-empty.yaml 80-comment.yaml 90-gateway.yaml 91-stations.yaml" {
		t.Errorf("files: %s", got)
	}
}

// TestConfDErrorsNameFileAndLine: a problem in a fragment, in the main
// file, or in the merged result names the file and line it comes from.
func TestConfDErrorsNameFileAndLine(t *testing.T) {
	p := writeConfig(t, `
gateway: {id: gw1, site: s1}
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`, map[string]string{
		"10-a.yaml": "mqtt:\n  inflight: many\n",
		"20-b.yaml": "\nlog:\n  level: loud\n  colour: red\n",
	})
	_, err := Load(p)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%v", err)
	}
	dir := filepath.Join(filepath.Dir(p), confDir)
	for _, want := range []string{
		"mqtt.inflight: want an integer, got \"many\" (" + filepath.Join(dir, "10-a.yaml") + " line 2)",
		"log.colour: unknown key",
		"(" + filepath.Join(dir, "20-b.yaml") + " line 4)",
		"log.level: must be one of",
		"(" + filepath.Join(dir, "20-b.yaml") + " line 3)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// A syntax error names its file.
	p = writeConfig(t, minimal, map[string]string{"10-a.yaml": "log: {level: info\n"})
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), "10-a.yaml: yaml: line") {
		t.Errorf("syntax error in a fragment: %v", err)
	}

	// A single file's problems give the line alone (the file is in front).
	_, err = Parse([]byte(minimal + "log: {level: loud}\n"))
	if err == nil || !strings.Contains(err.Error(), "log.level: must be one of debug, info, warn, error (line 7)") {
		t.Errorf("single file: %v", err)
	}
}

// TestEnvExpansion covers ${VAR}, ${VAR:-default}, $${, and values read
// again as YAML once replaced.
func TestEnvExpansion(t *testing.T) {
	t.Setenv("SCANGW_TEST_GW", "pi-dock-3")
	t.Setenv("SCANGW_TEST_INFLIGHT", "42")
	t.Setenv("SCANGW_TEST_EMPTY", "")
	c, err := Parse([]byte(`
gateway:
  id: ${SCANGW_TEST_GW}
  site: site-${SCANGW_TEST_NOPE:-a}
mqtt:
  inflight: ${SCANGW_TEST_INFLIGHT}
  password: "pa$$${word}"
  username: u${SCANGW_TEST_EMPTY:-fallback}
  keepalive: ${SCANGW_TEST_NOPE:-}
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "pi-dock-3" || c.Gateway.Site != "site-a" {
		t.Errorf("gateway %+v", c.Gateway)
	}
	if c.MQTT.Inflight != 42 {
		t.Errorf("inflight %d: a plain ${VAR} must be read as a number", c.MQTT.Inflight)
	}
	if c.MQTT.Password != "pa$${word}" {
		t.Errorf("password %q: $${ is a literal ${", c.MQTT.Password)
	}
	if c.MQTT.Username != "u" {
		t.Errorf("username %q: a variable set to empty is set", c.MQTT.Username)
	}
	if c.MQTT.KeepAlive.D() != defaultKeepAlive {
		t.Errorf("keepalive %v: ${X:-} is not given, so the default", c.MQTT.KeepAlive)
	}

	_, err = Parse([]byte(`
gateway: {id: "${SCANGW_TEST_UNSET_1}", site: s}
stations:
  - id: st1
    mode: ${SCANGW_TEST_UNSET_2}
    scanners: [{id: sc1, port: "${bad-name}"}]
`))
	for _, want := range []string{
		"gateway.id: ${SCANGW_TEST_UNSET_1}: the environment variable SCANGW_TEST_UNSET_1 is not set",
		"stations[0].mode: ${SCANGW_TEST_UNSET_2}: the environment variable SCANGW_TEST_UNSET_2 is not set and the reference has no default (write ${SCANGW_TEST_UNSET_2:-default} for one) (line 5)",
		"stations[0].scanners[0].port: ${bad-name}: \"bad-name\" is not a variable name",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestHostnameFallback(t *testing.T) {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOSTNAME", "") // restored after the test
	os.Unsetenv("HOSTNAME")
	if v, ok := Env("HOSTNAME"); !ok || v != h {
		t.Fatalf("Env(HOSTNAME) = %q, %v; want the kernel's %q", v, ok, h)
	}
}

func FuzzExpandVars(f *testing.F) {
	for _, s := range []string{"${A}", "${A:-b}", "$${A}", "x${", "${}", "${A:-${B}}", "$$$${A}"} {
		f.Add(s)
	}
	env := func(name string) (string, bool) { return "v", name == "A" }
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandVars(s, env)
		if err == nil && !strings.Contains(s, "${") && out != s {
			t.Fatalf("%q without references became %q", s, out)
		}
	})
}

func TestRedacted(t *testing.T) {
	c, err := Parse([]byte(minimal + `mqtt: {broker: "mqtts://u:s3cret@b:8883", username: u, password: hunter2hunter2}
http: {listen: "0.0.0.0:9754", token: "0123456789abcdef0123"}
`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted().YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret", "hunter2", "0123456789abcdef"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("printed config holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(string(out), "u:%3Credacted%3E@b:8883") || !strings.Contains(string(out), "keepalive: 30s") {
		t.Errorf("printed config:\n%s", out)
	}
	if c.MQTT.Password != "hunter2hunter2" {
		t.Error("Redacted changed the config itself")
	}
}

func TestBrokers(t *testing.T) {
	c, err := Parse([]byte(minimal + "mqtt: {brokers: [\"tcp://n1:1883\", \"tcp://n2:1883\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.MQTT.BrokerURLs(), " "); got != "tcp://n1:1883 tcp://n2:1883" || c.MQTT.Broker != "" {
		t.Fatalf("brokers %q, broker %q", got, c.MQTT.Broker)
	}
	c, err = Parse([]byte(minimal))
	if err != nil || strings.Join(c.MQTT.BrokerURLs(), " ") != defaultBroker {
		t.Fatalf("the default: %v %v", c.MQTT.BrokerURLs(), err)
	}
	for yaml, want := range map[string]string{
		`mqtt: {broker: "tcp://a:1", brokers: ["tcp://b:1"]}`:     "mqtt.brokers: give mqtt.broker (one address) or mqtt.brokers (several), not both",
		`mqtt: {brokers: ["tcp://a:1", "tcp://a:1"]}`:             "mqtt.brokers[1]: the same as mqtt.brokers[0]",
		`mqtt: {brokers: ["tcp://a:1", "http://b"]}`:              "mqtt.brokers[1]: scheme must be one of",
		`mqtt: {brokers: ["tcp://a:1", "mqtts://b:8883"]}`:        "mqtt.brokers: all use TLS",
		`mqtt: {brokers: ["tcp://a:1"], tls: {ca_file: /etc/ca}}`: "mqtt.tls: given, but the broker is tcp://",
	} {
		_, err := Parse([]byte(minimal + yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", yaml, err, want)
		}
	}
}
