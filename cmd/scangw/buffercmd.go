package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station/wire"
)

const bufferUsage = `usage: scangw buffer COMMAND [--config FILE | --dir DIR]

  stats            depth, epoch, next seq, oldest message, disk use (JSON)
  peek [--n N]     the first N waiting messages (JSON lines; default 10)
  export           every waiting message (JSON lines)
  salvage FROM     queue the readable messages of FROM (a moved-aside
                   .corrupt-* directory) into this buffer, skipping any
                   already there

stats, peek and export read a stopped gateway's buffer and refuse while a
running scangw holds it. salvage writes: stop scangw first.

A message line has pos, time, stream (what it was stored under, e.g.
scans/dock-1; a whole topic for messages stored by older versions),
topic (where it is published: known from --config, and for messages of
older versions; absent with --dir alone), seq and epoch (0 and "" when
the message was stored without them, by an older version), and payload.
`

func bufferCmd(ctx context.Context, out io.Writer, args []string) error {
	if len(args) == 0 {
		return badUsage("%s", bufferUsage)
	}
	cmd := args[0]
	if !slices.Contains([]string{"stats", "peek", "export", "salvage"}, cmd) {
		return badUsage("unknown buffer command %q\n\n%s", cmd, bufferUsage)
	}
	fs := flag.NewFlagSet("buffer "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "/etc/scangw/scangw.yaml", "config file naming buffer.dir")
	dir := fs.String("dir", "", "buffer directory (overrides --config)")
	n := fs.Int("n", 10, "messages to show (peek)")
	if err := fs.Parse(args[1:]); err != nil {
		return badUsage("%v\n\n%s", err, bufferUsage)
	}
	var topics *wire.Topics // nil: the config's topics are not known
	if *dir == "" {
		cfg, err := configs.Load(*cfgPath)
		if err != nil {
			return fmt.Errorf("%w (or give --dir)", err)
		}
		*dir = cfg.Buffer.Dir
		t := wire.TopicsFor(cfg.MQTT.TopicPrefix, cfg.Gateway.Site, cfg.Gateway.ID)
		topics = &t
	}
	switch cmd {
	case "stats", "peek", "export":
		b, err := buffer.Open(buffer.Options{Dir: *dir, ReadOnly: true})
		if errors.Is(err, buffer.ErrLocked) {
			return fmt.Errorf("%s is held by a running scangw: stop it first, or read its /metrics", *dir)
		}
		if err != nil {
			return err
		}
		defer b.Close()
		switch cmd {
		case "stats":
			return bufferStats(out, b, *dir)
		case "peek":
			return bufferDump(out, b, *n, topics)
		default:
			return bufferDump(out, b, -1, topics)
		}
	case "salvage":
		if fs.NArg() != 1 {
			return badUsage("salvage needs the directory to salvage from\n\n%s", bufferUsage)
		}
		b, err := buffer.Open(buffer.Options{Dir: *dir})
		if errors.Is(err, buffer.ErrLocked) {
			return fmt.Errorf("%s is held by a running scangw: stop it first (it salvages by itself after a corruption)", *dir)
		}
		if err != nil {
			return err
		}
		defer b.Close()
		got, err := b.Salvage(ctx, fs.Arg(0))
		fmt.Fprintf(out, "salvaged %d messages from %s into %s\n", got, fs.Arg(0), *dir)
		return err
	}
	return badUsage("unknown buffer command %q\n\n%s", cmd, bufferUsage)
}

func bufferStats(out io.Writer, b *buffer.Buffer, dir string) error {
	st := map[string]any{
		"dir":        dir,
		"format":     b.Format(),
		"epoch":      b.Epoch(),
		"depth":      b.Depth(),
		"next_seq":   b.NextSeq(),
		"disk_bytes": b.DiskBytes(),
	}
	if t, ok := b.Oldest(); ok {
		st["oldest"] = t.UTC().Format(time.RFC3339Nano)
		st["oldest_age_seconds"] = int64(time.Since(t).Seconds())
	}
	return json.NewEncoder(out).Encode(st)
}

// bufferDump writes waiting messages as JSON lines; max < 0 means all.
func bufferDump(out io.Writer, b *buffer.Buffer, max int, topics *wire.Topics) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var from uint64
	for shown := 0; max < 0 || shown < max; {
		want := 1024
		if max >= 0 {
			want = min(want, max-shown)
		}
		es, err := b.Peek(from, want)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return nil
		}
		for _, e := range es {
			// "topic" is where the message goes, or nothing: a script
			// that republishes export lines must never get a relative
			// stream as a topic.
			line := struct {
				Pos     uint64 `json:"pos"`
				Time    string `json:"time"`
				Stream  string `json:"stream"`
				Topic   string `json:"topic,omitempty"`
				Seq     uint64 `json:"seq"`
				Epoch   string `json:"epoch"`
				Payload any    `json:"payload"`
			}{Pos: e.Pos, Time: e.Time.UTC().Format(time.RFC3339Nano), Stream: e.Stream, Seq: e.Seq, Epoch: e.Epoch, Payload: string(e.Payload)}
			switch {
			case topics != nil:
				line.Topic = topics.Of(e.Stream)
			case !wire.IsStream(e.Stream):
				line.Topic = e.Stream
			}
			if json.Valid(e.Payload) {
				line.Payload = json.RawMessage(e.Payload)
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			from = e.Pos + 1
			shown++
		}
	}
	return nil
}
