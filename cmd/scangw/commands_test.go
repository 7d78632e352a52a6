package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/uplink"
)

func TestCommander(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	st := station.New(station.Config{ID: "dock-3", Mode: "receive", Site: "s", Gateway: "g", TopicPrefix: "p"},
		station.Deps{Store: buf, State: buf, Validator: station.LengthRule{Min: 1}, Metrics: station.NewMetrics(prometheus.NewRegistry()),
			Log: slog.New(slog.DiscardHandler)})
	c := newCommander([]*station.Station{st}, buf)
	ctx := context.Background()
	do := func(cmd, stationID, args string) (any, error) {
		var raw json.RawMessage
		if args != "" {
			raw = json.RawMessage(args)
		}
		return c.Command(ctx, uplink.Command{ID: "c1", Cmd: cmd, Station: stationID, Args: raw})
	}
	code := func(err error) string {
		var ce *uplink.CommandError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			return "other: " + err.Error()
		}
		return ""
	}
	for _, tc := range []struct{ name, cmd, station, args, code string }{
		{"set mode", uplink.CmdSetMode, "dock-3", `{"mode":"ship"}`, ""},
		{"bad mode", uplink.CmdSetMode, "dock-3", `{"mode":"stock"}`, uplink.CodeBadArgs},
		{"mode missing", uplink.CmdSetMode, "dock-3", `{}`, uplink.CodeBadArgs},
		{"unknown arg", uplink.CmdSetMode, "dock-3", `{"mode":"ship","x":1}`, uplink.CodeBadArgs},
		{"no args", uplink.CmdSetMode, "dock-3", ``, uplink.CodeBadArgs},
		{"unknown station", uplink.CmdSetMode, "dock-9", `{"mode":"ship"}`, uplink.CodeUnknownStation},
		{"set context", uplink.CmdSetContext, "dock-3", `{"context":{"order":"PO-1"}}`, ""},
		{"context not strings", uplink.CmdSetContext, "dock-3", `{"context":{"order":1}}`, uplink.CodeBadArgs},
		{"station status", uplink.CmdStatus, "dock-3", ``, ""},
		{"gateway status", uplink.CmdStatus, "", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := do(tc.cmd, tc.station, tc.args); code(err) != tc.code {
				t.Fatalf("code %q, want %q", code(err), tc.code)
			}
		})
	}
	if mode, c := st.State(); mode != "ship" || c["order"] != "PO-1" {
		t.Fatalf("state after commands: %q %v (bad commands must change nothing)", mode, c)
	}
	res, _ := do(uplink.CmdStatus, "", "")
	b, _ := json.Marshal(res)
	if want := `"stations":[{"id":"dock-3","mode":"ship","context":{"order":"PO-1"},"running":false}]`; !json.Valid(b) || !strings.Contains(string(b), want) {
		t.Fatalf("status %s lacks %s", b, want)
	}
}

func TestCommanderResendFromAuditWindow(t *testing.T) {
	ctx := context.Background()
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), AuditWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	for range 3 {
		buf.Append(ctx, "t", func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"data":{"seq":%d,"epoch":%q}}`, seq, buf.Epoch()), nil
		})
	}
	for pos := uint64(1); pos <= 3; pos++ {
		buf.Ack(pos)
	}
	buf.Append(ctx, "t", func(seq uint64) ([]byte, error) { return []byte(`{}`), nil }) // commits the acks
	c := newCommander(nil, buf)
	res, err := c.Command(ctx, uplink.Command{ID: "r", Cmd: uplink.CmdResend, Args: json.RawMessage(`{"from":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res); string(b) != `{"requeued":2}` {
		t.Fatalf("resend result %s", b)
	}
	if _, err := c.Command(ctx, uplink.Command{ID: "r", Cmd: uplink.CmdResend, Args: json.RawMessage(`{"from":0}`)}); err == nil {
		t.Fatal("resend from 0 accepted")
	}
}
