package station

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/scangw/scangw/station/wire"
)

// Modes a station can be in.
var Modes = wire.Modes

// Limits on a context, which travels in every scan event.
const (
	maxContextKeys  = 16
	maxContextValue = 256
)

// Errors of SetMode and SetContext that the caller's request caused.
var (
	// ErrBadMode reports a mode that is not one of Modes.
	ErrBadMode = errors.New("unknown station mode")
	// ErrBadContext reports a context over the limits.
	ErrBadContext = errors.New("context not accepted")
)

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
		return fmt.Errorf("%w: %d keys, at most %d allowed", ErrBadContext, len(c), maxContextKeys)
	}
	for k, v := range c {
		if k == "" || len(k) > 64 || len(v) > maxContextValue {
			return fmt.Errorf("%w: key %q: keys 1 to 64 bytes, values at most %d", ErrBadContext, k, maxContextValue)
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
	_, err := s.store.Submit(ctx, wire.EventStream(s.cfg.ID), func(seq uint64) ([]byte, error) {
		return wire.Event{ID: wire.NewID(), Source: s.source, Type: wire.ContextType, Time: s.now(), Data: &wire.ContextData{
			Seq: seq, Epoch: s.store.Epoch(), Station: s.cfg.ID, Mode: mode, Context: c, ClockSynced: s.synced(),
		}}.Encode()
	})()
	if err != nil {
		return fmt.Errorf("record context change: %w", err)
	}
	s.mu.Lock()
	s.mode, s.context = mode, c
	s.mu.Unlock()
	s.settings.Load().repeats.forget()
	s.log.Info("station state changed", "mode", mode, "context", c)
	return nil
}
