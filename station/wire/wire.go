// Package wire is scangw's contract with the central system (DESIGN.md and
// README, "Wire contract"): the MQTT topics, the CloudEvents 1.0 envelope
// every event travels in, the event types with their data, the JSON
// Schemas of those (package schema, beside this one), and the commands and
// reply codes of the downlink. Station, uplink and demo use it; no other
// package spells a topic or an event type, and a test reads every
// package's literals for it.
//
// # Streams and topics
//
// A station's events belong to a stream: ScanStream, EventStream or
// IndicatorStream of the station, relative to the gateway. The station
// names the stream, the buffer stores it with the event, and the uplink
// publishes it on Topics.Of(stream). So the topic layout lives here alone,
// and a backlog written before a change of topic_prefix goes out under the
// prefix in force.
//
// # Versioning
//
// New fields may be added to an event's data; none is renamed or removed
// without a new type version (io.scangw.scan.v2 beside v1).
package wire

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event types. Each has a schema, schema/<event>.v<N>.json.
const (
	// ScanType is a scan, buffered on ScanStream (carries seq).
	ScanType = "io.scangw.scan.v1"
	// ContextType is a station's mode or context change, buffered on
	// EventStream (carries seq).
	ContextType = "io.scangw.context.v1"
	// NoReadType is a fixed reader's report that an item passed without a
	// readable code, buffered on EventStream (carries seq).
	NoReadType = "io.scangw.noread.v1"
	// OrderType is an order's progress at a station, buffered on
	// EventStream.
	OrderType = "io.scangw.order.v1"
	// AggregationType is a closed pack, build or unpack, buffered on
	// EventStream.
	AggregationType = "io.scangw.aggregation.v1"
	// AssignedType is a serial the station assigned (or re-printed, or
	// had verified), buffered on EventStream.
	AssignedType = "io.scangw.assigned.v1"
	// IndicatorType is a read's outcome, live on IndicatorStream.
	IndicatorType = "io.scangw.indicator.v1"
	// StatusType is the retained birth, will and shutdown message.
	StatusType = "io.scangw.status.v1"
	// HeartbeatType is the periodic health report.
	HeartbeatType = "io.scangw.heartbeat.v1"
	// ReplyType answers a downlink command.
	ReplyType = "io.scangw.reply.v1"
)

// Types lists every event type scangw publishes.
var Types = []string{ScanType, ContextType, NoReadType, OrderType, AggregationType, AssignedType, IndicatorType, StatusType, HeartbeatType, ReplyType}

// Event is one CloudEvents 1.0 event in structured JSON mode.
type Event struct {
	// ID is made when the event happens (NewID), never derived from seq.
	ID     string
	Source string // GatewaySource or StationSource
	Type   string
	Time   time.Time
	Data   any
}

// envelope is Event as JSON.
type envelope struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            any    `json:"data"`
}

// Encode renders e as compact single-line JSON, its time in UTC.
func (e Event) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<", ">" and "&" are common in serials
	err := enc.Encode(&envelope{
		SpecVersion:     "1.0",
		ID:              e.ID,
		Source:          e.Source,
		Type:            e.Type,
		Time:            e.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            e.Data,
	})
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Head is the part of an event every reader can decode without knowing
// its type.
type Head struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type"`
	Time   string `json:"time"`
}

// NewID returns a fresh event id (a UUIDv7: unique, and sortable by the
// time it was made).
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// GatewaySource is the source of the gateway's own events.
func GatewaySource(site, gateway string) string { return "scangw://" + site + "/" + gateway }

// StationSource is the source of a station's events.
func StationSource(site, gateway, station string) string {
	return GatewaySource(site, gateway) + "/" + station
}
