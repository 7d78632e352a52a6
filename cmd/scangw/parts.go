package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/hotplug"
	"github.com/scangw/scangw/device/serialscan"
	"github.com/scangw/scangw/device/tcpscan"
	"github.com/scangw/scangw/device/usbdev"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/uplink"
)

// The parts of the daemon, each made from its section of the config.

// openBuffer opens the durable buffer as configured, healing proven
// corruption and waiting out the rest (buffer.OpenWait).
func openBuffer(ctx context.Context, c configs.Buffer, log *slog.Logger, reg prometheus.Registerer) (*buffer.Buffer, error) {
	return buffer.OpenWait(ctx, buffer.Options{
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
	})
}

// newRuleEngine makes the rule engine with the configured keys; the
// buffer's seen index backs its duplicate rules.
func newRuleEngine(cfg *configs.Config, buf *buffer.Buffer) (*rules.Engine, error) {
	var keys []ed25519.PublicKey
	for i, k := range cfg.Rules.Keys {
		pub, err := rules.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("rules.keys[%d]: %w", i, err)
		}
		keys = append(keys, pub)
	}
	engine, err := rules.New(rules.Options{
		Keys:          keys,
		AllowUnsigned: cfg.Rules.AllowUnsigned,
		Site:          cfg.Gateway.Site,
		Gateway:       cfg.Gateway.ID,
		Seen:          buf,
	})
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return engine, nil
}

// stationParts makes the stations from the config, at start and at every
// reload. It keeps each scanner's driver with the settings it was made
// from: a reload that leaves a scanner's settings alone keeps its driver
// (its port stays open, the read in hand goes on), one that changes them
// gets a new driver.
type stationParts struct {
	buf    *buffer.Buffer
	engine station.Validator
	ind    station.Indicator
	hp     *hotplug.Watcher
	dm     *device.Metrics
	sm     *station.Metrics
	log    *slog.Logger

	scanners map[[2]string]*builtScanner // by station id and scanner id
	index    *station.Index              // the stations' workflow index
	assigner *assign.Assigner            // nil: no serial schemes
}

type builtScanner struct {
	cfg   configs.Scanner
	sc    station.Scanner
	unsub func() // its hotplug subscription
}

func newStationParts(buf *buffer.Buffer, engine station.Validator, ind station.Indicator, hp *hotplug.Watcher, reg prometheus.Registerer, log *slog.Logger) (*stationParts, error) {
	index := station.NewIndex(buf.LoadState, buf.SeenRetention(), log.With("part", "workflow"))
	return &stationParts{buf: buf, engine: engine, ind: ind, hp: hp, dm: device.NewMetrics(reg), sm: station.NewMetrics(reg),
		log: log, scanners: map[[2]string]*builtScanner{}, index: index}, nil
}

// build makes the stations of cfg.
func (p *stationParts) build(cfg *configs.Config) (*station.Set, error) {
	var out []*station.Station
	for i := range cfg.Stations {
		u, err := p.update(cfg, i)
		if err != nil {
			return nil, err
		}
		out = append(out, station.New(u.Config, p.deps(u)))
	}
	p.forget(cfg)
	return station.NewSet(out...)
}

// apply brings the running set to cfg. Everything a reload removes (a
// scanner, a station) has stopped before anything it adds starts, so a
// port can move from one scanner or station to another.
func (p *stationParts) apply(ctx context.Context, cfg *configs.Config, set *station.Set) error {
	running := map[string]*station.Station{}
	for _, st := range set.Stations() {
		running[st.ID()] = st
	}
	var kept []*station.Station
	updates := map[string]station.Update{}
	for i, sc := range cfg.Stations {
		if st, ok := running[sc.ID]; ok {
			u, err := p.update(cfg, i)
			if err != nil {
				return err
			}
			kept = append(kept, st)
			updates[sc.ID] = u
		}
	}
	// Stop: removed stations, then the scanners kept stations lose.
	if err := set.Replace(kept...); err != nil {
		return err
	}
	for _, st := range kept {
		u := updates[st.ID()]
		u.Scanners = slices.DeleteFunc(slices.Clone(u.Scanners), func(s station.Scanner) bool {
			return !slices.Contains(st.Scanners(), s)
		})
		if err := st.Update(ctx, u); err != nil {
			return err
		}
	}
	// Start.
	var all []*station.Station
	for i, sc := range cfg.Stations {
		st, ok := running[sc.ID]
		if ok {
			if err := st.Update(ctx, updates[sc.ID]); err != nil {
				return err
			}
		} else {
			u, err := p.update(cfg, i)
			if err != nil {
				return err
			}
			st = station.New(u.Config, p.deps(u))
		}
		all = append(all, st)
	}
	p.forget(cfg)
	return set.Replace(all...)
}

