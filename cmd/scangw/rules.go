package main

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/uplink"
)

// ruleSets feeds the rule engine: the last good sets persisted in the
// buffer's state (so a reboot without network still validates), the file
// named in the config, and the retained MQTT rules topics. A refused set
// leaves the one in force in place.
type ruleSets struct {
	engine *rules.Engine
	buf    *buffer.Buffer
	log    *slog.Logger
	loads  *prometheus.CounterVec

	mu    sync.Mutex
	saved map[string][]byte // scope -> envelope in force
}

func newRuleSets(cfg *configs.Config, buf *buffer.Buffer, log *slog.Logger, reg prometheus.Registerer) (*ruleSets, error) {
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
	rs := &ruleSets{
		engine: engine, buf: buf, log: log, saved: map[string][]byte{},
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_rules_loads_total",
			Help: "Rule sets offered to the engine, by source (state, file, mqtt) and result (ok or the refusal's code).",
		}, []string{"source", "result"}),
	}
	reg.MustRegister(rs.loads)
	for _, scope := range []string{rules.ScopeSite, rules.ScopeGateway} {
		env, err := buf.LoadState("rules/" + scope)
		if err != nil {
			continue // none saved yet
		}
		set, err := engine.Restore(env)
		rs.count("state", err)
		if err != nil {
			log.Error("saved rule set refused; validating without it", "scope", scope, "err", err)
			continue
		}
		rs.saved[scope] = env
		log.Info("rule set restored", "rules", set.Name())
	}
	if cfg.Rules.File != "" {
		env, err := os.ReadFile(cfg.Rules.File)
		if err != nil {
			log.Error("rules.file unreadable; keeping the rule set in force", "file", cfg.Rules.File, "err", err)
		} else {
			rs.offer("file", env) // a refusal is logged and counted
		}
	}
	return rs, nil
}

// fromMQTT takes a message of a rules topic. Retained sets come back at
// every connect: the one in force is skipped without a word.
func (rs *ruleSets) fromMQTT(topic string, payload []byte) error {
	if len(payload) == 0 {
		return nil // a cleared retained message withdraws nothing
	}
	if err := rs.offer("mqtt", payload); err != nil {
		return &uplink.CommandError{Code: rules.Code(err), Message: err.Error()}
	}
	return nil
}

// offer loads env if it is new, and reports why it was refused.
func (rs *ruleSets) offer(source string, env []byte) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, s := range rs.saved {
		if bytes.Equal(s, env) {
			return nil
		}
	}
	set, err := rs.engine.Load(env)
	rs.count(source, err)
	if err != nil {
		rs.log.Warn("rule set refused; the one in force stays", "source", source, "code", rules.Code(err), "err", err, "in_force", rs.engine.Version())
		return err
	}
	if err := rs.buf.SaveState("rules/"+set.Scope, env); err != nil {
		rs.log.Error("rule set in force but not persisted: a reboot without network falls back to the previous one", "rules", set.Name(), "err", err)
	}
	rs.saved[set.Scope] = env
	rs.log.Info("rule set loaded", "source", source, "rules", set.Name(), "in_force", rs.engine.Version())
	return nil
}

func (rs *ruleSets) count(source string, err error) {
	result := "ok"
	if err != nil {
		result = rules.Code(err)
	}
	rs.loads.WithLabelValues(source, result).Inc()
}
