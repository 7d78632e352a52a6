package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
)

// Modes a station can be in.
var Modes = []string{"receive", "ship", "return", "transfer", "count"}

// ContextType is the CloudEvents type of a station's mode/context change,
// published (buffered, with a seq) on <prefix>/<site>/<gateway>/events/<station>.
const ContextType = "io.scangw.context.v1"

// Limits on a context, which travels in every scan event.
const (
	maxContextKeys  = 16
	maxContextValue = 256
)

// ErrBadMode reports a mode that is not one of Modes.
var ErrBadMode = errors.New("unknown station mode")

// persisted is the station state kept across reboots.
type persisted struct {
	Mode    string            `json:"mode"`
	Context map[string]string `json:"context,omitempty"`
}

func (s *Station) stateKey() string { return "station/" + s.cfg.ID }

func (s *Station) restore() {
	if s.state == nil {
		return
	}
	b, err := s.state.LoadState(s.stateKey())
	if err != nil {
		return // never saved: the configured mode stands
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil || !slices.Contains(Modes, p.Mode) {
		s.log.Warn("saved station state unreadable; using the configured mode", "err", err)
		return
	}
	s.mode, s.context = p.Mode, p.Context
	s.log.Info("station state restored", "mode", p.Mode, "context", p.Context)
}

// State returns the station's current mode and context. The context map
// must not be modified.
func (s *Station) State() (mode string, ctx map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode, s.context
}

// SetMode switches the station's mode (receive, ship, ...).
func (s *Station) SetMode(ctx context.Context, mode string) error {
	if !slices.Contains(Modes, mode) {
		return fmt.Errorf("%w %q: want one of %v", ErrBadMode, mode, Modes)
	}
	_, c := s.State()
	return s.change(ctx, mode, c)
}

// SetContext replaces what the station is working on (for example
// {"order": "PO-1234"}); every scan carries it from then on. An empty map
// clears it.
func (s *Station) SetContext(ctx context.Context, c map[string]string) error {
	if len(c) > maxContextKeys {
		return fmt.Errorf("context has %d keys, at most %d allowed", len(c), maxContextKeys)
	}
	for k, v := range c {
		if k == "" || len(k) > 64 || len(v) > maxContextValue {
			return fmt.Errorf("context key %q: keys 1 to 64 bytes, values at most %d", k, maxContextValue)
		}
	}
	if len(c) == 0 {
		c = nil
	}
	mode, _ := s.State()
	return s.change(ctx, mode, maps.Clone(c))
}

// change persists the new state, records it as a buffered event, and only
// then applies it: scans after the change carry it, and the central side
// learns of it in seq order with the scans.
func (s *Station) change(ctx context.Context, mode string, c map[string]string) error {
	if s.state != nil {
		b, _ := json.Marshal(persisted{Mode: mode, Context: c})
		if err := s.state.SaveState(s.stateKey(), b); err != nil {
			return err
		}
	}
	_, err := s.store.Append(ctx, s.events, func(seq uint64) ([]byte, error) {
		return encodeEvent(ContextType, uuid.Must(uuid.NewV7()).String(), s.source, s.now(), &contextData{
			Seq: seq, Epoch: s.store.Epoch(), Station: s.cfg.ID, Mode: mode, Context: c, ClockSynced: s.synced(),
		})
	})
	if err != nil {
		return fmt.Errorf("record context change: %w", err)
	}
	s.mu.Lock()
	s.mode, s.context = mode, c
	s.mu.Unlock()
	s.log.Info("station state changed", "mode", mode, "context", c)
	return nil
}

type contextData struct {
	Seq         uint64            `json:"seq"`
	Epoch       string            `json:"epoch"`
	Station     string            `json:"station"`
	Mode        string            `json:"mode"`
	Context     map[string]string `json:"context"`
	ClockSynced bool              `json:"clock_synced"`
}