func (p *stationParts) deps(u station.Update) station.Deps {
	return station.Deps{
		Scanners: u.Scanners, Store: p.buf, State: p.buf, Validator: u.Validator,
		Metrics: p.sm, Log: p.log, Indicator: p.ind, Index: p.index, Assigner: p.assigner,
	}
}

// update is station i of cfg as a station.Update, reusing the drivers of
// scanners whose settings did not change.
func (p *stationParts) update(cfg *configs.Config, i int) (station.Update, error) {
	sc := cfg.Stations[i]
	ac, err := assignConfig(sc, i)
	if err != nil {
		return station.Update{}, err
	}
	var scanners []station.Scanner
	debounce := map[string]time.Duration{}
	for _, s := range sc.Scanners {
		key := [2]string{sc.ID, s.ID}
		b := p.scanners[key]
		if b == nil || !reflect.DeepEqual(b.cfg, s) {
			if b != nil {
				b.unsub() // the old driver stops with the update
			}
			// A USB event means nothing to a TCP reader.
			var wake <-chan struct{}
			unsub := func() {}
			if s.Type != "tcp" {
				wake, unsub = p.hp.Subscribe()
			}
			b = &builtScanner{cfg: s, sc: newScanner(s, p.log.With("scanner", s.ID), p.dm, wake), unsub: unsub}
			p.scanners[key] = b
		}
		scanners = append(scanners, b.sc)
		debounce[s.ID] = s.Debounce.D()
	}
	return station.Update{
		Config: station.Config{
			ID:              sc.ID,
			Mode:            sc.Mode,
			Site:            cfg.Gateway.Site,
			Gateway:         cfg.Gateway.ID,
			Debounce:        sc.Debounce.D(),
			ScannerDebounce: debounce,
			NoReadEvents:    sc.NoReadEvents,
			Flow:            flowConfig(cfg, sc),
			EPCIS:           epcisConfig(cfg, sc),
			Assign:          ac,
		},
		Scanners:  scanners,
		Validator: station.Chain{station.LengthRule{Min: sc.MinLength, Max: sc.MaxLength}, p.engine},
	}, nil
}

// forget drops the drivers of scanners cfg no longer has.
func (p *stationParts) forget(cfg *configs.Config) {
	want := map[[2]string]bool{}
	for _, sc := range cfg.Stations {
		for _, s := range sc.Scanners {
			want[[2]string{sc.ID, s.ID}] = true
		}
	}
	for key, b := range p.scanners {
		if !want[key] {
			b.unsub()
			delete(p.scanners, key)
		}
	}
}

