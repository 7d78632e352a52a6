package rules

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
)

// StateStore keeps the envelopes in force across reboots (the buffer's
// state implements it). LoadState reports a key never saved with an error
// wrapping fs.ErrNotExist; SaveState returns once the value is on disk.
type StateStore interface {
	LoadState(key string) ([]byte, error)
	SaveState(key string, value []byte) error
}

// Sources of a rule set, as the loads metric labels them.
const (
	SourceState = "state" // persisted, restored at boot
	SourceFile  = "file"  // rules.file of the config
	SourceMQTT  = "mqtt"  // a retained rules topic
)

// Loader keeps an Engine fed, offline first: Restore puts back the sets in
// force before the last shutdown, so a gateway that boots without a network
// validates as it did; Offer loads a set from the config's file or the
// broker and persists it once the engine took it. A refused set leaves the
// one in force in place and says why (a log line, a metric, the error).
type Loader struct {
	engine *Engine
	store  StateStore
	log    *slog.Logger
	loads  *prometheus.CounterVec

	mu    sync.Mutex
	inUse map[string][]byte // scope -> envelope in force
}

// NewLoader makes a loader for engine; reg receives
// scangw_rules_loads_total and, per scope, scangw_rules_loaded and
// scangw_rules_version.
func NewLoader(engine *Engine, store StateStore, log *slog.Logger, reg prometheus.Registerer) *Loader {
	l := &Loader{
		engine: engine, store: store, log: log, inUse: map[string][]byte{},
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_rules_loads_total",
			Help: "Rule sets offered to the engine, by source (state, file, mqtt) and result (ok or the refusal's code).",
		}, []string{"source", "result"}),
	}
	reg.MustRegister(l.loads)
	// Read from the engine at scrape time, so a set swapped in by any
	// path shows, and a gateway that never got one shows 0, not nothing:
	// an alert on "no rules" needs the series.
	for _, scope := range []string{ScopeSite, ScopeGateway} {
		version := func() float64 {
			if s := engine.Current(scope); s != nil {
				return float64(s.Version)
			}
			return 0
		}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "scangw_rules_loaded",
				Help:        "1 while a rule set of the scope is in force, 0 while scans are checked without one.",
				ConstLabels: prometheus.Labels{"scope": scope},
			}, func() float64 { return min(version(), 1) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "scangw_rules_version",
				Help:        "Version of the scope's rule set in force; 0 when none.",
				ConstLabels: prometheus.Labels{"scope": scope},
			}, version),
		)
	}
	return l
}

func stateKey(scope string) string { return "rules/" + scope }

// Restore loads the persisted set of each scope. A set refused now (a key
// withdrawn from the config, say) is logged and skipped: validation goes on
// without it.
func (l *Loader) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, scope := range []string{ScopeSite, ScopeGateway} {
		env, err := l.store.LoadState(stateKey(scope))
		if errors.Is(err, fs.ErrNotExist) {
			continue // none saved yet
		}
		if err != nil {
			l.log.Error("saved rule set unreadable; validating without it", "scope", scope, "err", err)
			continue
		}
		set, err := l.engine.Restore(env)
		l.count(SourceState, err)
		if err != nil {
			l.log.Error("saved rule set refused; validating without it", "scope", scope, "err", err)
			continue
		}
		l.inUse[scope] = env
		l.log.Info("rule set restored", "rules", set.Name())
	}
}

// OfferFile offers the rule set in the file at path. An unreadable file
// keeps the set in force, like a refused one.
func (l *Loader) OfferFile(path string) error {
	env, err := os.ReadFile(path)
	if err != nil {
		l.log.Error("rules.file unreadable; keeping the rule set in force", "file", path, "err", err)
		return err
	}
	return l.Offer(SourceFile, env)
}

// FromMQTT takes a message of a rules topic. Retained sets come back at
// every connect: the one in force is skipped without a word. A refusal is
// a *wire.Error with the engine's code, for the reply.
func (l *Loader) FromMQTT(topic string, payload []byte) error {
	if len(payload) == 0 {
		return nil // a cleared retained message withdraws nothing
	}
	if err := l.Offer(SourceMQTT, payload); err != nil {
		return &wire.Error{Code: Code(err), Message: err.Error()}
	}
	return nil
}

// Offer loads env from source if it is not a set in force, persists it,
// and reports why it was refused.
func (l *Loader) Offer(source string, env []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.inUse {
		if bytes.Equal(s, env) {
			return nil
		}
	}
	set, err := l.engine.Load(env)
	l.count(source, err)
	if err != nil {
		l.log.Warn("rule set refused; the one in force stays", "source", source, "code", Code(err), "err", err, "in_force", l.engine.Version())
		return err
	}
	// In force even if it cannot be saved: refusing a good set because
	// the disk is failing would only make validation worse.
	if err := l.store.SaveState(stateKey(set.Scope), env); err != nil {
		l.log.Error("rule set in force but not persisted: a reboot without network falls back to the previous one", "rules", set.Name(), "err", err)
	}
	l.inUse[set.Scope] = env
	l.log.Info("rule set loaded", "source", source, "rules", set.Name(), "in_force", l.engine.Version())
	return nil
}

func (l *Loader) count(source string, err error) {
	result := "ok"
	if err != nil {
		result = Code(err)
	}
	l.loads.WithLabelValues(source, result).Inc()
}
