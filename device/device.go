// Package device owns the scanners plugged into a gateway: finding, opening,
// reading and re-opening them, turning their byte streams into Reads, and
// writing feedback back to them. It knows nothing of what a barcode means,
// of stations, storage or MQTT.
//
// Each transport lives in a sub-package (device/serialscan,
// device/hidscan, device/tcpscan). Every driver delivers complete frames as
// Read values and accepts feedback as a Signal, so the station can treat all
// scanners alike. Byte-stream transports (serial lines, TCP) share the
// Framer, which cuts a stream into frames, and Codes, which turns a frame
// into its codes and no-reads.
package device

import (
	"errors"
	"time"
)

// Read is one result from a scanner: the bytes of one complete frame, or of
// one code in a frame that holds several (Codes.Split), without the
// transport's framing.
type Read struct {
	// Scanner is the configured scanner id.
	Scanner string
	// Data is the frame; it may still carry an AIM symbology prefix.
	Data []byte
	// Symbology is the AIM identifier when the transport reports it out of
	// band (HID POS); "" when it is not known or still inside Data.
	Symbology string
	// Time is when the frame's last byte arrived.
	Time time.Time
	// Err is set, and Data holds what was kept, when the frame was
	// discarded (for example ErrOversize): the operator still gets the bad
	// signal.
	Err error
	// NoRead is set when the reader reported that it read nothing (a
	// label passed a tunnel unread): Data holds the reader's no-read text
	// (Codes.NoRead), not a code. It is not a scan; the station decides
	// what a no-read means (a count, an event, a reject gate).
	NoRead bool
	// More is set when the same read() from the scanner carried further
	// frames after this one (Chunk): a streaming reader's backlog. The
	// station lets such frames share a commit instead of waiting for one
	// sync each.
	More bool
}

// Chunk delivers the reads that one read() from a scanner carried, in
// order, all but the last marked More.
func Chunk(reads []Read, deliver func(Read)) {
	for i, rd := range reads {
		rd.More = i < len(reads)-1
		deliver(rd)
	}
}

// ErrOversize reports a frame longer than the configured cap; the frame was
// discarded up to the next terminator.
var ErrOversize = errors.New("frame exceeds maximum length")

// ErrNotConnected reports feedback for a scanner that is not open right now.
var ErrNotConnected = errors.New("scanner not connected")

// Signal is the verdict a scanner is told about after the scan was stored.
type Signal int

// Signals a station sends to a scanner.
const (
	Good Signal = iota
	Warn
	Bad
	// Missed answers a reader's no-read: nothing was judged, but a reader
	// in host-acknowledge mode waits for an answer to every result.
	Missed
)

// CloneFeedback copies a driver's feedback table, leaving out empty
// entries, so that a caller mutating its map cannot race with Feedback.
func CloneFeedback(fb map[Signal][]byte) map[Signal][]byte {
	out := make(map[Signal][]byte, len(fb))
	for sig, b := range fb {
		if len(b) > 0 {
			out[sig] = append([]byte(nil), b...)
		}
	}
	return out
}

func (s Signal) String() string {
	switch s {
	case Good:
		return "good"
	case Warn:
		return "warn"
	case Bad:
		return "bad"
	case Missed:
		return "missed"
	}
	return "unknown"
}
