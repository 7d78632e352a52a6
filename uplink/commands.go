package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// The commands that act on the gateway's parts: status, set_mode,
// set_context (Config.Stations) and resend (Config.Resender). Their args
// are decoded strictly here, so a part sees only well-formed requests and
// a typo in an argument's name is a bad_args reply, not a silent default.

// gatewayStatus is the result of a status command without a station.
type gatewayStatus struct {
	Epoch    string               `json:"epoch"`
	Backlog  int64                `json:"backlog"`
	NextSeq  uint64               `json:"next_seq"`
	Stations []wire.StationStatus `json:"stations"`
}

// gatewayCommand carries out status, set_mode, set_context and resend.
func (u *Uplink) gatewayCommand(ctx context.Context, cmd Command) (any, error) {
	if cmd.Cmd == wire.CmdResend {
		return u.resend(ctx, cmd)
	}
	if u.cfg.Stations == nil {
		return nil, &wire.Error{Code: wire.CodeUnsupported, Message: "no stations on this gateway"}
	}
	switch cmd.Cmd {
	case wire.CmdStatus:
		st, err := u.cfg.Stations.Status(cmd.Station)
		if err != nil || cmd.Station != "" {
			return first(st), err
		}
		b := u.cfg.Backlog
		return gatewayStatus{Epoch: b.Epoch(), Backlog: b.Depth(), NextSeq: b.NextSeq(), Stations: st}, nil
	case wire.CmdSetMode:
		var args struct {
			Mode string `json:"mode"`
		}
		if err := strictArgs(cmd.Args, &args); err != nil || args.Mode == "" {
			return nil, badArgs(`set_mode wants {"mode": "receive|ship|return|transfer|count|pack|build|unpack|assign"}`)
		}
		return u.cfg.Stations.SetMode(ctx, cmd.Station, args.Mode)
	case wire.CmdSetContext:
		var args struct {
			Context map[string]string `json:"context"`
		}
		if err := strictArgs(cmd.Args, &args); err != nil {
			return nil, badArgs(`set_context wants {"context": {"order": "PO-1234", ...}} (an empty object clears it)`)
		}
		return u.cfg.Stations.SetContext(ctx, cmd.Station, args.Context)
	}
	return nil, &wire.Error{Code: wire.CodeUnsupported, Message: cmd.Cmd + " is not a gateway command"}
}

// first is the one station a status with a station reports.
func first(st []wire.StationStatus) any {
	if len(st) == 0 {
		return nil
	}
	return st[0]
}

// resend puts delivered events with from <= seq <= to (of the current
// epoch, unless another is named) back in the queue, out of the audit
// window: the central side repairs a gap it detected.
func (u *Uplink) resend(ctx context.Context, cmd Command) (any, error) {
	if u.cfg.Resender == nil {
		return nil, &wire.Error{Code: wire.CodeUnsupported, Message: "this gateway cannot resend"}
	}
	var args struct {
		From  uint64 `json:"from"`
		To    uint64 `json:"to"`
		Epoch string `json:"epoch"`
	}
	if err := strictArgs(cmd.Args, &args); err != nil || args.From == 0 || (args.To != 0 && args.To < args.From) {
		return nil, badArgs(`resend wants {"from": SEQ, "to": SEQ (optional), "epoch": "..." (optional)}`)
	}
	n, err := u.cfg.Resender.Resend(ctx, args.Epoch, args.From, args.To)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, &wire.Error{Code: wire.CodeNoAuditWindow, Message: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return map[string]int{"requeued": n}, nil
}

// strictArgs decodes a command's args, refusing unknown fields.
func strictArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("no args")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func badArgs(msg string) error { return &wire.Error{Code: wire.CodeBadArgs, Message: msg} }

// noBacklog stands in for a missing Config.Backlog.
type noBacklog struct{}

func (noBacklog) Depth() int64              { return 0 }
func (noBacklog) Oldest() (time.Time, bool) { return time.Time{}, false }
func (noBacklog) Epoch() string             { return "unknown" }
func (noBacklog) NextSeq() uint64           { return 0 }
