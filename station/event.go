package station

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// ScanType is the CloudEvents type of a scan event. A renamed or removed
// field needs a new version.
const ScanType = "io.scangw.scan.v1"

// Verdicts of a scan.
const (
	Accepted = "accepted"
	Rejected = "rejected"
	Warning  = "warning"
)

// Outcomes the station indicator shows besides a verdict: a scan that
// could not be stored, and a read that never became a scan.
const (
	Refused   = "refused"
	Discarded = "discarded"
)

// IndicatorType is the CloudEvents type of a station indicator notice,
// published live (QoS 0, not buffered) on
// <prefix>/<site>/<gateway>/indicator/<station>.
const IndicatorType = "io.scangw.indicator.v1"

type indicatorData struct {
	Station string   `json:"station"`
	Scanner string   `json:"scanner"`
	Scan    string   `json:"scan,omitempty"` // the scan event's id
	Seq     uint64   `json:"seq,omitempty"`  // its seq, once stored
	Verdict string   `json:"verdict"`
	Reasons []Reason `json:"reasons"`
}

// Reason explains a verdict in machine- and human-readable form.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Scan is one decoded, validated scan, before it gets its sequence number.
type Scan struct {
	ID        string // UUIDv7 made at scan time; never derived from seq
	Time      time.Time
	Station   string
	Mode      string
	Context   map[string]string // what the station is working on, e.g. the order
	Scanner   string
	Symbology string
	Data      []byte // without terminator and AIM prefix
	// Fields are what validation parsed out of Data (gtin, serial, lot,
	// expiry, ...); nil before validation or for unparsed text.
	Fields  map[string]string
	Verdict string
	Reasons []Reason
	// RulesVersion names the rule set that judged the scan.
	RulesVersion string
	ClockSynced  bool
}

// cloudEvent is CloudEvents 1.0 in structured JSON mode.
type cloudEvent struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            any    `json:"data"`
}

type scanData struct {
	Seq          uint64            `json:"seq"`
	Epoch        string            `json:"epoch"`
	Station      string            `json:"station"`
	Mode         string            `json:"mode"`
	Context      map[string]string `json:"context,omitempty"`
	Scanner      string            `json:"scanner"`
	Symbology    string            `json:"symbology"`
	Raw          string            `json:"raw"`
	RawBase64    string            `json:"raw_base64,omitempty"`
	Fields       map[string]string `json:"fields,omitempty"`
	Verdict      string            `json:"verdict"`
	Reasons      []Reason          `json:"reasons"`
	RulesVersion string            `json:"rules_version"`
	ClockSynced  bool              `json:"clock_synced"`
}

// EncodeScan renders s as its single-line CloudEvents JSON with the given
// sequence number and buffer epoch. source is scangw://<site>/<gateway>/<station>.
func EncodeScan(s *Scan, source string, seq uint64, epoch string) ([]byte, error) {
	d := scanData{
		Seq:          seq,
		Epoch:        epoch,
		Station:      s.Station,
		Mode:         s.Mode,
		Context:      s.Context,
		Scanner:      s.Scanner,
		Symbology:    s.Symbology,
		Fields:       s.Fields,
		Verdict:      s.Verdict,
		Reasons:      s.Reasons,
		RulesVersion: s.RulesVersion,
		ClockSynced:  s.ClockSynced,
	}
	if d.Reasons == nil {
		d.Reasons = []Reason{}
	}
	if utf8.Valid(s.Data) {
		d.Raw = string(s.Data)
	} else {
		// Keep the text readable and the exact bytes recoverable.
		d.Raw = strings.ToValidUTF8(string(s.Data), "\uFFFD")
		d.RawBase64 = base64.StdEncoding.EncodeToString(s.Data)
	}
	return encodeEvent(ScanType, s.ID, source, s.Time, &d)
}

// encodeEvent renders one single-line CloudEvents JSON event.
func encodeEvent(typ, id, source string, at time.Time, data any) ([]byte, error) {
	ev := cloudEvent{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          source,
		Type:            typ,
		Time:            at.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            data,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<", ">" and "&" are common in serials
	if err := enc.Encode(&ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
