package wire

import "time"

// Verdicts of a scan (data.verdict).
const (
	Accepted = "accepted"
	Rejected = "rejected"
	Warning  = "warning"
)

// Outcomes the indicator shows besides a verdict: a scan that could not be
// stored, a read that never became a scan, a reader's no-read, and a
// repeat of a read within the debounce window (answered like the first).
const (
	Refused    = "refused"
	Discarded  = "discarded"
	NoRead     = "noread"
	Suppressed = "suppressed"
)

// Modes a station can be in (data.mode).
var Modes = []string{"receive", "ship", "return", "transfer", "count", "pack", "build", "unpack", "assign"}

// Reason explains a verdict in machine- and human-readable form.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ScanData is the data of a ScanType event.
type ScanData struct {
	Seq       uint64            `json:"seq"`
	Epoch     string            `json:"epoch"`
	Station   string            `json:"station"`
	Mode      string            `json:"mode"`
	Context   map[string]string `json:"context,omitempty"`
	Scanner   string            `json:"scanner"`
	Symbology string            `json:"symbology"`
	// Raw is the scanned text without terminator and AIM prefix; when the
	// bytes are not UTF-8 it is made valid and RawBase64 holds them.
	Raw          string            `json:"raw"`
	RawBase64    string            `json:"raw_base64,omitempty"`
	Fields       map[string]string `json:"fields,omitempty"`
	Verdict      string            `json:"verdict"`
	Reasons      []Reason          `json:"reasons"`
	RulesVersion string            `json:"rules_version"`
	ClockSynced  bool              `json:"clock_synced"`
}

// ContextData is the data of a ContextType event.
type ContextData struct {
	Seq     uint64            `json:"seq"`
	Epoch   string            `json:"epoch"`
	Station string            `json:"station"`
	Mode    string            `json:"mode"`
	Context map[string]string `json:"context"`
	// Cause says what changed it (CauseCommand, CauseDocument,
	// CauseIdle); Document is the read, for CauseDocument.
	Cause       string    `json:"cause,omitempty"`
	Document    *Document `json:"document,omitempty"`
	ClockSynced bool      `json:"clock_synced"`
}

// NoReadData is the data of a NoReadType event.
type NoReadData struct {
	Seq         uint64            `json:"seq"`
	Epoch       string            `json:"epoch"`
	Station     string            `json:"station"`
	Mode        string            `json:"mode"`
	Context     map[string]string `json:"context,omitempty"`
	Scanner     string            `json:"scanner"`
	Raw         string            `json:"raw"` // the reader's no-read text
	ClockSynced bool              `json:"clock_synced"`
}

// IndicatorData is the data of an IndicatorType event.
type IndicatorData struct {
	Station string   `json:"station"`
	Scanner string   `json:"scanner"`
	Scan    string   `json:"scan,omitempty"` // the scan event's id
	Seq     uint64   `json:"seq,omitempty"`  // its seq, once stored
	Verdict string   `json:"verdict"`        // a verdict, Refused, Discarded, NoRead or Suppressed
	Reasons []Reason `json:"reasons"`
}

// Status states.
const (
	Online  = "online"
	Offline = "offline"
)

// Status is the data of a StatusType event.
type Status struct {
	State      string    `json:"state"` // Online or Offline
	Version    string    `json:"version"`
	ConfigHash string    `json:"config_hash"`
	StartTime  time.Time `json:"start_time"`
	Epoch      string    `json:"epoch"`
	// Instance is random per process (a UUIDv7): two processes announcing
	// themselves with the same gateway id have different instances.
	Instance string `json:"instance"`
}

// Heartbeat is the data of a HeartbeatType event.
type Heartbeat struct {
	Instance string `json:"instance"`
	// ConfigHash is the config in force, as in the status message: it
	// changes with a live reload.
	ConfigHash string `json:"config_hash"`
	// PublishPermitted is null until the probe of this connection came
	// back or timed out.
	PublishPermitted *bool   `json:"publish_permitted"`
	DuplicateGateway bool    `json:"duplicate_gateway"`
	UptimeSeconds    float64 `json:"uptime_seconds"`
	*Health
}

// Health is the gateway's health in a heartbeat.
type Health struct {
	Backlog          int64           `json:"backlog"`
	OldestAgeSeconds float64         `json:"backlog_oldest_age_seconds"`
	ClockSynced      bool            `json:"clock_synced"`
	ScannersUp       int             `json:"scanners_up"`
	ScannersDown     int             `json:"scanners_down"`
	Stations         []StationStatus `json:"stations"`
	Serials          []SerialStatus  `json:"serials,omitempty"`
	Printers         []PrinterStatus `json:"printers,omitempty"`
}

// StationStatus is one station as heartbeats and status replies show it.
type StationStatus struct {
	ID       string            `json:"id"`
	Mode     string            `json:"mode"`
	Context  map[string]string `json:"context,omitempty"`
	Running  bool              `json:"running"`
	Scanners []ScannerStatus   `json:"scanners"`
	// Order is the progress of the order in context, when the rule sets
	// carry its lines; Aggregation the pack, build or unpack open.
	Order       *OrderState      `json:"order,omitempty"`
	Aggregation *OpenAggregation `json:"aggregation,omitempty"`
	// Verify is the serial whose label the operator is to scan.
	Verify string `json:"verify,omitempty"`
}

// OrderState is an order's progress at a station.
type OrderState struct {
	Order       string      `json:"order"`
	Lines       []OrderLine `json:"lines"`
	Counted     int         `json:"counted"`
	Remaining   int         `json:"remaining"`
	Over        int         `json:"over"`
	Unexpected  int         `json:"unexpected"`
	WrongSerial int         `json:"wrong_serial"`
	Complete    bool        `json:"complete"`
}

// OpenAggregation is a station's open pack, build or unpack.
type OpenAggregation struct {
	Mode     string    `json:"mode"`
	Parent   string    `json:"parent"`
	Children int       `json:"children"`
	Opened   time.Time `json:"opened"`
}

// SerialStatus is a serial scheme's counter: how many numbers are left
// (of the granted blocks, or of the template's width).
type SerialStatus struct {
	Scheme    string `json:"scheme"`
	Granted   bool   `json:"granted"`
	Remaining uint64 `json:"remaining"`
	Low       bool   `json:"low"` // below its low water
}

// PrinterStatus is a label printer's state and queue.
type PrinterStatus struct {
	ID      string `json:"id"`
	Ready   bool   `json:"ready"`
	Reason  string `json:"reason,omitempty"` // paper_out, head_open, paused, unreachable, ...
	Waiting int    `json:"waiting"`
	InDoubt int    `json:"in_doubt"` // jobs a crash interrupted: reprint them
}

// ScannerStatus says whether one scanner's device is open, and how many
// of its last frames (at most 100) were codes rather than no-reads.
type ScannerStatus struct {
	ID string `json:"id"`
	Up bool   `json:"up"`
	// ReadRate is absent until the scanner sent a frame.
	ReadRate *float64 `json:"read_rate,omitempty"`
}

// Reply is the data of a ReplyType event.
type Reply struct {
	ID     string `json:"id"`  // the command's correlation id
	Cmd    string `json:"cmd"` // as sent, cut to 64 bytes
	OK     bool   `json:"ok"`
	Error  *Error `json:"error,omitempty"`
	Result any    `json:"result,omitempty"`
}
