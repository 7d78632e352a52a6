package systemd

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The files under monitoring/ and the alerts issue 12 asks for.
const (
	monitoringAlerts     = "monitoring/alerts.yml"
	monitoringAlertTests = "monitoring/alerts_test.yml"
	monitoringDashboard  = "monitoring/dashboard.json"
)

var monitoringWantAlerts = []string{
	"ScangwGatewayOffline", "ScangwBacklogOld", "ScangwScannerDisconnected",
	"ScangwRejectRateHigh", "ScangwBufferHighWater", "ScangwDiskNearlyFull",
	"ScangwClockNotSynced", "ScangwDuplicateGatewayID", "ScangwRulesNotLoaded",
}

// monitoringPromtool returns the path of promtool, failing the test when
// it is missing: without it the rules cannot be checked.
func monitoringPromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed to check the alert rules (Debian package prometheus; make deps installs it): %v", err)
	}
	return path
}

func monitoringRun(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
}

type monitoringRuleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func monitoringReadYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestMonitoringAlertRules checks the rules with promtool and holds them
// to what an on-call engineer needs: every alert of the issue, each with
// a delay, a severity to route on, and text saying what is wrong where.
func TestMonitoringAlertRules(t *testing.T) {
	monitoringRun(t, monitoringPromtool(t), "check", "rules", monitoringAlerts)

	var rf monitoringRuleFile
	monitoringReadYAML(t, monitoringAlerts, &rf)
	var got []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			got = append(got, r.Alert)
			if r.For == "" {
				t.Errorf("%s: no for: (a single bad scrape would page)", r.Alert)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			// Every alert names the gateway; one of a station or scanner
			// names that too.
			text := r.Annotations["summary"] + r.Annotations["description"]
			for _, l := range monitoringNamedLabels(r.Alert) {
				if !strings.Contains(text, "$labels."+l) {
					t.Errorf("%s: the annotations do not name the %s", r.Alert, l)
				}
			}
		}
	}
	for _, a := range monitoringWantAlerts {
		if !slices.Contains(got, a) {
			t.Errorf("alert %s missing from %s", a, monitoringAlerts)
		}
	}
}

func monitoringNamedLabels(alert string) []string {
	switch alert {
	case "ScangwScannerDisconnected":
		return []string{"gateway", "station", "scanner"}
	case "ScangwRejectRateHigh":
		return []string{"gateway", "station"}
	}
	return []string{"gateway"}
}

// TestMonitoringAlertUnitTests runs `promtool test rules` and checks that
// the tests give every alert an evaluation where it fires and one where
// it must not.
func TestMonitoringAlertUnitTests(t *testing.T) {
	monitoringRun(t, monitoringPromtool(t), "test", "rules", monitoringAlertTests)

	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name  string `yaml:"name"`
			Cases []struct {
				Alert     string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	monitoringReadYAML(t, monitoringAlertTests, &tf)
	if !slices.Equal(tf.RuleFiles, []string{filepath.Base(monitoringAlerts)}) {
		t.Errorf("rule_files %v, want [%s]", tf.RuleFiles, filepath.Base(monitoringAlerts))
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, c := range tc.Cases {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alert] = true
			} else {
				quiet[c.Alert] = true
			}
		}
	}
	for _, a := range monitoringWantAlerts {
		if !fires[a] {
			t.Errorf("%s: no test case where it fires", a)
		}
		if !quiet[a] {
			t.Errorf("%s: no test case where it must not fire", a)
		}
	}
}

// monitoringPanel is the part of a Grafana panel the test reads.
type monitoringPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []monitoringPanel `json:"panels"` // of a collapsed row
}

type monitoringDash struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []monitoringPanel `json:"panels"`
}

// TestMonitoringDashboard parses the dashboard as Grafana would need it:
// a data source and a gateway variable, and every panel querying the
// chosen data source with at least one expression. The expressions are
// parsed by promtool, with the dashboard's variables filled in, so a typo
// fails here and not as an empty panel in front of an operator.
func TestMonitoringDashboard(t *testing.T) {
	promtool := monitoringPromtool(t)
	b, err := os.ReadFile(monitoringDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d monitoringDash
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", monitoringDashboard, err)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want at least 36", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable: %v", vars)
	}
	if vars["gateway"] != "query" || vars["instance"] != "query" {
		t.Errorf("no gateway and instance query variables: %v", vars)
	}

	var panels []monitoringPanel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]string{}
	var exprs []string
	for _, p := range panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		var ds struct{ UID string }
		if err := json.Unmarshal(p.Datasource, &ds); err != nil || ds.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %s, want uid ${datasource}", p.Title, p.Datasource)
		}
		n := 0
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) != "" {
				n++
				exprs = append(exprs, tg.Expr)
			}
		}
		if n == 0 {
			t.Errorf("panel %q has no target with an expr", p.Title)
		}
	}

	// The panels the issue asks for, by the series each must show.
	all := strings.Join(exprs, "\n")
	for _, m := range []string{
		"up{", "scangw_mqtt_connected", // online
		"scangw_buffer_depth_scans", "scangw_buffer_oldest_unsent_age_seconds", // backlog
		"scangw_station_scans_total", "scangw_device_noreads_total", // verdicts, reject and no-read rate
		"histogram_quantile(0.99, sum by (le) (rate(scangw_mqtt_publish_latency_seconds_bucket", // PUBACK latency
		"scangw_device_connected",             // scanners
		"scangw_buffer_filesystem_free_bytes", // disk
		"process_resident_memory_bytes",       // memory
	} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel queries %s", m)
		}
	}

	// Recording rules are the cheapest way to have promtool parse PromQL.
	fill := strings.NewReplacer(`$instance`, `.*`, `$site`, `.*`, `$gateway`, `.*`, `$__rate_interval`, `5m`)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(fill.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard_expr_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-exprs.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	monitoringRun(t, promtool, "check", "rules", path)
}
