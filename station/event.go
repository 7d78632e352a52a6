package station

import (
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/station/wire"
)

// Verdicts of a scan, and the outcomes the indicator shows besides them
// (wire contract).
const (
	Accepted   = wire.Accepted
	Rejected   = wire.Rejected
	Warning    = wire.Warning
	Refused    = wire.Refused
	Discarded  = wire.Discarded
	NoRead     = wire.NoRead
	Suppressed = wire.Suppressed
)

// Reason explains a verdict in machine- and human-readable form.
type Reason = wire.Reason

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
	// Key names the unit in the seen-serial index, as the validator that
	// judged the scan found it ("" when none): not part of the event.
	Key string
}

// EncodeScan renders s as its wire.ScanType event with the given sequence
// number and buffer epoch. source is wire.StationSource of its station.
func EncodeScan(s *Scan, source string, seq uint64, epoch string) ([]byte, error) {
	d := scanData(s, seq, epoch)
	return wire.Event{ID: s.ID, Source: source, Type: wire.ScanType, Time: s.Time, Data: &d}.Encode()
}

func scanData(s *Scan, seq uint64, epoch string) wire.ScanData {
	d := wire.ScanData{
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
	return d
}
