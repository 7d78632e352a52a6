package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/uplink"
)

// TestCommandSign signs a command from a file and from stdin: the output
// carries "to" and an "expires" ttl after now, and its signature verifies
// over the canonical form the gateway checks. Bad flags are refused with
// the reason.
func TestCommandSign(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmdFile := filepath.Join(dir, "cmd.json")
	cmd := `{"v":1,"id":"c-1","cmd":"set_mode","station":"dock-3","args":{"mode":"ship","weight":1.50}}`
	if err := os.WriteFile(cmdFile, []byte(cmd), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

	for _, src := range []string{cmdFile, "-"} {
		var out bytes.Buffer
		if err := commandCmd(&out, strings.NewReader(cmd), []string{"sign", "--key", keyFile, "--to", "plant-a/dock-01", "--ttl", "2m", src}, now); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var got struct {
			To, Expires, Sig, ID string
			Args                 struct{ Weight json.Number }
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%s: output %s: %v", src, out.Bytes(), err)
		}
		if got.To != "plant-a/dock-01" || got.Expires != "2026-11-27T10:02:00Z" || got.ID != "c-1" || got.Args.Weight != "1.50" {
			t.Errorf("%s: signed command %s: want to plant-a/dock-01, expires 10:02:00Z, the id and args as written", src, out.Bytes())
		}
		canon, err := uplink.CanonicalCommand(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(got.Sig)
		if !ed25519.Verify(pub, canon, sig) {
			t.Errorf("%s: the signature does not verify over %s", src, canon)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sign", "--key", keyFile, "--to", "dock-01", cmdFile}, "SITE/GATEWAY"},
		{[]string{"sign", "--key", keyFile, "--to", "a/b", "--ttl", "1h", cmdFile}, "at most 15m"},
		{[]string{"sign", "--key", filepath.Join(dir, "missing"), "--to", "a/b", cmdFile}, "no such file"},
		{[]string{"sign", "--to", "a/b", cmdFile}, "usage"},
		{[]string{"verify"}, "usage"},
	} {
		err := commandCmd(&bytes.Buffer{}, strings.NewReader(""), tc.args, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one saying %q", tc.args, err, tc.want)
		}
	}
}
