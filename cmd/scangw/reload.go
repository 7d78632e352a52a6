package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/uplink"
)

// A live reload (SIGHUP, systemctl reload scangw) reads the config files
// again and applies what a running gateway can change without dropping
// anything: stations and scanners, the rules file, the log level and the
// HTTP settings. The rest (the buffer, the gateway's identity, the MQTT
// session, the rule keys, the log format) is fixed for the life of the
// process: a reload that changes any of it is refused whole, with a log
// line naming what needs a restart, and so is a config with problems. A
// refused reload changes nothing: the running config stays, and its hash
// with it.

// reloads is where a run gets its reloads from; nil for none (the demo,
// tests that do not reload).
type reloads struct {
	signals <-chan os.Signal
	load    func() (*configs.Config, error)
	level   *slog.LevelVar // the logger's, for log.level
}

// inForce is the config the daemon runs and its hash, computed once: the
// status page asks for it every tick.
type inForce struct {
	cfg  *configs.Config
	hash string
}

// setConfig makes cfg the config in force.
func (l *live) setConfig(cfg *configs.Config) { l.running.Store(&inForce{cfg, cfg.Hash()}) }

// config is the config in force and its hash.
func (l *live) config() (*configs.Config, string) {
	r := l.running.Load()
	return r.cfg, r.hash
}

// live is the running daemon's config and the parts a reload changes.
type live struct {
	running  atomic.Pointer[inForce]
	log      *slog.Logger
	level    *slog.LevelVar
	parts    *stationParts
	stations *station.Set
	loader   *rules.Loader
	up       *uplink.Uplink
	http     *httpServer
	metrics  *daemonMetrics
	notify   *notifier
	results  *prometheus.CounterVec
}

func newReloadMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scangw_config_reloads_total",
		Help: "Live config reloads (SIGHUP), by result: applied, or refused (a config with problems, or a change that needs a restart; the running config stays).",
	}, []string{"result"})
	c.WithLabelValues("applied")
	c.WithLabelValues("refused")
	reg.MustRegister(c)
	return c
}

// serve applies a reload for each signal until ctx ends.
func (l *live) serve(ctx context.Context, r *reloads) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.signals:
			l.reload(ctx, r.load)
		}
	}
}

// reload reads the config and applies it, or refuses it whole.
func (l *live) reload(ctx context.Context, load func() (*configs.Config, error)) {
	if l.notify.Started() {
		l.notify.Reloading()
		defer l.notify.Ready()
	}
	next, err := load()
	if err == nil {
		err = l.apply(ctx, next)
	}
	if err != nil {
		l.results.WithLabelValues("refused").Inc()
		_, hash := l.config()
		l.log.Error("reload refused; the running config stays", "hash", hash, "err", err)
		return
	}
	l.results.WithLabelValues("applied").Inc()
}

// apply makes next the running config.
func (l *live) apply(ctx context.Context, next *configs.Config) error {
	old, oldHash := l.config()
	if fixed := restartOnly(old, next); len(fixed) > 0 {
		return fmt.Errorf("%s changed: that needs a restart (systemctl restart scangw)", strings.Join(fixed, ", "))
	}
	// What can fail without side effects goes first: a listen address
	// that cannot be bound refuses the reload before the stations change.
	if err := l.http.Apply(next.HTTP); err != nil {
		return err
	}
	if err := l.parts.apply(ctx, next, l.stations); err != nil {
		// Only a mode that could not be recorded gets here (the buffer
		// failing); the stations run as far as they were changed.
		l.log.Error("stations only partly reloaded", "err", err)
	}
	l.level.Set(logLevel(next.Log.Level))
	if next.Rules.File != "" {
		l.loader.OfferFile(next.Rules.File) // a refusal is logged and counted; the set in force stays
	}
	l.setConfig(next)
	_, hash := l.config()
	l.up.SetConfigHash(hash)
	l.metrics.SetConfig(next)
	l.log.Info("config reloaded", "hash", hash, "was", oldHash, "stations", len(next.Stations))
	return nil
}

// restartOnly lists the keys that differ between old and next and that a
// running gateway cannot change.
func restartOnly(old, next *configs.Config) []string {
	var out []string
	out = diffKeys(out, "gateway", old.Gateway, next.Gateway)
	out = diffKeys(out, "buffer", old.Buffer, next.Buffer)
	out = diffKeys(out, "mqtt", old.MQTT, next.MQTT)
	out = diffKeys(out, "rules.keys", old.Rules.Keys, next.Rules.Keys)
	out = diffKeys(out, "rules.allow_unsigned", old.Rules.AllowUnsigned, next.Rules.AllowUnsigned)
	out = diffKeys(out, "log.format", old.Log.Format, next.Log.Format)
	// The assigner holds the schemes' counters and the printers' queues.
	out = diffKeys(out, "serials", old.Serials, next.Serials)
	out = diffKeys(out, "printers", old.Printers, next.Printers)
	return out
}

// diffKeys appends the config paths (by YAML key) where a and b differ.
func diffKeys(out []string, path string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a, b) {
			out = append(out, path)
		}
		return out
	}
	for i := range va.NumField() {
		f := va.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || key == "-" {
			continue
		}
		out = diffKeys(out, path+"."+key, va.Field(i).Interface(), vb.Field(i).Interface())
	}
	return out
}
