package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/hotplug"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
)

// run wires the parts of the daemon from cfg and runs them until ctx ends.
func run(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	return runReloading(ctx, cfg, log, nil)
}

// runReloading is run, with live reloads from r (nil: none).
func runReloading(ctx context.Context, cfg *configs.Config, log *slog.Logger, r *reloads) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dm := newDaemonMetrics(reg, cfg) // a live reload calls SetConfig on it

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
	parts, err := newStationParts(buf, engine, notices, hp, reg, log)
	if err != nil {
		return err
	}
	assigner, err := newAssigner(cfg, buf, log, reg)
	if err != nil {
		return err
	}
	parts.assigner = assigner
	stations, err := parts.build(cfg)
	if err != nil {
		return err
	}
	upCfg := uplinkConfig(cfg.MQTT, cfg.Gateway)
	upCfg.Version, upCfg.ConfigHash = version(), cfg.Hash()
	upCfg.State, upCfg.Backlog, upCfg.Resender = buf, buf, buf
	upCfg.Stations, upCfg.Notices, upCfg.Rules = stations, notices, loader.FromMQTT
	upCfg.Commands = map[string]uplink.CommandFunc{
		wire.CmdCloseAggregation:  stations.CloseAggregation,
		wire.CmdCancelAggregation: stations.CancelAggregation,
	}
	if assigner != nil {
		upCfg.Commands[wire.CmdAssignSerial] = stations.AssignSerial
		upCfg.Commands[wire.CmdReprint] = stations.Reprint
		upCfg.Commands[wire.CmdGrantSerials] = grantSerials(assigner)
		upCfg.Assignments = assigner
	}
	upCfg.ClockSynced = station.KernelClockSynced
	// Files the config names must be usable before anything connects; a
	// broken one is a config error, named by its key.
	if err := uplink.CheckLocal(upCfg); err != nil {
		return uplinkSetupError(err)
	}
	up := uplink.New(upCfg, uplinkQueue{buf}, log.With("part", "uplink"), reg)

	// Bind before anything runs: a port in use is a config error, and
	// returning later would leave parts running on a closed buffer.
	l := &live{log: log, parts: parts, stations: stations, loader: loader, up: up, metrics: dm, results: newReloadMetrics(reg)}
	l.setConfig(cfg)
	page := &statusPage{cfg: l.config, buf: buf, stations: stations, up: up, started: time.Now()}
	hs, err := newHTTPServer(cfg.HTTP, reg, stations.Ready, page, log.With("part", "http"))
	if err != nil {
		return err
	}
	l.http = hs

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return stations.Run(ctx) })
	g.Go(func() error { return up.Run(ctx) })
	g.Go(func() error { return buf.Run(ctx) })
	g.Go(func() error { return hp.Run(ctx) })
	g.Go(func() error { return hs.Run(ctx) })
	if assigner != nil {
		g.Go(func() error { return assigner.Run(ctx) })
	}
	l.notify = systemdNotifier(log) // a reload says RELOADING=1 and READY=1 through it
	g.Go(func() error {
		return superviseSystemd(ctx, l.notify, stations.Ready, daemonParts(buf, stations, up), log)
	})
	if r != nil {
		l.level = r.level
		g.Go(func() error { return l.serve(ctx, r) })
	}
	err = g.Wait()
	log.Info("stopped", "backlog", buf.Depth())
	return err
}
