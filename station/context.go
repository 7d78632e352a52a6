package station

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// Modes a station can be in.
var Modes = wire.Modes

// Errors of SetMode and SetContext that the caller's request caused.
var (
	// ErrBadMode reports a mode that is not one of Modes.
	ErrBadMode = workflow.ErrBadMode
	// ErrBadContext reports a context over the limits.
	ErrBadContext = workflow.ErrBadContext
)

func (s *Station) stateKey() string { return "station/" + s.cfg.ID }

// restore puts the state saved before a restart in force: the mode and
// context, and the order progress and open aggregation of the workflow
// (an older scangw saved only the first two, in the same fields).
func (s *Station) restore() {
	st := &workflow.State{Mode: s.cfg.Mode}
	defer func() { s.flowSt.Store(st); s.lastCtx = st }()
	if s.state == nil {
		return
	}
	b, err := s.state.LoadState(s.stateKey())
	if err != nil {
		return // never saved: the configured mode stands
	}
	var p workflow.State
	if err := json.Unmarshal(b, &p); err != nil || !slices.Contains(Modes, p.Mode) {
		s.log.Warn("saved station state unreadable; using the configured mode", "err", err)
		return
	}
	st = &p
	s.log.Info("station state restored", "mode", p.Mode, "context", p.Context, "order", p.Order != nil, "open_aggregation", p.Open != nil)
}

// State returns the station's current mode and context. The context map
// must not be modified.
func (s *Station) State() (mode string, ctx map[string]string) {
	st := s.flowState()
	return st.Mode, st.Context
}

// SetMode switches the station's mode (receive, ship, ...).
func (s *Station) SetMode(ctx context.Context, mode string) error {
	return s.command(ctx, workflow.Input{Time: s.now(), Command: &workflow.Command{Kind: workflow.SetMode, Mode: mode}})
}

// SetContext replaces what the station is working on (for example
// {"order": "PO-1234"}); every scan carries it from then on. An empty map
// clears it.
func (s *Station) SetContext(ctx context.Context, c map[string]string) error {
	return s.command(ctx, workflow.Input{Time: s.now(), Command: &workflow.Command{Kind: workflow.SetContext, Context: maps.Clone(c)}})
}
