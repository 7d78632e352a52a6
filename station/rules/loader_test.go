package rules_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/wire"
)

// memState is a StateStore in memory; fail makes every save fail.
type memState struct {
	mu    sync.Mutex
	m     map[string][]byte
	saves int
	fail  bool
}

func (s *memState) LoadState(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return v, nil
}

func (s *memState) SaveState(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("disk failing")
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), value...)
	s.saves++
	return nil
}

func newLoader(t *testing.T, state *memState) (*rules.Engine, *rules.Loader, *prometheus.Registry) {
	t.Helper()
	e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east", Gateway: "gw-01", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return e, rules.NewLoader(e, state, slog.New(slog.DiscardHandler), reg), reg
}

func signedSet(t *testing.T, version int, k ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := rules.Sign(mustJSON(t, withVersion(version)), k)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func loads(reg *prometheus.Registry, source, result string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "scangw_rules_loads_total" && labels["source"] == source && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestLoaderOfflineFirst: a loaded set is persisted, and a new engine fed
// from the same state validates with it before any network; a refused set
// (forged, older) leaves the one in force and says why; the set in force
// offered again (a retained message at every connect) is skipped silently.
func TestLoaderOfflineFirst(t *testing.T) {
	state := &memState{}
	e, l, reg := newLoader(t, state)
	l.Restore() // nothing saved yet: not an error
	if err := l.Offer(rules.SourceFile, signedSet(t, 3, key(1))); err != nil {
		t.Fatal(err)
	}
	if v := e.Version(); v != "site:3" || state.saves != 1 {
		t.Fatalf("after a good set: version %q, %d saves", v, state.saves)
	}
	if err := l.FromMQTT("p/dc-east/rules", signedSet(t, 3, key(1))); err != nil || state.saves != 1 {
		t.Fatalf("the set in force offered again: %v, %d saves (want nil and no new save)", err, state.saves)
	}
	err := l.FromMQTT("p/dc-east/rules", signedSet(t, 4, key(2)))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != rules.CodeBadSignature {
		t.Fatalf("forged set: %v, want a *wire.Error with the engine's code", err)
	}
	if err := l.Offer(rules.SourceMQTT, signedSet(t, 2, key(1))); rules.Code(err) != rules.CodeNotNewer {
		t.Fatalf("older set: %v, want %s", err, rules.CodeNotNewer)
	}
	if err := l.FromMQTT("p/dc-east/rules", nil); err != nil {
		t.Fatalf("a cleared retained message: %v", err)
	}
	if v := e.Version(); v != "site:3" {
		t.Fatalf("refusals changed the set in force to %q", v)
	}
	if loads(reg, "file", "ok") != 1 || loads(reg, "mqtt", we.Code) != 1 {
		t.Errorf("loads metric: file/ok %v, mqtt/%s %v", loads(reg, "file", "ok"), we.Code, loads(reg, "mqtt", we.Code))
	}

	// A reboot without network.
	e2, l2, reg2 := newLoader(t, state)
	l2.Restore()
	if v := e2.Version(); v != "site:3" || loads(reg2, "state", "ok") != 1 {
		t.Fatalf("after restore: version %q, state/ok %v", v, loads(reg2, "state", "ok"))
	}
	if err := l2.FromMQTT("p/dc-east/rules", signedSet(t, 3, key(1))); err != nil || state.saves != 1 {
		t.Fatalf("the restored set offered again: %v, %d saves", err, state.saves)
	}
}

// TestLoaderUnsavedSetStaysInForce: a set the disk cannot persist is still
// used (refusing it would only make validation worse); it is reported.
func TestLoaderUnsavedSetStaysInForce(t *testing.T) {
	e, l, _ := newLoader(t, &memState{fail: true})
	if err := l.Offer(rules.SourceMQTT, signedSet(t, 5, key(1))); err != nil {
		t.Fatal(err)
	}
	if v := e.Version(); v != "site:5" {
		t.Fatalf("version %q", v)
	}
}

// TestLoaderRestoreRefused: a persisted set the engine now refuses (its
// key withdrawn) is skipped, counted, and validation goes on without it.
func TestLoaderRestoreRefused(t *testing.T) {
	state := &memState{}
	_, l, _ := newLoader(t, state)
	if err := l.Offer(rules.SourceFile, signedSet(t, 3, key(1))); err != nil {
		t.Fatal(err)
	}
	e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(2))}, Site: "dc-east", Gateway: "gw-01"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rules.NewLoader(e, state, slog.New(slog.DiscardHandler), reg).Restore()
	if v := e.Version(); strings.Contains(v, "site:3") {
		t.Fatalf("a set signed by a withdrawn key restored: %q", v)
	}
	if n := testutil.CollectAndCount(reg, "scangw_rules_loads_total"); n != 1 {
		t.Fatalf("%d load results counted, want the one refusal", n)
	}
}

// TestLoaderFile: rules.file is read and offered; an unreadable one keeps
// the set in force.
func TestLoaderFile(t *testing.T) {
	e, l, _ := newLoader(t, &memState{})
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, signedSet(t, 6, key(1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.OfferFile(path); err != nil || e.Version() != "site:6" {
		t.Fatalf("OfferFile: %v, version %q", err, e.Version())
	}
	if err := l.OfferFile(path + ".missing"); !errors.Is(err, fs.ErrNotExist) || e.Version() != "site:6" {
		t.Fatalf("missing file: %v, version %q", err, e.Version())
	}
}
