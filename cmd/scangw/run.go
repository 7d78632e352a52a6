package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/hotplug"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/uplink"
)

// run wires the parts of the daemon from cfg and runs them until ctx ends.
func run(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	buf, err := openBuffer(ctx, cfg.Buffer, log.With("part", "buffer"), reg)
	if err != nil {
		return err
	}
	defer buf.Close() // last: stations and uplink have stopped using it
	log.Info("buffer open", "dir", cfg.Buffer.Dir, "epoch", buf.Epoch(), "backlog", buf.Depth())

	engine, err := newRuleEngine(cfg, buf)
	if err != nil {
		return err
	}
	loader := rules.NewLoader(engine, buf, log.With("part", "rules"), reg)
	loader.Restore()
	if cfg.Rules.File != "" {
		loader.OfferFile(cfg.Rules.File) // a refusal is logged and counted
	}

	// Made before stations and uplink, so neither waits for the other.
	notices := uplink.NewNotices()
	// Kernel hotplug events cut the scanners' reopen backoff short.
	hp := hotplug.New(log.With("part", "hotplug"))
	stations, err := buildStations(cfg, buf, engine, notices, hp, reg, log)
	if err != nil {
		return err
	}
	upCfg := uplinkConfig(cfg.MQTT, cfg.Gateway)
	upCfg.Version, upCfg.ConfigHash = version(), cfg.Hash()
	upCfg.State, upCfg.Backlog, upCfg.Resender = buf, buf, buf
	upCfg.Stations, upCfg.Notices, upCfg.Rules = stations, notices, loader.FromMQTT
	upCfg.ClockSynced = station.KernelClockSynced
	// Files the config names must be usable before anything connects; a
	// broken one is a config error, named by its key.
	if err := uplink.CheckLocal(upCfg); err != nil {
		return uplinkSetupError(err)
	}
	up := uplink.New(upCfg, uplinkQueue{buf}, log.With("part", "uplink"), reg)

	// Bind before anything runs: a port in use is a config error, and
	// returning later would leave parts running on a closed buffer.
	var ln net.Listener
	if cfg.HTTP.Listen != "" {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
		}
		log.Info("http listening", "addr", ln.Addr().String())
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return stations.Run(ctx) })
	g.Go(func() error { return up.Run(ctx) })
	g.Go(func() error { return buf.Run(ctx) })
	g.Go(func() error { return hp.Run(ctx) })
	if ln != nil {
		page := &statusPage{cfg: cfg, buf: buf, stations: stations, up: up, started: time.Now()}
		g.Go(func() error { return serveHTTP(ctx, ln, reg, stations.Ready, page) })
	}
	g.Go(func() error { return notifyReady(ctx, stations.Ready, log) })
	err = g.Wait()
	log.Info("stopped", "backlog", buf.Depth())
	return err
}

// notifyReady tells systemd READY=1 once every station is ready: its
// pipeline runs and each scanner is open and configured, or failed to
// open. The broker is not waited for: the dock works while it is down.
func notifyReady(ctx context.Context, ready func() bool, log *slog.Logger) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	log.Info("ready")
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("sd_notify", "err", err)
	}
	<-ctx.Done()
	sdNotify("STOPPING=1")
	return nil
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
