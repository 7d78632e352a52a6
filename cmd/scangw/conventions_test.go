package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runExit runs the built binary and returns stdout, stderr and the exit
// status.
func runExit(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("%v: %v", args, err)
	return "", "", -1
}

// TestHelpAndBadFlags: every command's --help prints its usage on stdout
// and exits 0; an unknown flag exits 2 with the complaint on stderr.
func TestHelpAndBadFlags(t *testing.T) {
	bin := buildScangw(t)
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, errs, code := runExit(t, bin, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errs != "" {
			t.Errorf("scangw %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for cmd := range usages {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "sub", "-h"}} {
			if cmd == "version" && len(args) > 2 {
				continue
			}
			out, errs, code := runExit(t, bin, args...)
			if code != 0 || !strings.HasPrefix(out, "usage: scangw "+cmd) || errs != "" {
				t.Errorf("scangw %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
	}
	for _, args := range [][]string{
		{"run", "--bogus"},
		{"check-config", "--bogus"},
		{"check-config", "a.yaml", "b.yaml"},
		{"devices", "--bogus"},
		{"buffer", "stats", "--bogus"},
		{"buffer", "nonsense"},
		{"rules", "sign", "--bogus"},
		{"rules"},
		{"command", "sign", "--bogus"},
		{"inspect", "--bogus"},
		{"version", "--bogus"},
		{"nonsense"},
	} {
		out, errs, code := runExit(t, bin, args...)
		if code != 2 || errs == "" || out != "" {
			t.Errorf("scangw %v: exit %d, stdout %q, stderr %q; want 2 and a complaint on stderr", args, code, out, errs)
		}
	}
	// A code that starts with "-" can still be inspected.
	if out, _, code := runExit(t, bin, "inspect", "--", "-A1"); code != 0 || !strings.Contains(out, `"input":"-A1"`) {
		t.Errorf("inspect -- -A1: exit %d, %s", code, out)
	}
}

// TestCheckConfigPrint: check-config merges conf.d, prints the hash, and
// with --print the merged config with defaults and no secrets.
func TestCheckConfigPrint(t *testing.T) {
	bin := buildScangw(t)
	dir := t.TempDir()
	main := filepath.Join(dir, "scangw.yaml")
	os.WriteFile(main, []byte(`
gateway: {id: "${SCANGW_TEST_GW:-gw-fallback}", site: s1}
mqtt: {username: u, password: very-secret-password}
stations:
  - id: st1
    scanners: [{id: sc1, port: /dev/ttyACM0}]
`), 0o600)
	os.Mkdir(filepath.Join(dir, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", "10-http.yaml"), []byte("http: {listen: \"0.0.0.0:9754\", token: token-token-token-1234}\n"), 0o600)

	out, errs, code := runExit(t, bin, "check-config", main)
	hash := regexp.MustCompile(`: ok, hash ([0-9a-f]{12})\n$`).FindStringSubmatch(out)
	if code != 0 || hash == nil || !strings.Contains(out, "(+1 in "+filepath.Join(dir, "conf.d")+")") {
		t.Fatalf("check-config: exit %d, %q %q", code, out, errs)
	}
	out, _, code = runExit(t, bin, "check-config", "--print", main)
	for _, want := range []string{"# hash: " + hash[1], "id: gw-fallback", "listen: 0.0.0.0:9754", "token: <redacted>", "password: <redacted>", "keepalive: 30s", "10-http.yaml"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("check-config --print lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"very-secret", "token-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("check-config --print shows the secret %q", secret)
		}
	}

	// A fragment's problem is named by file and line; exit 1.
	os.WriteFile(filepath.Join(dir, "conf.d", "20-bad.yaml"), []byte("\nlog: {level: loud}\n"), 0o600)
	_, errs, code = runExit(t, bin, "check-config", main)
	if code != 1 || !strings.Contains(errs, "log.level: must be one of debug, info, warn, error ("+filepath.Join(dir, "conf.d", "20-bad.yaml")+" line 2)") {
		t.Errorf("check-config of a bad fragment: exit %d, %s", code, errs)
	}
}
