package uplink

import (
	"time"

	"github.com/scangw/scangw/station/wire"
)

// event encodes one of the uplink's own events (status, heartbeat, reply)
// from the gateway's source, with a fresh id and the current time, and
// returns it with its id.
func (u *Uplink) event(typ string, data any) ([]byte, string) {
	id := wire.NewID()
	b, err := wire.Event{ID: id, Source: u.source, Type: typ, Time: time.Now(), Data: data}.Encode()
	if err != nil {
		panic(err) // the wire package's plain data types: cannot fail
	}
	return b, id
}

// SetConfigHash makes h the config hash of the status message and the
// heartbeats; a connected session republishes its retained status with it
// at once. A live reload calls it.
func (u *Uplink) SetConfigHash(h string) {
	u.configHash.Store(&h)
	select {
	case u.rebirth <- struct{}{}:
	default: // one is pending: it will read the newest hash
	}
}

// statusPayload encodes the status with state and this instance.
func (u *Uplink) statusPayload(state string) []byte {
	st := wire.Status{
		State: state, Version: u.cfg.Version, ConfigHash: *u.configHash.Load(),
		StartTime: u.started.UTC(), Epoch: u.cfg.Backlog.Epoch(), Instance: u.instance,
	}
	b, _ := u.event(wire.StatusType, st)
	return b
}

// Health is the gateway's health: what each heartbeat reports, and what
// the status page shows.
type Health struct {
	// Backlog is the number of messages waiting in the buffer.
	Backlog int64
	// OldestAge is the age of the oldest waiting message (0 when none).
	OldestAge time.Duration
	// ClockSynced says whether event times can be trusted.
	ClockSynced bool
	Stations    []wire.StationStatus
	Serials     []wire.SerialStatus
	Printers    []wire.PrinterStatus
}

// Health gathers the gateway's health from the backlog, the stations and
// the clock.
func (u *Uplink) Health() Health {
	h := Health{Backlog: u.cfg.Backlog.Depth(), ClockSynced: u.cfg.ClockSynced()}
	if oldest, ok := u.cfg.Backlog.Oldest(); ok {
		h.OldestAge = max(time.Since(oldest), 0)
	}
	if u.cfg.Stations != nil {
		h.Stations, _ = u.cfg.Stations.Status("")
	}
	if a := u.cfg.Assignments; a != nil {
		h.Serials, h.Printers = a.Schemes(), a.Printers()
	}
	return h
}

func (h Health) wire() *wire.Health {
	d := &wire.Health{
		Backlog:          h.Backlog,
		OldestAgeSeconds: h.OldestAge.Seconds(),
		ClockSynced:      h.ClockSynced,
		Stations:         h.Stations,
		Serials:          h.Serials,
		Printers:         h.Printers,
	}
	if d.Stations == nil {
		d.Stations = []wire.StationStatus{}
	}
	for _, st := range h.Stations {
		for _, sc := range st.Scanners {
			if sc.Up {
				d.ScannersUp++
			} else {
				d.ScannersDown++
			}
		}
	}
	return d
}

// heartbeat encodes a heartbeat event and returns it with its id.
func (u *Uplink) heartbeat() ([]byte, string) {
	d := wire.Heartbeat{
		Instance:         u.instance,
		ConfigHash:       *u.configHash.Load(),
		DuplicateGateway: u.ident.duplicate(),
		UptimeSeconds:    time.Since(u.started).Seconds(),
		Health:           u.Health().wire(),
	}
	switch u.permitted.Load() {
	case 1:
		d.PublishPermitted = new(true)
	case 0:
		d.PublishPermitted = new(false)
	}
	return u.event(wire.HeartbeatType, d)
}