// newScanner makes a scanner's driver. One that cannot work here (HID in
// a build without cgo, a serial match that finds no port) stays down and
// says why, while the rest runs: one unusable scanner must not stop a
// whole dock.
func newScanner(s configs.Scanner, log *slog.Logger, dm *device.Metrics, wake <-chan struct{}) station.Scanner {
	var fb map[device.Signal][]byte
	if s.Feedback != (configs.Feedback{}) {
		fb = map[device.Signal][]byte{
			device.Good: []byte(s.Feedback.Good),
			device.Warn: []byte(s.Feedback.Warn),
			device.Bad:  []byte(s.Feedback.Bad),
			// A no-read is answered only where a reader wants it.
			device.Missed: []byte(s.Feedback.NoRead),
		}
	}
	if s.Type == "hid" {
		if err := hidscan.Available(); err != nil {
			log.Error("HID scanner configured but HID is unavailable; it stays down", "err", err)
			return device.Down(s.ID, err)
		}
		return hidscan.New(hidscan.Config{
			ID:       s.ID,
			Match:    hidMatch(s.Match),
			Mode:     s.Protocol,
			Layout:   s.Layout,
			Gap:      s.Gap.D(),
			NoAIM:    s.NoAIM,
			MaxScan:  s.MaxFrame,
			Feedback: fb,
			Wake:     wake,
		}, log, dm)
	}
	if s.Type == "tcp" {
		var allow []netip.Prefix
		for _, a := range s.Allow {
			if p, err := netip.ParsePrefix(a); err == nil { // validated
				allow = append(allow, p)
			}
		}
		return tcpscan.New(tcpscan.Config{
			ID:          s.ID,
			Connect:     s.Connect,
			Listen:      s.Listen,
			Allow:       allow,
			Frame:       frameConfig(s),
			Codes:       codes(s),
			Feedback:    fb,
			IdleTimeout: s.IdleTimeout.D(),
			Wake:        wake,
		}, log, dm)
	}
	port := s.Port
	if port == "" {
		// Configured by match: resolved once, here (usbdev.SerialPort).
		var ok bool
		if port, ok = usbdev.FindSerial(usbMatch(s.Match), log); !ok {
			return device.Down(s.ID, errors.New("no serial port matches"))
		}
	}
	return serialscan.New(serialscan.Config{
		ID:       s.ID,
		Port:     port,
		Baud:     s.Baud,
		Frame:    frameConfig(s),
		Codes:    codes(s),
		Feedback: fb,
		Wake:     wake,
	}, log, dm)
}

// frameConfig is how a serial or tcp scanner's byte stream is cut into
// frames.
func frameConfig(s configs.Scanner) device.FrameConfig {
	return device.FrameConfig{Terminator: []byte(s.Terminator), STXETX: s.Framing == "stx_etx",
		Prefix: []byte(s.Prefix), MaxFrame: s.MaxFrame}
}

// codes is how a scanner's frames are cut into codes and no-reads.
func codes(s configs.Scanner) device.Codes {
	c := device.Codes{Split: []byte(s.Split)}
	for _, nr := range s.NoRead {
		c.NoRead = append(c.NoRead, []byte(nr))
	}
	for _, hb := range s.Heartbeat {
		c.Ignore = append(c.Ignore, []byte(hb))
	}
	return c
}

// uplinkConfig is the MQTT section as the uplink takes it.
func uplinkConfig(m configs.MQTT, gw configs.Gateway) uplink.Config {
	return uplink.Config{
		Broker:         m.Broker,
		Brokers:        m.Brokers,
		ClientID:       m.ClientID,
		Username:       m.Username,
		Password:       m.Password,
		PasswordFile:   m.PasswordFile,
		PasswordEnv:    m.PasswordEnv,
		TLS:            uplink.TLS(m.TLS),
		Inflight:       m.Inflight,
		KeepAlive:      m.KeepAlive.D(),
		ConnectTimeout: m.ConnectTimeout.D(),
		WriteTimeout:   m.WriteTimeout.D(),
		ReconnectMin:   m.ReconnectMin.D(),
		ReconnectMax:   m.ReconnectMax.D(),
		MaxPayload:     int(m.MaxPayload),
		Heartbeat:      m.Heartbeat.D(),
		MaxCommand:     int(m.MaxCommand),
		CommandKeys:    m.CommandPublicKeys(),
		TopicPrefix:    m.TopicPrefix,
		Site:           gw.Site,
		Gateway:        gw.ID,
	}
}

// uplinkQueue is the buffer as the uplink's queue.
type uplinkQueue struct{ *buffer.Buffer }

func (q uplinkQueue) Peek(from uint64, max int) ([]uplink.Message, error) {
	es, err := q.Buffer.Peek(from, max)
	out := make([]uplink.Message, len(es))
	for i, e := range es {
		out[i] = uplink.Message{Pos: e.Pos, Time: e.Time, Stream: e.Stream, Payload: e.Payload}
	}
	return out, err
}

// uplinkSetupError names each unusable setting by its config path.
func uplinkSetupError(err error) error {
	var lines []string
	for _, e := range unjoin(err) {
		var se *uplink.SetupError
		if errors.As(e, &se) {
			lines = append(lines, fmt.Sprintf("mqtt.%s: %v", se.Setting, se.Err))
		} else {
			lines = append(lines, e.Error())
		}
	}
	return fmt.Errorf("config: %s", strings.Join(lines, "\n"))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
