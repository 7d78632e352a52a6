package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/hotplug"
	"github.com/scangw/scangw/device/serialscan"
	"github.com/scangw/scangw/station"
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

	rs, err := newRuleSets(cfg, buf, log.With("part", "rules"), reg)
	if err != nil {
		return err
	}
	// Stations publish their indicator through the uplink, which is made
	// after them (it reports on them): the closure reads it at run time.
	var up *uplink.Uplink
	notify := func(topic string, payload []byte) { up.Notify(topic, payload) }
	// Kernel hotplug events cut the scanners' reopen backoff short.
	hp := hotplug.New(log.With("part", "hotplug"))
	stations := buildStations(cfg, buf, rs.engine, notify, hp, reg, log)
	started := time.Now()
	health := gatewayHealth(buf, stations)
	upCfg := uplink.Config{
		Broker:         cfg.MQTT.Broker,
		ClientID:       cfg.MQTT.ClientID,
		Username:       cfg.MQTT.Username,
		Password:       cfg.MQTT.Password,
		PasswordFile:   cfg.MQTT.PasswordFile,
		PasswordEnv:    cfg.MQTT.PasswordEnv,
		TLS:            uplink.TLS(cfg.MQTT.TLS),
		Inflight:       cfg.MQTT.Inflight,
		KeepAlive:      cfg.MQTT.KeepAlive.D(),
		ConnectTimeout: cfg.MQTT.ConnectTimeout.D(),
		WriteTimeout:   cfg.MQTT.WriteTimeout.D(),
		ReconnectMin:   cfg.MQTT.ReconnectMin.D(),
		ReconnectMax:   cfg.MQTT.ReconnectMax.D(),
		MaxPayload:     int(cfg.MQTT.MaxPayload),
		Heartbeat:      cfg.MQTT.Heartbeat.D(),
		MaxCommand:     int(cfg.MQTT.MaxCommand),
		CommandKeys:    cfg.MQTT.CommandPublicKeys(),
		State:          buf,
		TopicPrefix:    cfg.MQTT.TopicPrefix,
		Site:           cfg.Gateway.Site,
		Gateway:        cfg.Gateway.ID,
		Status: func() uplink.Status {
			return uplink.Status{Version: version(), ConfigHash: cfg.Hash(), StartTime: started, Epoch: buf.Epoch()}
		},
		Health:    health,
		Commander: newCommander(stations, buf),
		Rules:     rs.fromMQTT,
	}
	// Files the config names must be usable before anything connects; a
	// broken one is a config error, named by its key.
	if err := uplink.CheckLocal(upCfg); err != nil {
		return uplinkSetupError(err)
	}
	up = uplink.New(upCfg, buf, log.With("part", "uplink"), reg)

	ready := func() bool {
		for _, st := range stations {
			if !st.Running() {
				return false
			}
		}
		return true
	}

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
	for _, st := range stations {
		g.Go(func() error { return st.Run(ctx) })
	}
	g.Go(func() error { return up.Run(ctx) })
	g.Go(func() error { return buf.Run(ctx) })
	g.Go(func() error { return hp.Run(ctx) })
	if ln != nil {
		page := &statusPage{cfg: cfg, buf: buf, stations: stations, up: up, started: started, health: health}
		g.Go(func() error { return serveHTTP(ctx, ln, reg, ready, up.Connected, page) })
	}
	g.Go(func() error { return notifyReady(ctx, ready, log) })
	err = g.Wait()
	log.Info("stopped", "backlog", buf.Depth())
	return err
}

