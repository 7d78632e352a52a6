package uplink

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzDecodeCommand feeds downlink payloads to the command decoder: it
// never panics, accepts only well-formed commands, and a command it
// accepts stays accepted, with the same meaning, once addressed, dated
// and signed.
func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"id":"c1","cmd":"ping"}`,
		`{"v":1,"id":"c2","cmd":"set_mode","station":"dock-3","args":{"mode":"ship"}}`,
		`{"v":1,"id":"c3","cmd":"set_context","station":"dock-3","args":{"order":"PO-4711","n":[1,2.5e3,{"x":null}]}}`,
		`{"v":1,"id":"c4","cmd":"resend","args":{"from_seq":10}}`,
		`{"v":2,"id":"c5","cmd":"ping"}`,
		`{"v":1,"cmd":"ping"}`,
		`{"v":1,"id":"c6","cmd":"ping","sig":"AAAA"}`,
		`{"v":1,"id":"c7","CMD":"set_mode","cmd":"ping"}`,
		`{"v":1,"id":"\u2028<&>","cmd":"ping"}`,
		`{"v":1,"id":"c8","cmd":"ping"} {}`,
		`{"v":1,"id":"c9","cmd":"ping","to":"s/g","expires":"2999-01-01T00:00:00Z"}`,
		`{"v":1,"id":"c10","cmd":"ping","to":"s/h"}`,
		`[1]`, `null`, `"ping"`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	pub, priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey), ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	plain := New(Config{MaxCommand: 16 << 10, Site: "s", Gateway: "g"}, nil, nil, prometheus.NewRegistry())
	signed := New(Config{MaxCommand: 16 << 10, CommandKeys: []ed25519.PublicKey{pub}, Site: "s", Gateway: "g"}, nil, nil, prometheus.NewRegistry())
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, bad := plain.decodeCommand(payload)
		if bad != nil {
			if bad.Error == nil || bad.Error.Code == "" || !slices.Contains(knownCodes, bad.Error.Code) {
				t.Fatalf("refusal without a known code: %+v", bad)
			}
			if len(bad.ID) > maxCommandID || !utf8.ValidString(bad.ID) {
				t.Fatalf("reply id %q", bad.ID)
			}
			if _, bad2 := signed.decodeCommand(payload); bad2 == nil {
				t.Fatalf("the signing gateway accepts what the plain one refuses: %s", payload)
			}
			return
		}
		if cmd.ID == "" || len(cmd.ID) > maxCommandID || !slices.Contains(knownCommands, cmd.Cmd) {
			t.Fatalf("accepted %s as %+v", payload, cmd)
		}
		if cmd.Station != "" && !validID(cmd.Station) {
			t.Fatalf("accepted station %q", cmd.Station)
		}
		if _, bad := signed.decodeCommand(payload); bad == nil && !strings.Contains(string(payload), `"sig"`) {
			t.Fatalf("the signing gateway accepted an unsigned command: %s", payload)
		}
		canon, err := CanonicalCommand(payload)
		if err != nil {
			t.Fatal(err)
		}
		again, err := CanonicalCommand(canon)
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("canonical form not stable: %s -> %s (%v)", canon, again, err)
		}
		s, err := AddressCommand(payload, "s/g", time.Now().Add(5*time.Minute), priv)
		if err != nil {
			t.Fatal(err)
		}
		cmd2, bad := signed.decodeCommand(s)
		if bad != nil {
			// Addressing and signing add bytes; only the size limit may
			// refuse it now.
			if bad.Error.Code != CodeTooLarge {
				t.Fatalf("signed %s refused: %+v", s, bad.Error)
			}
			return
		}
		if cmd2.ID != cmd.ID || cmd2.Cmd != cmd.Cmd || cmd2.Station != cmd.Station || !bytes.Equal(cmd2.Args, cmd.Args) {
			t.Fatalf("signing changed the command: %+v -> %+v", cmd, cmd2)
		}
	})
}
