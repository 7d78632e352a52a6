package station

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/station/wire"
)

// Set is a gateway's stations by id: what downlink commands, heartbeats
// and the status page ask of them. Errors a request caused are
// *wire.Error with the code to reply with (unknown_station, bad_args);
// anything else is the station's own failure.
type Set struct {
	list []*Station
	byID map[string]*Station
}

// NewSet makes the set of stations; ids must be unique (config
// validation sees to it).
func NewSet(stations ...*Station) (*Set, error) {
	s := &Set{list: stations, byID: make(map[string]*Station, len(stations))}
	for _, st := range stations {
		if _, dup := s.byID[st.ID()]; dup {
			return nil, fmt.Errorf("station %q configured twice", st.ID())
		}
		s.byID[st.ID()] = st
	}
	return s, nil
}

// Stations returns the stations in their configured order.
func (s *Set) Stations() []*Station { return s.list }

// Run runs every station until ctx ends or one fails.
func (s *Set) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, st := range s.list {
		g.Go(func() error { return st.Run(ctx) })
	}
	return g.Wait()
}

// Ready reports whether every station is ready (Station.Ready): what
// /readyz and systemd's READY=1 wait for.
func (s *Set) Ready() bool {
	for _, st := range s.list {
		if !st.Ready() {
			return false
		}
	}
	return true
}

// Status reports the station id, or every station when id is "".
func (s *Set) Status(id string) ([]wire.StationStatus, error) {
	if id != "" {
		st, err := s.get(id)
		if err != nil {
			return nil, err
		}
		return []wire.StationStatus{st.Status()}, nil
	}
	out := make([]wire.StationStatus, 0, len(s.list))
	for _, st := range s.list {
		out = append(out, st.Status())
	}
	return out, nil
}

// SetMode switches station id to mode and reports it.
func (s *Set) SetMode(ctx context.Context, id, mode string) (wire.StationStatus, error) {
	st, err := s.get(id)
	if err != nil {
		return wire.StationStatus{}, err
	}
	if err := st.SetMode(ctx, mode); err != nil {
		return wire.StationStatus{}, requestError(err)
	}
	return st.Status(), nil
}

// SetContext replaces what station id works on and reports it.
func (s *Set) SetContext(ctx context.Context, id string, c map[string]string) (wire.StationStatus, error) {
	st, err := s.get(id)
	if err != nil {
		return wire.StationStatus{}, err
	}
	if err := st.SetContext(ctx, c); err != nil {
		return wire.StationStatus{}, requestError(err)
	}
	return st.Status(), nil
}

func (s *Set) get(id string) (*Station, error) {
	st, ok := s.byID[id]
	if !ok {
		return nil, &wire.Error{Code: wire.CodeUnknownStation, Message: "no station " + strconv.Quote(id) + " on this gateway"}
	}
	return st, nil
}

// requestError gives the errors a request caused their reply code; a
// failure to record the change stays what it is.
func requestError(err error) error {
	if errors.Is(err, ErrBadMode) || errors.Is(err, ErrBadContext) {
		return &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
	}
	return err
}
