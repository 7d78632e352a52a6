package hidscan

import (
	"fmt"
	"time"

	"github.com/scangw/scangw/device"
)

// HID POS report layout, as documented for Honeywell (Hand Held Products)
// scanners in their "USB Interfaces User's Guide", section "HID POS
// Interface: Getting Scanned Data", and identically by Access-IS for its
// LSR/ATR readers ("HID reports: Receive data"); it implements the Scanned
// Data Report of "HID Point of Sale Usage Tables" v1.02 (usage page 0x8C).
// hidapi's libusb backend hands the report over with its report id first,
// as the transfer carried it:
//
//	byte  0      report id, 0x02
//	byte  1      L, the number of decoded data bytes in this report (AIM
//	             id not included)
//	bytes 2-4    AIM symbology identifier, e.g. "]C1" (absent: NoAIM)
//	bytes 5-60   decoded data, L bytes, zero-padded (from byte 2 if NoAIM)
//	byte  61     Honeywell's own symbology id (not used: the AIM id is
//	             standard)
//	byte  62     reserved
//	byte  63     bit 0: "decoded data continued": more reports follow
//	             for this scan
//
// A scan longer than 56 bytes spans reports, each repeating the AIM id;
// the one with bit 0 clear ends it. Vendors that put no AIM id in the
// report (HIDPOSConfig.NoAIM) start the data at byte 2, and only the last
// byte, the flags, is reserved after it.
const (
	hidposReportID = 0x02
	// hidposMaxReport is the largest report accepted: a full-speed
	// interrupt endpoint moves at most 64 bytes per transfer, and the
	// documented report is exactly that.
	hidposMaxReport = 64
	hidposAIMLen    = 3
	// hidposTrailer is bytes 61-63 of the documented layout.
	hidposTrailer  = 3
	hidposContinue = 0x01
)

// HID POS output reports for feedback, from the same Honeywell guide
// ("Trigger the Device"): report id 0x04 and one flag byte, in which 0x40
// sounds the good-read beep and 0x20 the error beep (0x04 and 0x02
// trigger and untrigger the scanner). A scanner without output report 4
// rejects the write, and Feedback returns that error; Config.Feedback
// replaces these bytes for other vendors.
const (
	hidposFeedbackReport = 0x04
	hidposGoodBeep       = 0x40
	hidposErrorBeep      = 0x20
)

// HIDPOSConfig configures a HIDPOSDecoder.
type HIDPOSConfig struct {
	// NoAIM is set for scanners whose scanned-data reports carry no AIM
	// identifier: data then starts right after the length byte, and
	// scans have Symbology "".
	NoAIM bool
	// MaxScan caps a scan's length in bytes, across continuation
	// reports. Zero means DefaultMaxScan.
	MaxScan int
}

// HIDPOSDecoder assembles HID POS scanned-data reports (see the layout
// above) into scans. It is not safe for concurrent use.
type HIDPOSDecoder struct {
	noAIM   bool
	maxScan int

	buf     []byte
	sym     string
	pending bool // a continued report was seen; its scan is not complete
	err     error
	last    time.Time
	// syms interns AIM ids so a scan does not allocate for its
	// symbology; it is bounded, since garbage reports could name many.
	syms map[[hidposAIMLen]byte]string
}

// NewHIDPOS returns a decoder for cfg.
func NewHIDPOS(cfg HIDPOSConfig) *HIDPOSDecoder {
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = DefaultMaxScan
	}
	return &HIDPOSDecoder{
		noAIM:   cfg.NoAIM,
		maxScan: cfg.MaxScan,
		buf:     make([]byte, 0, 64),
		syms:    make(map[[hidposAIMLen]byte]string),
	}
}

// Report feeds one input report and calls emit when it completes a scan.
// A report that does not fit the layout is emitted at once as a damaged
// scan, with whatever a continued scan had collected: its operator needs
// the bad verdict now, and waiting for a later report to decide would give
// it to the wrong scan.
func (d *HIDPOSDecoder) Report(r []byte, at time.Time, emit func(Scan)) {
	d.last = at
	start := 2
	if !d.noAIM {
		start += hidposAIMLen
	}
	trailer := hidposTrailer
	if d.noAIM {
		trailer = 1
	}
	switch {
	case len(r) < start+trailer:
		d.fail(fmt.Sprintf("HID POS report of %d bytes is too short", len(r)), emit)
		return
	case len(r) > hidposMaxReport:
		d.fail(fmt.Sprintf("HID POS report of %d bytes exceeds %d", len(r), hidposMaxReport), emit)
		return
	case r[0] != hidposReportID:
		d.fail(fmt.Sprintf("HID POS report id 0x%02x, want 0x%02x", r[0], hidposReportID), emit)
		return
	}
	n := int(r[1])
	if room := len(r) - start - trailer; n > room {
		d.fail(fmt.Sprintf("HID POS length %d exceeds the %d data bytes of a %d-byte report", n, room, len(r)), emit)
		return
	}
	if !d.pending {
		d.sym = ""
		if !d.noAIM {
			d.sym = d.symbology([hidposAIMLen]byte(r[2:5]))
		}
	}
	data := r[start : start+n]
	if room := d.maxScan - len(d.buf); len(data) > room {
		data = data[:max(room, 0)]
		if d.err == nil {
			d.err = device.ErrOversize
		}
	}
	d.buf = append(d.buf, data...)
	if r[len(r)-1]&hidposContinue != 0 {
		d.pending = true
		return
	}
	d.complete(emit)
}

// symbology returns the AIM id as a string, or "" when the bytes are not
// one (a "]" flag and two printable characters, ISO/IEC 15424): some
// scanners zero them when AIM ids are switched off.
func (d *HIDPOSDecoder) symbology(aim [hidposAIMLen]byte) string {
	if aim[0] != ']' || !printable(aim[1]) || !printable(aim[2]) {
		return ""
	}
	if s, ok := d.syms[aim]; ok {
		return s
	}
	s := string(aim[:])
	if len(d.syms) < 64 {
		d.syms[aim] = s
	}
	return s
}

func printable(b byte) bool { return b > ' ' && b < 0x7F }

// Pending reports whether a continued scan waits for its last report.
func (d *HIDPOSDecoder) Pending() bool { return d.pending }

// Abort ends a continued scan as damaged with reason: the driver calls it
// when the device is lost between a scan's reports.
func (d *HIDPOSDecoder) Abort(reason string, emit func(Scan)) {
	if d.pending {
		d.fail(reason, emit)
	}
}

// Reset forgets a partial scan.
func (d *HIDPOSDecoder) Reset() {
	d.buf, d.sym, d.pending, d.err = d.buf[:0], "", false, nil
}

func (d *HIDPOSDecoder) fail(reason string, emit func(Scan)) {
	if d.err == nil {
		d.err = &DecodeError{Reason: reason}
	}
	d.complete(emit)
}

func (d *HIDPOSDecoder) complete(emit func(Scan)) {
	emit(Scan{Data: d.buf[:len(d.buf):len(d.buf)], Symbology: d.sym, Time: d.last, Err: d.err})
	d.Reset()
}
