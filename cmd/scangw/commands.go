package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/uplink"
)

// commander carries out the downlink commands that act on stations.
type commander struct {
	stations map[string]*station.Station
	order    []string
	buf      *buffer.Buffer
}

func newCommander(stations []*station.Station, buf *buffer.Buffer) *commander {
	c := &commander{stations: map[string]*station.Station{}, buf: buf}
	for _, st := range stations {
		c.stations[st.ID()] = st
		c.order = append(c.order, st.ID())
	}
	return c
}

type stationStatus struct {
	ID      string            `json:"id"`
	Mode    string            `json:"mode"`
	Context map[string]string `json:"context,omitempty"`
	Running bool              `json:"running"`
}

// Command implements uplink.Commander.
func (c *commander) Command(ctx context.Context, cmd uplink.Command) (any, error) {
	if cmd.Cmd == uplink.CmdStatus && cmd.Station == "" {
		out := struct {
			Epoch    string          `json:"epoch"`
			Backlog  int64           `json:"backlog"`
			NextSeq  uint64          `json:"next_seq"`
			Stations []stationStatus `json:"stations"`
		}{Epoch: c.buf.Epoch(), Backlog: c.buf.Depth(), NextSeq: c.buf.NextSeq()}
		for _, id := range c.order {
			out.Stations = append(out.Stations, c.status(c.stations[id]))
		}
		return out, nil
	}
	if cmd.Cmd == uplink.CmdResend {
		return c.resend(ctx, cmd)
	}
	st, ok := c.stations[cmd.Station]
	if !ok {
		return nil, &uplink.CommandError{Code: uplink.CodeUnknownStation, Message: "no station " + quote(cmd.Station) + " on this gateway"}
	}
	switch cmd.Cmd {
	case uplink.CmdStatus:
		return c.status(st), nil
	case uplink.CmdSetMode:
		var args struct {
			Mode string `json:"mode"`
		}
		if err := strictArgs(cmd.Args, &args); err != nil || args.Mode == "" {
			return nil, badArgs(`set_mode wants {"mode": "receive|ship|return|transfer|count"}`)
		}
		if err := st.SetMode(ctx, args.Mode); err != nil {
			if errors.Is(err, station.ErrBadMode) {
				return nil, badArgs(err.Error())
			}
			return nil, err
		}
		return c.status(st), nil
	case uplink.CmdSetContext:
		var args struct {
			Context map[string]string `json:"context"`
		}
		if err := strictArgs(cmd.Args, &args); err != nil {
			return nil, badArgs(`set_context wants {"context": {"order": "PO-1234", ...}} (an empty object clears it)`)
		}
		if err := st.SetContext(ctx, args.Context); err != nil {
			return nil, badArgs(err.Error())
		}
		return c.status(st), nil
	}
	return nil, &uplink.CommandError{Code: uplink.CodeUnsupported, Message: cmd.Cmd + " is not a station command"}
}

// resend puts delivered events with from <= seq <= to (of the current
// epoch, unless another is named) back in the queue, out of the audit
// window: the central side repairs a gap it detected.
func (c *commander) resend(ctx context.Context, cmd uplink.Command) (any, error) {
	var args struct {
		From  uint64 `json:"from"`
		To    uint64 `json:"to"`
		Epoch string `json:"epoch"`
	}
	if err := strictArgs(cmd.Args, &args); err != nil || args.From == 0 || (args.To != 0 && args.To < args.From) {
		return nil, badArgs(`resend wants {"from": SEQ, "to": SEQ (optional), "epoch": "..." (optional)}`)
	}
	if args.To == 0 {
		args.To = ^uint64(0)
	}
	if args.Epoch == "" {
		args.Epoch = c.buf.Epoch()
	}
	n, err := c.buf.Requeue(ctx, func(e buffer.Entry) bool {
		var ev struct {
			Data struct {
				Seq   uint64 `json:"seq"`
				Epoch string `json:"epoch"`
			} `json:"data"`
		}
		return json.Unmarshal(e.Payload, &ev) == nil && ev.Data.Epoch == args.Epoch &&
			ev.Data.Seq >= args.From && ev.Data.Seq <= args.To
	})
	if errors.Is(err, buffer.ErrNoAuditWindow) {
		return nil, &uplink.CommandError{Code: uplink.CodeNoAuditWindow, Message: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return map[string]int{"requeued": n}, nil
}

func (c *commander) status(st *station.Station) stationStatus {
	mode, ctx := st.State()
	return stationStatus{ID: st.ID(), Mode: mode, Context: ctx, Running: st.Running()}
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

func badArgs(msg string) error { return &uplink.CommandError{Code: uplink.CodeBadArgs, Message: msg} }

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
