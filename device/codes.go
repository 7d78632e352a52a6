package device

import "bytes"

// Codes says what one complete frame holds: fixed readers in a tunnel send
// several codes in one result ("code1,code2") and a fixed text such as
// NOREAD when a label passed without a read.
type Codes struct {
	// NoRead lists the texts that mean the reader read nothing. A part
	// of a frame equal to one of them, byte for byte, is a no-read.
	NoRead [][]byte
	// Split, when set, separates several codes in one frame. Empty parts
	// (separators back to back, at the start or the end) are dropped.
	Split []byte
	// Ignore lists texts a reader sends that are neither codes nor
	// no-reads (a heartbeat): a part equal to one is dropped. It still
	// counts as traffic for an idle timeout.
	Ignore [][]byte
}

// Clone returns a copy of c that shares no memory with it, for a driver
// to keep while its caller may reuse its slices.
func (c Codes) Clone() Codes {
	out := Codes{Split: bytes.Clone(c.Split)}
	for _, nr := range c.NoRead {
		out.NoRead = append(out.NoRead, bytes.Clone(nr))
	}
	for _, ig := range c.Ignore {
		out.Ignore = append(out.Ignore, bytes.Clone(ig))
	}
	return out
}

// Reads calls emit, in order, for each read frame holds: base with Data a
// fresh copy of the part, and NoRead set when the part is a no-read text.
//
// A frame that carries an error (base.Err, such as ErrOversize) is handed
// on whole as one read: it was cut short, so its parts are not known.
// Without Split the frame is one part even when empty, so an empty frame
// still reaches the station; with Split, a frame of only separators
// yields nothing.
func (c Codes) Reads(base Read, frame []byte, emit func(Read)) {
	if base.Err != nil || len(c.Split) == 0 {
		c.emit(base, frame, emit)
		return
	}
	for len(frame) > 0 {
		part := frame
		if i := bytes.Index(frame, c.Split); i >= 0 {
			part, frame = frame[:i], frame[i+len(c.Split):]
		} else {
			frame = nil
		}
		if len(part) > 0 {
			c.emit(base, part, emit)
		}
	}
}

func (c Codes) emit(base Read, part []byte, emit func(Read)) {
	if base.Err == nil {
		for _, ig := range c.Ignore {
			if bytes.Equal(part, ig) {
				return
			}
		}
	}
	base.Data = append([]byte(nil), part...)
	if base.Err == nil {
		for _, nr := range c.NoRead {
			if bytes.Equal(part, nr) {
				base.NoRead = true
				break
			}
		}
	}
	emit(base)
}