// openBuffer opens the durable buffer, healing proven corruption (a fresh
// buffer with a new epoch, the old one moved aside and salvaged). Anything
// else that stops it opening — another scangw holding it, permissions, a
// full or failing disk — is not proof of damage: it is logged and retried
// until it clears or ctx ends, so nothing on disk is touched.
func openBuffer(ctx context.Context, c configs.Buffer, log *slog.Logger, reg prometheus.Registerer) (*buffer.Buffer, error) {
	opts := buffer.Options{
		Dir:           c.Dir,
		Logger:        log,
		Registerer:    reg,
		Heal:          true,
		AuditWindow:   c.AuditWindow.D(),
		SeenRetention: c.SeenRetention.D(),
		Limits: buffer.Limits{
			MaxScans:     c.MaxScans,
			MaxBytes:     int64(c.MaxBytes),
			MinFreeBytes: int64(c.MinFree),
			HighWater:    c.HighWater,
		},
	}
	wait := time.Second
	for {
		b, err := buffer.Open(opts)
		if err == nil || errors.Is(err, buffer.ErrNewerFormat) {
			return b, err
		}
		log.Error("buffer cannot be opened; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func buildStations(cfg *configs.Config, buf *buffer.Buffer, engine station.Validator, notify func(string, []byte), hp *hotplug.Watcher, reg prometheus.Registerer, log *slog.Logger) []*station.Station {
	dm := device.NewMetrics(reg)
	sm := station.NewMetrics(reg)
	var out []*station.Station
	for _, sc := range cfg.Stations {
		var scanners []station.Scanner
		for _, s := range sc.Scanners {
			// Scanners live as long as the daemon, so the subscription
			// is never ended.
			wake, _ := hp.Subscribe()
			scanners = append(scanners, newScanner(s, log.With("scanner", s.ID), dm, wake))
		}
		out = append(out, station.New(station.Config{
			ID:          sc.ID,
			Mode:        sc.Mode,
			Site:        cfg.Gateway.Site,
			Gateway:     cfg.Gateway.ID,
			TopicPrefix: cfg.MQTT.TopicPrefix,
		}, station.Deps{
			Scanners:  scanners,
			Store:     buf,
			State:     buf,
			Validator: station.Chain{station.LengthRule{Min: sc.MinLength, Max: sc.MaxLength}, engine},
			Metrics:   sm,
			Log:       log,
			Notify:    notify,
		}))
	}
	return out
}

func newScanner(s configs.Scanner, log *slog.Logger, dm *device.Metrics, wake <-chan struct{}) station.Scanner {
	var fb map[device.Signal][]byte
	if s.Feedback != (configs.Feedback{}) {
		fb = map[device.Signal][]byte{
			device.Good: []byte(s.Feedback.Good),
			device.Warn: []byte(s.Feedback.Warn),
			device.Bad:  []byte(s.Feedback.Bad),
		}
	}
	if s.Type == "hid" {
		if err := hidscan.Available(); err != nil {
			// The scanner stays down (and says why) while the rest runs:
			// one unusable scanner must not stop a whole dock.
			log.Error("HID scanner configured but HID is unavailable; it stays down", "err", err)
			return downScanner{id: s.ID}
		}
		return hidscan.New(hidscan.Config{
			ID: s.ID,
			Match: hidscan.Match{
				VID: uint16(s.Match.VID), PID: uint16(s.Match.PID),
				Serial: s.Match.Serial, Interface: s.Match.Interface, Path: s.Match.Path,
			},
			Mode:     s.Protocol,
			Layout:   s.Layout,
			Gap:      s.Gap.D(),
			NoAIM:    s.NoAIM,
			MaxScan:  s.MaxFrame,
			Feedback: fb,
			Wake:     wake,
		}, log, dm)
	}
	port := s.Port
	if port == "" {
		// Configured by match: resolved once, here; see serialPort.
		var ok bool
		if port, ok = newMatchedSerial(s, log); !ok {
			return downScanner{id: s.ID}
		}
	}
	return serialscan.New(serialscan.Config{
		ID:         s.ID,
		Port:       port,
		Baud:       s.Baud,
		Terminator: []byte(s.Terminator),
		MaxFrame:   s.MaxFrame,
		Feedback:   fb,
		Wake:       wake,
	}, log, dm)
}

// notifyReady tells systemd READY=1 once every station's pipeline runs. The
// broker is not waited for: the dock works while it is down.
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

// serveHTTP serves /metrics, /healthz, /readyz and the status page (/ and
// /status) until ctx ends.
func serveHTTP(ctx context.Context, ln net.Listener, reg *prometheus.Registry, ready, connected func() bool, page *statusPage) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page.serveHTML)
	mux.HandleFunc("GET /status", page.serveJSON)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "stations starting\n", http.StatusServiceUnavailable)
			return
		}
		mq := "disconnected"
		if connected() {
			mq = "connected"
		}
		fmt.Fprintf(w, "ready\nmqtt: %s\n", mq)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
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
