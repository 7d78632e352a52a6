package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
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
		`{"v":1,"id":"c4b","cmd":"resend","args":{"from":2,"to":9,"epoch":"e1"}}`,
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
		if cmd.Station != "" && !wire.ValidID(cmd.Station) {
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
			if bad.Error.Code != wire.CodeTooLarge {
				t.Fatalf("signed %s refused: %+v", s, bad.Error)
			}
			return
		}
		if cmd2.ID != cmd.ID || cmd2.Cmd != cmd.Cmd || cmd2.Station != cmd.Station || !bytes.Equal(cmd2.Args, cmd.Args) {
			t.Fatalf("signing changed the command: %+v -> %+v", cmd, cmd2)
		}
	})
}

// FuzzStationArgs feeds the args of set_mode, set_context and resend (a
// JSON object, as the decoder passes them on) to the uplink's strict args
// decoding: it never panics, a refused command reaches neither the
// stations nor the resender and changes nothing, and what it passes on is
// well-formed.
func FuzzStationArgs(f *testing.F) {
	for _, seed := range []string{
		`{"mode":"ship"}`, `{"mode":"stock"}`, `{}`, `{"mode":"ship","x":1}`, `{"mode":1}`,
		`{"context":{"order":"PO-1"}}`, `{"context":{"order":1}}`, `{"context":{}}`, `{"context":{"":"x"}}`,
		`{"from":2}`, `{"from":0}`, `{"from":3,"to":2}`, `{"from":1,"to":0,"epoch":"e"}`, `{"from":"1"}`, `{"from":-1}`,
		`{"MODE":"ship"}`, `{"mode":"ship","mode":"count"}`, `{"context":null}`, `{"from":1e3}`,
	} {
		for cmd := range byte(3) {
			f.Add(cmd, []byte(seed))
		}
	}
	commands := []string{wire.CmdSetMode, wire.CmdSetContext, wire.CmdResend}
	f.Fuzz(func(t *testing.T, which byte, args []byte) {
		var obj map[string]any
		if json.Unmarshal(args, &obj) != nil || obj == nil {
			return // the decoder refuses args that are not an object
		}
		stations := newFakeStations("dock-3")
		resender := &fakeResender{epoch: "e", kept: []uint64{1, 2, 3}}
		u := New(Config{Stations: stations, Resender: resender, Site: "s", Gateway: "g"}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		cmd := Command{ID: "f", Cmd: commands[int(which)%len(commands)], Station: "dock-3", Args: args}
		before := stations.state("dock-3")
		r := u.execute(context.Background(), cmd)
		switch {
		case r.Error == nil:
		case r.Error.Code == wire.CodeBadArgs:
			if cmd.Cmd == wire.CmdResend && resender.ncalls() != 0 {
				t.Fatalf("refused resend %s reached the resender", args)
			}
			if stations.state("dock-3") != before {
				t.Fatalf("refused %s %s changed the station: %s -> %s", cmd.Cmd, args, before, stations.state("dock-3"))
			}
		default:
			t.Fatalf("%s %s: code %s (%s), want ok or bad_args", cmd.Cmd, args, r.Error.Code, r.Error.Message)
		}
		if mode := stations.mode("dock-3"); !slices.Contains(wire.Modes, mode) {
			t.Fatalf("%s %s left mode %q", cmd.Cmd, args, mode)
		}
	})
}
