package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scangw/scangw/station/inspect"
)

func TestInspectWithRules(t *testing.T) {
	in, rest, err := newInspector([]string{"--rules", "../../station/rules/testdata/example.json", "SN-STOLEN-77"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 {
		t.Fatalf("codes left: %q", rest)
	}
	r := in.Inspect("SN-STOLEN-77")
	if r.Verdict != "rejected" || len(r.Reasons) == 0 || r.Reasons[0].Code != "denied.stolen" || r.RulesVersion != "site:42" {
		t.Fatalf("judged %+v", r)
	}
	if ok := in.Inspect("]d2010950600013435221ABC123\x1d10L1\x1d17351231"); ok.Verdict == "" {
		t.Fatalf("no verdict for a GS1 code: %+v", ok)
	}
	if _, _, err := newInspector([]string{"--rules", "/nonexistent.json"}); err == nil {
		t.Fatal("missing rules file accepted")
	}
	plain, rest, _ := newInspector([]string{"X"})
	if plain.Judge != nil || plain.Schemes != nil || len(rest) != 1 {
		t.Fatal("no --rules: no judge expected")
	}
}

// inspectConfig writes a gateway config with one serial scheme.
func inspectConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(path, []byte(`
gateway: {id: gw, site: s}
buffer:  {dir: `+t.TempDir()+`}
mqtt:    {topic_prefix: p/v1}
serials: [{name: unit, template: "SN{seq:6}{check:mod37-2}"}]
stations:
  - id: bench-1
    scanners: [{id: h1, port: /dev/scangw-test-absent}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectWithConfig(t *testing.T) {
	cfg := inspectConfig(t)
	// SN0000427 is counter 42 of unit; its check character is 7.
	in, rest, err := newInspector([]string{"--config", cfg, "--rules=../../station/rules/testdata/example.json", "SN0000427"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || len(in.Schemes) != 1 || in.Schemes[0].Name != "unit" || in.Judge == nil {
		t.Fatalf("codes %q, schemes %+v, judge set %v", rest, in.Schemes, in.Judge != nil)
	}
	if r := in.Inspect("]d20109506000134352" + `21SN0000427\x1d10L1`); !r.Valid || r.SerialScheme != "unit" || r.SerialCounter == nil || *r.SerialCounter != 42 {
		t.Fatalf("GS1 code with a serial of unit: %+v", r)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config"}, "--config needs a FILE"},
		{[]string{"--config", "/nonexistent.yaml"}, "/nonexistent.yaml"},
		{[]string{"--config", cfg, "--bogus", "X"}, "unknown flag --bogus"},
	} {
		if _, _, err := newInspector(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newInspector(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestInspectCmdConfig runs `scangw inspect --config FILE` as an operator
// would, codes as arguments and on standard input.
func TestInspectCmdConfig(t *testing.T) {
	bin, cfg := buildScangw(t), inspectConfig(t)
	run := func(stdin string, args ...string) ([]inspect.Result, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"inspect", "--config", cfg}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		var rs []inspect.Result
		dec := json.NewDecoder(&out)
		for dec.More() {
			var r inspect.Result
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("output: %v", err)
			}
			rs = append(rs, r)
		}
		return rs, cmd.ProcessState.ExitCode()
	}
	rs, code := run("", "SN0000427", "SN0000428", "SN-12345")
	if code != 0 || len(rs) != 3 {
		t.Fatalf("exit %d, %d results", code, len(rs))
	}
	if r := rs[0]; !r.Valid || r.SerialScheme != "unit" || r.SerialCounter == nil || *r.SerialCounter != 42 {
		t.Errorf("a serial of unit: %+v", r)
	}
	if r := rs[1]; r.Valid || len(r.Errors) != 1 || r.Errors[0].Code != inspect.CodeSerialCheck || r.Errors[0].Pos != 8 || r.SerialScheme != "" {
		t.Errorf("a wrong check character: %+v", r)
	}
	if r := rs[2]; !r.Valid || r.SerialScheme != "" {
		t.Errorf("a serial of no scheme: %+v", r)
	}
	rs, code = run("(01)09506000134352(21)SN0000428\n")
	if code != 0 || len(rs) != 1 || rs[0].Valid || rs[0].Errors[0].AI != "21" {
		t.Fatalf("stdin: exit %d, %+v", code, rs)
	}
	if _, code := run("", "--bogus"); code != 2 {
		t.Fatalf("an unknown flag: exit %d, want 2", code)
	}
}
