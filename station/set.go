package station

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// Set is a gateway's stations by id: what downlink commands, heartbeats
// and the status page ask of them. Errors a request caused are
// *wire.Error with the code to reply with (unknown_station, bad_args);
// anything else is the station's own failure. A reload replaces the set's
// stations while it runs (Replace).
type Set struct {
	mu   sync.Mutex
	list []*Station
	byID map[string]*Station
	runs group
}

// NewSet makes the set of stations; ids must be unique (config
// validation sees to it).
func NewSet(stations ...*Station) (*Set, error) {
	s := &Set{}
	if err := s.Replace(stations...); err != nil {
		return nil, err
	}
	return s, nil
}

// Stations returns the stations in their configured order.
func (s *Set) Stations() []*Station {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// Run runs every station until ctx ends or one fails.
func (s *Set) Run(ctx context.Context) error {
	s.mu.Lock()
	s.runs.begin(ctx)
	for _, st := range s.list {
		s.runs.start(st, st.Run)
	}
	s.mu.Unlock()
	return s.runs.wait()
}

// Replace makes stations the set's stations. A station in both the old
// and the new list runs on (Station.Update changes it in place); one only
// in the old list is stopped, and has returned, before the new ones start.
// Replace calls must not overlap.
func (s *Set) Replace(stations ...*Station) error {
	byID := make(map[string]*Station, len(stations))
	for _, st := range stations {
		if _, dup := byID[st.ID()]; dup {
			return fmt.Errorf("station %q configured twice", st.ID())
		}
		byID[st.ID()] = st
	}
	s.mu.Lock()
	old := s.list
	s.list, s.byID = stations, byID
	s.mu.Unlock()
	for _, st := range old {
		if !slices.Contains(stations, st) {
			s.runs.stop(st)
		}
	}
	for _, st := range stations {
		if !slices.Contains(old, st) {
			s.runs.start(st, st.Run)
		}
	}
	return nil
}

// Busy reports the station whose read has been in its pipeline longest,
// and since when; a zero time when every station waits for reads.
func (s *Set) Busy() (station string, since time.Time) {
	for _, st := range s.Stations() {
		if b := st.Busy(); !b.IsZero() && (since.IsZero() || b.Before(since)) {
			station, since = st.ID(), b
		}
	}
	return station, since
}

// Ready reports whether every station is ready (Station.Ready): what
// /readyz and systemd's READY=1 wait for.
func (s *Set) Ready() bool {
	for _, st := range s.Stations() {
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
	list := s.Stations()
	out := make([]wire.StationStatus, 0, len(list))
	for _, st := range list {
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

// Station returns station id; the error is a *wire.Error
// (unknown_station).
func (s *Set) Station(id string) (*Station, error) { return s.get(id) }

func (s *Set) get(id string) (*Station, error) {
	s.mu.Lock()
	st, ok := s.byID[id]
	s.mu.Unlock()
	if !ok {
		return nil, &wire.Error{Code: wire.CodeUnknownStation, Message: "no station " + strconv.Quote(id) + " on this gateway"}
	}
	return st, nil
}

// requestError gives the errors a request caused their reply code; a
// failure to record the change stays what it is.
func requestError(err error) error {
	if isRequestError(err) {
		return &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
	}
	return err
}

// CloseAggregation closes station id's open aggregation and reports the
// station.
func (s *Set) CloseAggregation(ctx context.Context, id string, args json.RawMessage) (any, error) {
	return s.aggregationCommand(ctx, id, args, (*Station).CloseAggregation)
}

// CancelAggregation drops station id's open aggregation and reports the
// station.
func (s *Set) CancelAggregation(ctx context.Context, id string, args json.RawMessage) (any, error) {
	return s.aggregationCommand(ctx, id, args, (*Station).CancelAggregation)
}

func (s *Set) aggregationCommand(ctx context.Context, id string, args json.RawMessage, do func(*Station, context.Context) error) (any, error) {
	if err := strictArgs(args, &struct{}{}); err != nil {
		return nil, &wire.Error{Code: wire.CodeBadArgs, Message: "takes no args: " + err.Error()}
	}
	st, err := s.get(id)
	if err != nil {
		return nil, err
	}
	if err := do(st, ctx); err != nil {
		return nil, requestError(err)
	}
	return st.Status(), nil
}

// AssignSerial assigns station id's next serial (command assign_serial:
// args {"gtin", "lot", "expiry"}, all optional) and returns its event's
// data.
func (s *Set) AssignSerial(ctx context.Context, id string, args json.RawMessage) (any, error) {
	var p Product
	if err := strictArgs(args, &p); err != nil {
		return nil, &wire.Error{Code: wire.CodeBadArgs, Message: `assign_serial wants {"gtin": "...", "lot": "...", "expiry": "YYMMDD"} (each optional): ` + err.Error()}
	}
	st, err := s.get(id)
	if err != nil {
		return nil, err
	}
	return st.AssignSerial(ctx, wire.TriggerCommand, p)
}

// Reprint prints station id's last serial again, or the one named
// (command reprint: args {"serial": "..."}, optional).
func (s *Set) Reprint(ctx context.Context, id string, args json.RawMessage) (any, error) {
	var a struct {
		Serial string `json:"serial"`
	}
	if err := strictArgs(args, &a); err != nil {
		return nil, &wire.Error{Code: wire.CodeBadArgs, Message: `reprint wants {"serial": "..."} (optional: the station's last): ` + err.Error()}
	}
	st, err := s.get(id)
	if err != nil {
		return nil, err
	}
	return st.Reprint(ctx, wire.TriggerCommand, a.Serial)
}

// strictArgs decodes a command's args, refusing unknown fields; none is
// an empty object.
func strictArgs(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the args")
	}
	return nil
}
