package serialscan

import (
	"bytes"
	"math"

	"github.com/scangw/scangw/device"
)

// Framer cuts a serial byte stream into frames at a terminator. It keeps at
// most maxLen+len(terminator) bytes, whatever the stream holds, so a scanner
// that never sends its terminator cannot grow the gateway's memory.
//
// A Framer is not safe for concurrent use; one reading goroutine owns it.
type Framer struct {
	term []byte
	// fail is the KMP failure table of term. A byte-wise matcher is needed
	// because a terminator may arrive split across reads, and a naive
	// "restart on mismatch" misses the CRLF in "\r\r\n".
	fail []int
	max  int

	// buf holds the start of the current frame, including any terminator
	// bytes matched so far; it stops growing at max+len(term), which is
	// enough to hand out the first max bytes of an oversize frame.
	buf []byte
	// n counts the current frame's bytes (with matched terminator bytes),
	// saturating just past max+len(term) so a long run on a 32-bit board
	// cannot overflow it.
	n int
	// matched is how many bytes of term end the stream so far.
	matched int
}

// NewFramer returns a Framer that splits on terminator and flags frames
// longer than maxLen bytes. A negative maxLen is taken as 0. It panics on an
// empty terminator: that is a configuration bug, and config validation is
// where it must be caught.
func NewFramer(terminator []byte, maxLen int) *Framer {
	if len(terminator) == 0 {
		panic("serialscan: empty terminator")
	}
	// The cap only has to exceed any real symbol; clamping keeps
	// maxLen+len(terminator) from overflowing.
	maxLen = min(max(maxLen, 0), math.MaxInt32)
	term := bytes.Clone(terminator)
	fail := make([]int, len(term))
	for i, k := 1, 0; i < len(term); i++ {
		for k > 0 && term[i] != term[k] {
			k = fail[k-1]
		}
		if term[i] == term[k] {
			k++
		}
		fail[i] = k
	}
	return &Framer{term: term, fail: fail, max: maxLen}
}

// Push feeds p to the framer and calls emit once for every frame it
// completes, in order. The frame excludes the terminator and is only valid
// during the call: the framer reuses its memory.
//
// An empty frame (two terminators in a row) is emitted as is: the station
// answers it with a reason, which tells the operator more than silence.
// A frame longer than maxLen is emitted once, when its terminator arrives,
// as its first maxLen bytes with device.ErrOversize, so an oversize scan
// earns exactly one bad signal.
func (f *Framer) Push(p []byte, emit func(frame []byte, err error)) {
	limit := f.max + len(f.term)
	for len(p) > 0 {
		if f.matched == 0 {
			// Fast path: nothing is pending, so every byte before the
			// next possible terminator start is plain frame content.
			i := bytes.IndexByte(p, f.term[0])
			if i < 0 {
				i = len(p)
			}
			f.add(p[:i], limit)
			p = p[i:]
			if len(p) == 0 {
				return
			}
		}
		b := p[0]
		f.add(p[:1], limit)
		p = p[1:]
		k := f.matched
		for k > 0 && b != f.term[k] {
			k = f.fail[k-1]
		}
		if b == f.term[k] {
			k++
		}
		f.matched = k
		if k < len(f.term) {
			continue
		}
		// n saturates at limit+1, so content > max exactly when the
		// frame was oversize, even after saturation. The capped slices
		// keep a callback's append from writing into the framer's
		// buffer.
		if content := f.n - len(f.term); content > f.max {
			emit(f.buf[:f.max:f.max], device.ErrOversize)
		} else {
			emit(f.buf[:content:content], nil)
		}
		f.Reset()
	}
}

// add appends content to the current frame, keeping only what can still be
// handed out.
func (f *Framer) add(p []byte, limit int) {
	if room := limit - len(f.buf); room > 0 {
		f.buf = append(f.buf, p[:min(room, len(p))]...)
	}
	if f.n <= limit {
		f.n = min(f.n+len(p), limit+1)
	}
}

// Reset drops a partial frame. A driver calls it when it reopens the port:
// bytes from before a disconnect and bytes after it never make one scan.
func (f *Framer) Reset() {
	f.buf = f.buf[:0]
	f.n = 0
	f.matched = 0
}
