package uplink

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// CloudEvents types of what the uplink publishes itself (station events
// come through the queue).
const (
	// StatusType is the retained birth, will and shutdown message.
	StatusType = "io.scangw.status.v1"
	// HeartbeatType is the periodic health report.
	HeartbeatType = "io.scangw.heartbeat.v1"
	// ReplyType answers a downlink command.
	ReplyType = "io.scangw.reply.v1"
)

// Topics are one gateway's topics (DESIGN.md, "Wire contract").
type Topics struct {
	Status, Heartbeat, Reply, Cmd string
	// SiteRules and GatewayRules carry retained rule sets.
	SiteRules, GatewayRules string
}

// TopicsFor returns the topics of gateway at site under prefix.
func TopicsFor(prefix, site, gateway string) Topics {
	base := prefix + "/" + site + "/" + gateway
	return Topics{
		Status:       base + "/status",
		Heartbeat:    base + "/heartbeat",
		Reply:        base + "/reply",
		Cmd:          base + "/cmd",
		SiteRules:    prefix + "/" + site + "/rules",
		GatewayRules: base + "/rules",
	}
}

// Status is the gateway's birth, will and shutdown announcement.
type Status struct {
	State      string    `json:"state"` // online, offline
	Version    string    `json:"version"`
	ConfigHash string    `json:"config_hash"`
	StartTime  time.Time `json:"start_time"`
	Epoch      string    `json:"epoch"`
	// Instance is random per process (a UUIDv7): two processes announcing
	// themselves with the same gateway id have different instances.
	Instance string `json:"instance"`
}

// Encode renders st as single-line CloudEvents JSON from source
// (scangw://<site>/<gateway>), with a fresh id and the current time.
func (st Status) Encode(source string) []byte {
	st.StartTime = st.StartTime.UTC()
	b, _ := encodeEvent(source, StatusType, st)
	return b
}

// encodeEvent wraps data in a CloudEvents 1.0 structured-mode envelope
// with a fresh UUIDv7 id and the current time, and returns it with the id.
func encodeEvent(source, typ string, data any) ([]byte, string) {
	id := uuid.Must(uuid.NewV7()).String()
	ev := struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Type            string `json:"type"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            any    `json:"data"`
	}{"1.0", id, source, typ, time.Now().UTC().Format(time.RFC3339Nano), "application/json", data}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err) // the uplink's own plain data types: cannot fail
	}
	return b, id
}

// Health is what the gateway reports about itself in each heartbeat. The
// uplink asks Config.Health for it; the parts that know (buffer, stations,
// clock) live elsewhere.
type Health struct {
	// Backlog is the number of messages waiting in the buffer.
	Backlog int64
	// OldestAge is the age of the oldest waiting message (0 when none).
	OldestAge time.Duration
	// ClockSynced says whether event times can be trusted.
	ClockSynced bool
	Stations    []StationHealth
}

// StationHealth is one station's part of a heartbeat.
type StationHealth struct {
	ID       string
	Running  bool
	Scanners []ScannerHealth
}

// ScannerHealth says whether one scanner is connected.
type ScannerHealth struct {
	ID string
	Up bool
}

// heartbeatData is the data of an io.scangw.heartbeat.v1 event.
type heartbeatData struct {
	Instance string `json:"instance"`
	// PublishPermitted is null until the probe of this connection came
	// back or timed out.
	PublishPermitted *bool   `json:"publish_permitted"`
	DuplicateGateway bool    `json:"duplicate_gateway"`
	UptimeSeconds    float64 `json:"uptime_seconds"`
	*healthData
}

type healthData struct {
	Backlog          int64              `json:"backlog"`
	OldestAgeSeconds float64            `json:"backlog_oldest_age_seconds"`
	ClockSynced      bool               `json:"clock_synced"`
	ScannersUp       int                `json:"scanners_up"`
	ScannersDown     int                `json:"scanners_down"`
	Stations         []stationHealthDTO `json:"stations"`
}

type stationHealthDTO struct {
	ID       string             `json:"id"`
	Running  bool               `json:"running"`
	Scanners []scannerHealthDTO `json:"scanners"`
}

type scannerHealthDTO struct {
	ID string `json:"id"`
	Up bool   `json:"up"`
}

func newHealthData(h Health) *healthData {
	d := &healthData{
		Backlog:          h.Backlog,
		OldestAgeSeconds: h.OldestAge.Seconds(),
		ClockSynced:      h.ClockSynced,
		Stations:         []stationHealthDTO{},
	}
	for _, st := range h.Stations {
		s := stationHealthDTO{ID: st.ID, Running: st.Running, Scanners: []scannerHealthDTO{}}
		for _, sc := range st.Scanners {
			s.Scanners = append(s.Scanners, scannerHealthDTO(sc))
			if sc.Up {
				d.ScannersUp++
			} else {
				d.ScannersDown++
			}
		}
		d.Stations = append(d.Stations, s)
	}
	return d
}
