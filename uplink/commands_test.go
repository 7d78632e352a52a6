package uplink

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/wire"
)

// do runs one checked command as the downlink does, and returns its reply
// code ("" for ok) and its result as JSON.
func do(t *testing.T, u *Uplink, cmd, station, args string) (code, result string) {
	t.Helper()
	var raw json.RawMessage
	if args != "" {
		raw = json.RawMessage(args)
	}
	r := u.execute(context.Background(), Command{ID: "c1", Cmd: cmd, Station: station, Args: raw})
	if r.ID != "c1" || r.Cmd != cmd {
		t.Errorf("reply for %q %q, want c1 %s", r.ID, r.Cmd, cmd)
	}
	if r.Error != nil {
		if r.Error.Message == "" {
			t.Errorf("%s: error %s without a message", cmd, r.Error.Code)
		}
		if r.Result != nil {
			t.Errorf("%s: error %s with a result %v", cmd, r.Error.Code, r.Result)
		}
		return r.Error.Code, ""
	}
	b, err := json.Marshal(r.Result)
	if err != nil {
		t.Fatalf("%s: result %v: %v", cmd, r.Result, err)
	}
	return "", string(b)
}

// TestStationCommands runs status, set_mode and set_context against a
// station set: their args are decoded strictly, the stations' own refusals
// keep their codes, and a refused command changes nothing.
func TestStationCommands(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	mustAppend(t, q, 2)
	stations := newFakeStations("dock-3", "dock-4")
	stations.setScanners("dock-3", wire.ScannerStatus{ID: "h1", Up: true})
	u := New(Config{Backlog: q, Stations: stations, Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())

	const (
		dock3Ship = `{"id":"dock-3","mode":"ship","running":true,"scanners":[{"id":"h1","up":true}]}`
		dock3PO1  = `{"id":"dock-3","mode":"ship","context":{"order":"PO-1"},"running":true,"scanners":[{"id":"h1","up":true}]}`
		dock4     = `{"id":"dock-4","mode":"receive","running":true,"scanners":[]}`
	)
	for _, tc := range []struct {
		name, cmd, station, args string
		code                     string // "" for ok
		result                   string // when ok
	}{
		{"set mode", wire.CmdSetMode, "dock-3", `{"mode":"ship"}`, "", dock3Ship},
		{"bad mode", wire.CmdSetMode, "dock-3", `{"mode":"stock"}`, wire.CodeBadArgs, ""},
		{"mode missing", wire.CmdSetMode, "dock-3", `{}`, wire.CodeBadArgs, ""},
		{"mode not a string", wire.CmdSetMode, "dock-3", `{"mode":1}`, wire.CodeBadArgs, ""},
		{"mode null", wire.CmdSetMode, "dock-3", `null`, wire.CodeBadArgs, ""},
		{"unknown arg", wire.CmdSetMode, "dock-3", `{"mode":"ship","x":1}`, wire.CodeBadArgs, ""},
		{"no args", wire.CmdSetMode, "dock-3", ``, wire.CodeBadArgs, ""},
		{"unknown station", wire.CmdSetMode, "dock-9", `{"mode":"ship"}`, wire.CodeUnknownStation, ""},
		{"no station", wire.CmdSetMode, "", `{"mode":"ship"}`, wire.CodeUnknownStation, ""},
		{"set context", wire.CmdSetContext, "dock-3", `{"context":{"order":"PO-1"}}`, "", dock3PO1},
		{"context not strings", wire.CmdSetContext, "dock-3", `{"context":{"order":1}}`, wire.CodeBadArgs, ""},
		{"context not an object", wire.CmdSetContext, "dock-3", `{"context":"PO-1"}`, wire.CodeBadArgs, ""},
		{"context refused by the station", wire.CmdSetContext, "dock-3", `{"context":{"":"x"}}`, wire.CodeBadArgs, ""},
		{"context unknown arg", wire.CmdSetContext, "dock-3", `{"context":{},"order":"PO-2"}`, wire.CodeBadArgs, ""},
		{"context no args", wire.CmdSetContext, "dock-3", ``, wire.CodeBadArgs, ""},
		{"context unknown station", wire.CmdSetContext, "dock-9", `{"context":{}}`, wire.CodeUnknownStation, ""},
		{"station status", wire.CmdStatus, "dock-3", ``, "", dock3PO1},
		{"status of an unknown station", wire.CmdStatus, "dock-9", ``, wire.CodeUnknownStation, ""},
		{"gateway status", wire.CmdStatus, "", ``, "",
			`{"epoch":"` + q.Epoch() + `","backlog":2,"next_seq":3,"stations":[` + dock3PO1 + `,` + dock4 + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before3, before4 := stations.state("dock-3"), stations.state("dock-4")
			code, result := do(t, u, tc.cmd, tc.station, tc.args)
			if code != tc.code {
				t.Fatalf("code %q, want %q", code, tc.code)
			}
			if tc.code == "" && result != tc.result {
				t.Errorf("result %s, want %s", result, tc.result)
			}
			if tc.code != "" && (stations.state("dock-3") != before3 || stations.state("dock-4") != before4) {
				t.Errorf("a refused command changed a station: dock-3 %s → %s, dock-4 %s → %s",
					before3, stations.state("dock-3"), before4, stations.state("dock-4"))
			}
		})
	}
	if got := stations.state("dock-3"); got != dock3PO1 {
		t.Errorf("dock-3 after the commands: %s, want %s (bad commands must change nothing)", got, dock3PO1)
	}

	// An empty context clears it.
	if code, result := do(t, u, wire.CmdSetContext, "dock-3", `{"context":{}}`); code != "" || result != dock3Ship {
		t.Errorf("clearing the context: %q %s, want %s", code, result, dock3Ship)
	}

	// A gateway without stations answers unsupported, whatever the args.
	bare := New(Config{Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())
	for _, c := range []struct{ cmd, station, args string }{
		{wire.CmdStatus, "", ``}, {wire.CmdStatus, "dock-3", ``},
		{wire.CmdSetMode, "dock-3", `{"mode":"ship"}`}, {wire.CmdSetContext, "dock-3", `{"context":{}}`},
	} {
		if code, _ := do(t, bare, c.cmd, c.station, c.args); code != wire.CodeUnsupported {
			t.Errorf("%s %s without stations: code %q, want %s", c.cmd, c.station, code, wire.CodeUnsupported)
		}
	}
}

// TestResendCommand runs resend against the real buffer's audit window:
// delivered events of a seq range go back in the queue, unchanged; bad
// ranges and args are refused and requeue nothing; a buffer that keeps no
// window says so (no_audit_window), and a gateway that cannot resend says
// unsupported.
func TestResendCommand(t *testing.T) {
	t.Parallel()
	buf := openBufferWith(t, buffer.Options{AuditWindow: time.Hour})
	mustAppend(t, buf, 3)
	es, err := buf.Peek(0, 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("Peek = %d messages, %v; want 3", len(es), err)
	}
	for _, e := range es {
		buf.Ack(e.Pos)
	}
	// The deletes commit (with their audit copies) within the ack delay.
	waitUntil(t, 10*time.Second, "the acks to commit", func() bool { return buf.Depth() == 0 })
	u := New(Config{Backlog: buf, Resender: buf, Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())

	for _, tc := range []struct {
		name, args, code, result string
		depth                    int64 // after it
	}{
		{"from 2", `{"from":2}`, "", `{"requeued":2}`, 2},
		{"from 0", `{"from":0}`, wire.CodeBadArgs, "", 2},
		{"no args", ``, wire.CodeBadArgs, "", 2},
		{"empty args", `{}`, wire.CodeBadArgs, "", 2},
		{"to below from", `{"from":3,"to":2}`, wire.CodeBadArgs, "", 2},
		{"unknown arg", `{"from":1,"from_seq":1}`, wire.CodeBadArgs, "", 2},
		{"from not a number", `{"from":"1"}`, wire.CodeBadArgs, "", 2},
		{"negative from", `{"from":-1}`, wire.CodeBadArgs, "", 2},
		{"another epoch", `{"from":1,"epoch":"not-this-one"}`, "", `{"requeued":0}`, 2},
		{"one seq of this epoch", `{"from":1,"to":1,"epoch":"` + buf.Epoch() + `"}`, "", `{"requeued":1}`, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, result := do(t, u, wire.CmdResend, "", tc.args)
			if code != tc.code {
				t.Fatalf("code %q, want %q", code, tc.code)
			}
			if tc.code == "" && result != tc.result {
				t.Errorf("result %s, want %s", result, tc.result)
			}
			if d := buf.Depth(); d != tc.depth {
				t.Errorf("depth %d after it, want %d", d, tc.depth)
			}
		})
	}
	// Requeued as they were born: same seq, epoch, stream and payload.
	back, err := buf.Buffer.Peek(0, 10)
	if err != nil || len(back) != 3 {
		t.Fatalf("Peek after resend = %d messages, %v; want 3", len(back), err)
	}
	for i, want := range []uint64{2, 3, 1} {
		e := back[i]
		if seq, err := seqOf(e.Payload); err != nil || seq != want || e.Seq != want || e.Epoch != buf.Epoch() || e.Stream != scanStream {
			t.Errorf("requeued %d: seq %d (payload %s), epoch %q, stream %q; want seq %d of %s on %s",
				i, e.Seq, e.Payload, e.Epoch, e.Stream, want, buf.Epoch(), scanStream)
		}
	}

	t.Run("no audit window", func(t *testing.T) {
		plain := openBuffer(t)
		mustAppend(t, plain, 1)
		u := New(Config{Backlog: plain, Resender: plain, Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())
		if code, _ := do(t, u, wire.CmdResend, "", `{"from":1}`); code != wire.CodeNoAuditWindow {
			t.Errorf("resend on a buffer without an audit window: code %q, want %s", code, wire.CodeNoAuditWindow)
		}
		if d := plain.Depth(); d != 1 {
			t.Errorf("depth %d, want 1: nothing requeued", d)
		}
	})
	t.Run("no resender", func(t *testing.T) {
		u := New(Config{Backlog: buf, Site: "site1", Gateway: "gw1"}, nil, testLogger(t), prometheus.NewRegistry())
		if code, _ := do(t, u, wire.CmdResend, "", `{"from":1}`); code != wire.CodeUnsupported {
			t.Errorf("resend without a Resender: code %q, want %s", code, wire.CodeUnsupported)
		}
	})
}
